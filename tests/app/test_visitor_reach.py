"""One visitor's reach on a shared studio (`--host 0.0.0.0`), driven as a hostile client drives it: raw
HTTP with made-up session ids, from two addresses of this machine (127.0.0.1 and 127.0.0.2: Linux
answers the whole 127/8 on loopback). One address gets a share of the GPU queue however many session
ids it makes up; the page's helpers answer with the GPU queue full; a session's stream opens only from
the session's own address, once at a time (studio/web/queue_guard.py, studio/web/sessions.py)."""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlparse

import pytest

from support import api_client as client, running_app, stepping
from support import wait_until


LONG = dict(model="tiny", steps=150, width=256, height=256, api_name="/generate")  # 150: the most steps
OTHER = "127.0.0.2"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A queue of 8 and 3 per visitor: one address may keep min(3 + 1, 8 // 2) = 4 waiting.
    with running_app(tmp_path_factory, "--host", "0.0.0.0", "--queue-size", "8", "--max-queued", "3") as app:
        yield app


def request(server, method, path, body=None, source="127.0.0.1", timeout=30.0, read=True, cookie=None):
    """(status, body text) of one request from `source`; read=False leaves the response unread (a stream)."""
    port = urlparse(server.url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} if data else {}
    if cookie:
        headers["cookie"] = cookie
    connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    if not read:
        return response, connection
    text = response.read().decode()
    connection.close()
    return response.status, text


def generate_call(server):
    """fn_index and default data of the typed /generate endpoint, from the page's config."""
    status, text = request(server, "GET", "/config")
    config = json.loads(text)
    values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
    for index, dep in enumerate(config["dependencies"]):
        if dep.get("api_name") == "generate":
            return dep.get("id", index), [values.get(i) for i in dep["inputs"]], dep["inputs"], config
    raise AssertionError("no /generate endpoint in the config")


def join(server, call, session, source="127.0.0.1", cookie=None, **fields):
    fn_index, data, inputs, config = call
    if fields:  # set some of /generate's inputs by their name (the API components' labels)
        labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
        data = [fields.get(labels.get(i), value) for i, value in zip(inputs, data)]
    return request(server, "POST", "/gradio_api/queue/join",
                   {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                    "trigger_id": None}, source=source, cookie=cookie)





def test_made_up_session_ids_get_one_addresss_share_and_the_helpers_answer_with_the_queue_full(server):
    call = generate_call(server)
    owner = client(server.url)
    running = owner.submit(prompt="holds the GPU", seed=1, **LONG)
    wait_for(lambda: stepping(running), what="the running job to step")
    try:
        # 10 session ids x 3 requests from one address: 4 wait, the rest are refused by name.
        replies = [join(server, call, uuid.uuid4().hex) for _session in range(10) for _ in range(3)]
        accepted = [text for status, text in replies if status == 200]
        refused = [text for status, text in replies if status != 200]
        assert len(accepted) == 4, replies
        assert all("Your address already has 4 requests waiting" in text for text in refused), refused[:2]
        # Another address gets its own share: the queue (8) is then full, for it too.
        others = [join(server, call, uuid.uuid4().hex, source=OTHER) for _ in range(5)]
        assert [status for status, _ in others] == [200] * 4 + [503], others
        status, text = join(server, call, uuid.uuid4().hex, source="127.0.0.3")
        assert status == 503 and "Queue is full" in text
        # The parsed prompt view and PNG Info are queued events outside the GPU's queue: they answer.
        helper = client(server.url)
        parsed = helper.predict("a (red:1.2) fox", "A1111", "tiny", api_name="/parse_prompt")
        assert "fox" in json.dumps(parsed)
    finally:
        owner.predict(api_name="/stop")


def test_a_stranger_with_the_session_id_neither_reads_nor_cancels_the_session(server):
    call = generate_call(server)
    victim = client(server.url)
    running = victim.submit(prompt="the victim's run", seed=21, **LONG)
    wait_for(lambda: stepping(running), what="the victim's job to step")
    stream = f"/gradio_api/queue/data?session_hash={victim.session_hash}"
    # From another address: refused before Gradio sees it (no messages, no cancel on hang-up).
    status, text = request(server, "GET", stream, source=OTHER)
    assert status == 403 and "another visitor" in text
    # From the victim's own address (a shared NAT) without the victim's cookie (gradio_client keeps the
    # one the studio set): refused too.
    status, text = request(server, "GET", stream, timeout=30)
    assert status == 403 and "another visitor" in text
    # Joining under the victim's session from elsewhere is refused as well.
    status, text = join(server, call, victim.session_hash, source=OTHER)
    assert status == 400 and "another visitor" in text
    steps = len(running.outputs())
    wait_for(lambda: len(running.outputs()) > steps + 2, what="the victim's job to go on")
    assert not running.done()
    assert victim.predict(api_name="/stop").startswith("Stopped at step")


def test_at_one_address_a_session_is_good_only_with_its_visitors_cookie(server):
    """Behind one NAT everyone shares an address: the studio's visitor cookie (set on the first answer,
    HttpOnly, never in a URL) tells them apart. A session first used with it opens nothing without it."""
    response, connection = request(server, "GET", "/", read=False)
    set_cookie = response.getheader("set-cookie") or ""
    response.read()
    connection.close()
    assert set_cookie.startswith("studio-visitor=") and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    mine = set_cookie.split(";")[0]
    response, connection = request(server, "GET", "/config", read=False, cookie=mine)
    assert response.getheader("set-cookie") is None  # a visitor keeps its cookie
    response.read()
    connection.close()
    session = uuid.uuid4().hex
    status, _ = join(server, generate_call(server), session, cookie=mine, steps=150, width=256, height=256)
    assert status == 200
    stream = f"/gradio_api/queue/data?session_hash={session}"
    # A neighbour at the same address, without the cookie or with its own, is refused before Gradio
    for other in (None, "studio-visitor=" + "0" * 32):
        status, text = request(server, "GET", stream, cookie=other)
        assert status == 403 and "another visitor" in text, (other, status, text)
    # The visitor itself reads its stream; a second stream while it is open is refused (one at a time).
    response, connection = request(server, "GET", stream, cookie=mine, timeout=120, read=False)
    try:
        assert response.status == 200
        assert b"data:" in response.fp.readline() + response.fp.readline()
        status, text = request(server, "GET", stream, cookie=mine, timeout=30)
        assert status == 409 and "already open" in text
    finally:
        connection.close()  # its own hang-up cancels its own work


def wait_for(condition, timeout=240.0, what="condition"):
    wait_until(condition, timeout, what)
