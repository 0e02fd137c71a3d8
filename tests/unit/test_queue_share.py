"""Who a request comes from on a shared studio: the address (a proxy's X-Forwarded-For only where the
studio knows the proxy), a session id bound to its first address, and one address's queue share."""

from __future__ import annotations

from types import SimpleNamespace

from studio.web.queue_guard import QueueGuard, _session_stream
from studio.web.sessions import SessionOwners
from studio.web.visitors import FORWARDED_ALWAYS, FORWARDED_FROM_LOOPBACK, FORWARDED_NEVER, client_address


def scope(peer, forwarded=None):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 5000), "headers": headers}


def test_the_address_is_the_peer_unless_a_known_proxy_names_the_client():
    assert client_address(scope("10.0.0.7", "1.2.3.4")) == "10.0.0.7"  # no proxy known: headers ignored
    assert client_address(scope("10.0.0.7", "6.6.6.6, 1.2.3.4"), FORWARDED_ALWAYS) == "1.2.3.4"  # not the forged one
    assert client_address(scope("127.0.0.1", "5.6.7.8"), FORWARDED_FROM_LOOPBACK) == "5.6.7.8"  # the tunnel, from here
    assert client_address(scope("192.168.1.9", "5.6.7.8"), FORWARDED_FROM_LOOPBACK) == "192.168.1.9"  # a LAN peer is itself
    assert client_address({"headers": []}) == ""


def test_a_session_id_is_good_only_from_its_first_address():
    owners = SessionOwners(capacity=2)
    assert owners.claim("s1", "1.1.1.1") and owners.claim("s1", "1.1.1.1")
    assert not owners.claim("s1", "2.2.2.2")
    owners.claim("s2", "x"), owners.claim("s3", "y")  # past capacity the oldest is forgotten
    assert owners.claim("s1", "2.2.2.2")


def test_an_address_may_keep_one_more_than_a_visitor_waiting_never_more_than_half_the_queue():
    guard = QueueGuard("gpu", None, max_waiting=3)
    guard.queue_size = 16
    assert guard.address_cap() == 4
    guard.queue_size = 4
    assert guard.address_cap() == 2
    guard.queue_size = 1
    assert guard.address_cap() == 1


def test_a_studio_is_shared_when_others_can_reach_it(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    guard = QueueGuard("gpu", None)
    guard._blocks = SimpleNamespace(share=False, server_name="127.0.0.1")
    assert guard.reach() == (False, FORWARDED_NEVER)
    guard._blocks = SimpleNamespace(share=False, server_name="0.0.0.0")
    assert guard.reach() == (True, FORWARDED_NEVER)
    guard._blocks = SimpleNamespace(share=True, server_name="127.0.0.1")
    assert guard.reach() == (True, FORWARDED_FROM_LOOPBACK)
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    assert guard.reach() == (True, FORWARDED_ALWAYS)


def test_the_visitor_rules_say_what_their_docs_say():
    import doctest

    from studio.web import limits, visitors

    for module in (visitors, limits):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__


def test_the_stream_guard_knows_a_sessions_stream_and_heartbeat():
    assert _session_stream({"type": "http", "method": "GET", "path": "/gradio_api/queue/data",
                            "query_string": b"session_hash=abc"}) == ("abc", True)
    assert _session_stream({"type": "http", "method": "GET", "path": "/gradio_api/heartbeat/abc"}) == ("abc", False)
    assert _session_stream({"type": "http", "method": "POST", "path": "/gradio_api/queue/join"}) == (None, False)
