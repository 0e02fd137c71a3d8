"""The page's WebSockets (studio/web/connections.py). Stop: a visitor's message reaches the stop with
its session id and tab key; anything else (not JSON, no session, too long, bytes) is answered with what
to do, never passed on. The queue: a waiting visitor's place is said whenever it changes, and the
socket closes once the request has left the queue (or never came)."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.testclient import TestClient

from studio.web import connections
from studio.web.connections import MAX_MESSAGE, NO_VISITOR, QUEUE_PATH, STOP_PATH, queue_route, stop_route


def client(calls: list) -> TestClient:
    async def stop(session: str, key: str) -> str:
        calls.append((session, key))
        return "Stopped at step 3/20."

    return TestClient(Starlette(routes=[stop_route(stop)]))


def ask(test: TestClient, message) -> str:
    with test.websocket_connect(STOP_PATH) as socket:
        if isinstance(message, bytes):
            socket.send_bytes(message)
        else:
            socket.send_text(message)
        return socket.receive_json()["status"] if not isinstance(message, bytes) else ""


def test_stop_names_the_visitor_by_session_and_key():
    calls: list = []
    assert ask(client(calls), json.dumps({"session": "s1", "key": "k1"})) == "Stopped at step 3/20."
    assert calls == [("s1", "k1")]


def test_a_message_naming_no_visitor_is_answered_and_stops_nothing():
    calls: list = []
    test = client(calls)
    for message in ("xxxxxxxxxx", "[]", json.dumps({"key": "k1"}), json.dumps({"session": "", "key": "k"}),
                    json.dumps({"session": "s1", "key": 5}), json.dumps({"session": "s" * MAX_MESSAGE, "key": "k"})):
        assert ask(test, message) == NO_VISITOR
    ask(test, b"\x00" * 100)  # bytes: closed without an answer
    assert calls == []


def test_the_queue_socket_says_each_new_place_then_closes_when_the_request_leaves_the_queue(monkeypatch):
    monkeypatch.setattr(connections, "QUEUE_TICK_S", 0.01)
    places = {("s1", "k1"): ["Waiting: 2 ahead", "Waiting: 2 ahead", "Waiting: 1 ahead", "Waiting: next", None]}
    asked = []

    def line(session: str, key: str):
        asked.append((session, key))
        left = places.get((session, key))
        return left.pop(0) if left else None

    test = TestClient(Starlette(routes=[queue_route(line)]))
    said = []
    with test.websocket_connect(QUEUE_PATH) as socket:
        socket.send_text(json.dumps({"session": "s1", "key": "k1"}))
        while True:
            message = socket.receive()
            if message["type"] == "websocket.close":
                break
            said.append(json.loads(message["text"])["status"])
    assert said == ["Waiting: 2 ahead", "Waiting: 1 ahead", "Waiting: next"]  # each once, in order
    assert set(asked) == {("s1", "k1")}


def test_a_queue_socket_whose_request_never_waits_or_names_no_visitor_closes_saying_nothing(monkeypatch):
    monkeypatch.setattr(connections, "QUEUE_TICK_S", 0.01)
    monkeypatch.setattr(connections, "JOIN_WAIT_S", 0.05)
    test = TestClient(Starlette(routes=[queue_route(lambda session, key: None)]))
    for message in (json.dumps({"session": "s1", "key": "k1"}), "not json", json.dumps({"key": "k"})):
        with test.websocket_connect(QUEUE_PATH) as socket:
            socket.send_text(message)
            assert socket.receive()["type"] == "websocket.close"
