"""The GPU queue per visitor, through a real server: a cap on one visitor's waiting requests, Stop
and cancel removing waiting requests before they run a single step, and cancels that need more
than a session id (studio/web/queue_guard.py reaches into Gradio's queue: these fail if it changes)."""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request

import pytest

from support import api_client as client, client_that_vanishes, running_app, stepping, wait_until


LONG = dict(model="tiny", steps=150, width=256, height=256, api_name="/generate")
SHORT = dict(model="tiny", steps=2, width=64, height=64, api_name="/generate")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory, "--queue-size", "32", "--max-queued", "2") as app:
        yield app





def waiting(job) -> bool:
    from gradio_client.utils import Status

    return job.status().code == Status.IN_QUEUE


def cancelled_steps(server) -> int:
    """How many jobs the engine has cancelled mid-run so far (each logs where it stopped)."""
    return server.log.read_text().count("Cancelled at step")


def test_one_visitor_keeps_at_most_max_queued_waiting_and_stop_removes_them_before_they_run(server):
    a, b = client(server.url), client(server.url)
    before = cancelled_steps(server)
    running = a.submit(prompt="a running", seed=1, **LONG)
    wait_for(lambda: stepping(running), what="a's first job to step")
    queued = [a.submit(prompt=f"a waiting {i}", seed=2 + i, **SHORT) for i in range(2)]
    wait_for(lambda: all(waiting(job) for job in queued), what="a's two waiting jobs")
    with pytest.raises(Exception, match=r"2 of your requests already wait.*--max-queued"):
        a.predict(prompt="a third waiting", seed=9, **SHORT)
    other = b.submit(prompt="b waiting", seed=7, **SHORT)  # the cap is per visitor: b still gets a place
    wait_for(lambda: waiting(other), what="b's job to queue")

    reply = a.predict(api_name="/stop")
    assert reply.startswith("Stopped at step") and reply.endswith("Removed from the queue (2 waiting requests).")
    for job in queued:
        with pytest.raises(Exception, match="Stopped before it started"):
            job.result(timeout=30)
    result = other.result(timeout=120)  # b is served next
    assert "b waiting" in result[1] and result[2] == 7
    assert cancelled_steps(server) == before + 1  # a's running job only: the removed ones never started


def test_cancelling_a_waiting_job_leaves_the_same_clients_running_job_alone(server):
    a = client(server.url)
    running = a.submit(prompt="keeps running", seed=11, **LONG)
    wait_for(lambda: stepping(running), what="the running job to step")
    queued = a.submit(prompt="cancelled while waiting", seed=12, **SHORT)
    wait_for(lambda: waiting(queued), what="the second job to queue")
    queued.cancel()  # gradio_client posts /cancel with this job's event id
    steps = len(running.outputs())
    wait_for(lambda: len(running.outputs()) > steps + 2, what="the running job to go on")
    assert not running.done()
    assert a.predict(api_name="/stop").startswith("Stopped at step")
    assert "cancelled while waiting" not in server.log.read_text()


def test_a_cancel_with_someone_elses_session_id_but_no_event_of_theirs_is_refused(server):
    victim = client(server.url)
    running = victim.submit(prompt="the victim's run", seed=21, **LONG)
    wait_for(lambda: stepping(running), what="the victim's job to step")
    forged = json.dumps({"session_hash": victim.session_hash, "fn_index": 0, "event_id": "0" * 32}).encode()
    request = urllib.request.Request(server.url + "gradio_api/cancel", data=forged,
                                     headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 404 and b"event_id" in refused.value.read()
    steps = len(running.outputs())
    wait_for(lambda: len(running.outputs()) > steps + 2, what="the victim's job to go on")
    assert victim.predict(api_name="/stop").startswith("Stopped at step")


GOING_AWAY = textwrap.dedent("""
    import sys, time
    from gradio_client import Client
    client = Client(sys.argv[1], verbose=False)
    running = client.submit(prompt="gone", model="tiny", steps=150, width=256, height=256, seed=31,
                            api_name="/generate")
    deadline = time.monotonic() + 180  # a clear failure, never a hang
    while not any("Step" in str(u[3]) for u in running.outputs()):
        if time.monotonic() > deadline:
            print("timeout: the running job never stepped", running.status().code.name, flush=True)
            sys.exit(1)
        time.sleep(0.05)
    # Queued once the first one runs: before it starts it waits too, and a third waiting request
    # would be over this studio's --max-queued 2.
    queued = [client.submit(prompt="gone too", model="tiny", steps=2, width=64, height=64, seed=seed,
                            api_name="/generate") for seed in (777001, 777002)]
    # Both really wait in the server's queue (the server's own count: a client's job status may stay
    # "joining" until an estimation message comes).
    import json, urllib.request
    def queued_on_server():
        with urllib.request.urlopen(sys.argv[1] + "gradio_api/queue/status", timeout=10) as reply:
            return json.loads(reply.read())["queue_size"]
    while queued_on_server() < 2:
        if time.monotonic() > deadline or any(job.done() for job in queued):
            print("timeout: waiting jobs are", [job.status().code.name for job in queued], flush=True)
            sys.exit(1)
        time.sleep(0.05)
    print("stepping", flush=True)
    time.sleep(600)
""")


def test_a_client_that_goes_away_loses_its_running_and_its_waiting_requests(server, tmp_path):
    before = cancelled_steps(server)
    client_that_vanishes(GOING_AWAY, server.url, tmp_path)
    wait_for(lambda: cancelled_steps(server) > before, what="the abandoned job to be cancelled")
    result = client(server.url).predict(prompt="next visitor", seed=41, **SHORT)  # the device is free
    assert result[2] == 41
    saved = [p.name for p in server.outputs.rglob("*.png")]
    assert not [name for name in saved if "77700" in name]  # the waiting ones never ran
    assert cancelled_steps(server) == before + 1


def wait_for(condition, timeout=120.0, what="condition"):
    wait_until(condition, timeout, what)
