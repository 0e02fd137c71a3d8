"""The page's Stop over its WebSocket (studio/web/connections.py): a visitor's message reaches the stop
with its session id and tab key; anything else (not JSON, no session, too long, bytes) is answered
with what to do, never passed on."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.testclient import TestClient

from studio.web.connections import MAX_MESSAGE, NO_VISITOR, STOP_PATH, stop_route


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
