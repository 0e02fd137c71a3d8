"""studio/web/limits.py on a tiny Starlette app: bodies refused by Content-Length before they are read,
chunked bodies cut off as they stream, uploads counted per visitor, sockets untouched, idle sessions
forgotten."""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from studio.web import limits, visitors
from studio.web.limits import BodyLimits, Limits, UploadQuota

CAPS = {"/gradio_api/upload": 1000, "/gradio_api/queue/join": 500}


def small_caps(path: str) -> int:
    return CAPS.get(path, 100)


def tiny_app(lim: Limits) -> tuple[TestClient, list[int]]:
    """An app that reads whole bodies and says how long they were; `read` lists what its routes read."""
    read: list[int] = []

    async def echo(request):
        body = await request.body()
        read.append(len(body))
        return PlainTextResponse(str(len(body)))

    async def socket(ws):
        await ws.accept()
        await ws.send_text(await ws.receive_text())
        await ws.close()

    routes = [Route("/{path:path}", echo, methods=["POST", "GET"]), WebSocketRoute("/studio/stop", socket)]
    app = Starlette(routes=routes, middleware=[Middleware(BodyLimits, limits=lim)])
    return TestClient(app), read


def chunks(total: int, size: int = 64):
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_body_under_its_route_cap_passes():
    client, read = tiny_app(Limits(cap=small_caps))
    assert client.post("/gradio_api/upload", content=b"x" * 1000).text == "1000"
    assert client.post("/gradio_api/queue/join", content=b"x" * 500).text == "500"
    assert client.post("/anything", content=b"x" * 100).text == "100"
    assert client.get("/config").status_code == 200
    assert read == [1000, 500, 100, 0]


@pytest.mark.parametrize("path, size", [("/gradio_api/upload", 1001), ("/gradio_api/queue/join", 501),
                                        ("/gradio_api/cancel", 101)])
def test_declared_length_over_the_cap_is_refused_before_reading(path, size):
    client, read = tiny_app(Limits(cap=small_caps))
    reply = client.post(path, content=b"x" * size)
    assert reply.status_code == 413
    assert f"at most {small_caps(path)} bytes" in reply.text and path in reply.text
    assert read == []  # the app never ran


def test_chunked_body_is_cut_off_at_the_cap():
    client, read = tiny_app(Limits(cap=small_caps))
    reply = client.post("/gradio_api/queue/join", content=chunks(5000))
    assert reply.status_code == 413 and "at most 500 bytes" in reply.text
    assert read == []
    ok = client.post("/gradio_api/queue/join", content=chunks(400))
    assert ok.text == "400"


def test_malformed_content_length_is_refused():
    scope = {"headers": [(b"content-length", b"lots")]}
    assert limits.content_length(scope) > limits.JSON_BODY_BYTES


def test_websockets_pass_untouched():
    client, _ = tiny_app(Limits(cap=lambda path: 0))
    with client.websocket_connect("/studio/stop") as ws:
        ws.send_text("x" * 10_000)
        assert len(ws.receive_text()) == 10_000


def test_upload_quota_per_address_within_a_window():
    now = [0.0]
    quota = UploadQuota(limit_bytes=2500, window_s=60, clock=lambda: now[0])
    client, read = tiny_app(Limits(cap=small_caps, quota=quota))
    assert client.post("/gradio_api/upload", content=b"x" * 1000).status_code == 200
    assert client.post("/gradio_api/upload", content=b"x" * 1000).status_code == 200
    # 500 bytes left: a declared 1000 is refused with why, a chunked one is cut off
    refused = client.post("/gradio_api/upload", content=b"x" * 1000)
    assert refused.status_code == 429 and "allowance" in refused.text
    assert client.post("/gradio_api/upload", content=chunks(1000)).status_code == 429
    assert client.post("/gradio_api/queue/join", content=b"x" * 400).status_code == 200  # only uploads count
    now[0] = 61.0  # a new window
    assert client.post("/gradio_api/upload", content=b"x" * 1000).status_code == 200
    assert read == [1000, 1000, 400, 1000]


def test_quota_counts_addresses_apart_and_forgets_the_oldest():
    quota = UploadQuota(limit_bytes=100, window_s=60, addresses=2)
    assert quota.charge("a", 100) and not quota.charge("a", 1)
    assert quota.charge("b", 50) and quota.left("b") == 50
    quota.charge("c", 1)  # "a" forgotten
    assert quota.left("a") == 100


def test_json_bodies_are_capped_by_their_items_not_only_their_bytes():
    """40 MB of `[{},{},...]` would parse into ~13 million dicts: a JSON route counts items as they
    stream and refuses past its cap before the app parses anything; base64 pictures count nothing."""
    client, read = tiny_app(Limits(cap=lambda path: 10**6, items=lambda path: 50 if "join" in path else None))
    reply = client.post("/gradio_api/queue/join", content=b"[" + b"{}," * 60 + b"{}]")
    assert reply.status_code == 413 and "at most 50" in reply.text and "JSON items" in reply.text
    assert read == []
    picture = b'{"image": "data:image/png;base64,' + b"iVBORw0KGgo" * 5000 + b'", "prompt": "a, b, c"}'
    assert client.post("/gradio_api/queue/join", content=picture).status_code == 200
    assert client.post("/gradio_api/upload", content=b"," * 500).status_code == 200  # not a JSON route
    assert limits.json_items(b'[{"a": 1}, {"b": [2, 3]}]') == 8


def test_the_real_item_cap_leaves_room_for_the_largest_prompts():
    from studio.validation import MAX_PROMPT_CHARS

    body = ('{"prompt": "' + "," * MAX_PROMPT_CHARS + '", "negative_prompt": "' + ":" * MAX_PROMPT_CHARS
            + '", "alwayson_scripts": {"controlnet": {"args": [{"enabled": true}, {}, {}]}}}').encode()
    assert limits.json_items(body) <= limits.route_items("/sdapi/v1/txt2img")


def test_forwarded_for_trusted_only_from_a_proxy():
    headers = [(b"x-forwarded-for", b"6.6.6.6, 10.0.0.7")]
    direct = {"client": ("192.168.1.5", 1), "headers": headers}
    tunnel = {"client": ("127.0.0.1", 1), "headers": headers}
    assert visitors.client_address(direct) == "192.168.1.5"
    assert visitors.client_address(direct, visitors.FORWARDED_FROM_LOOPBACK) == "192.168.1.5"
    # the proxy's own entry is the last; those before it are the client's words
    assert visitors.client_address(tunnel, visitors.FORWARDED_FROM_LOOPBACK) == "10.0.0.7"
    assert visitors.client_address(direct, visitors.FORWARDED_ALWAYS) == "10.0.0.7"
    assert visitors.client_address({"client": ("1.2.3.4", 1), "headers": []}, visitors.FORWARDED_ALWAYS) == "1.2.3.4"


def test_caps_follow_the_studio_input_limits():
    from studio.validation import MAX_PROMPT_CHARS

    assert limits.UPLOAD_BODY_BYTES >= limits.UPLOAD_FILE_BYTES > limits.MAX_BLOB_BYTES
    assert limits.JSON_BODY_BYTES > 2 * 6 * MAX_PROMPT_CHARS + 2 * limits.base64_bytes(limits.MAX_BLOB_BYTES)
    assert limits.JSON_BODY_BYTES < 64 * limits.MB  # a 100 MB prompt is refused
    assert limits.route_cap("/sdapi/v1/txt2img") == limits.SDAPI_OUTER_BYTES > limits.SDAPI_BODY_BYTES
    assert limits.route_cap("/gradio_api/run/generate") == limits.JSON_BODY_BYTES
    assert limits.route_cap("/") == limits.SMALL_BODY_BYTES


def test_launch_options_put_the_caps_first_and_bound_sessions():
    guard = Middleware(BodyLimits)
    local = limits.launch_options({"middleware": [guard], "routes": []}, shared=False)
    shared = limits.launch_options({"middleware": [guard], "routes": []}, shared=True)
    assert local["app_kwargs"]["middleware"][0].cls is BodyLimits and local["app_kwargs"]["middleware"][1] is guard
    assert local["max_file_size"] == shared["max_file_size"] == limits.UPLOAD_FILE_BYTES
    assert shared["state_session_capacity"] == limits.SHARED_SESSIONS < local["state_session_capacity"]
    assert "lifespan" in shared["app_kwargs"] and "lifespan" not in local["app_kwargs"]
    assert shared["app_kwargs"]["middleware"][0].kwargs["limits"].quota is not None
    assert local["app_kwargs"]["middleware"][0].kwargs["limits"].quota is None
    assert limits.cache_sweep(True) == (600, 3600)


def test_idle_sessions_are_forgotten():
    now = datetime.datetime.now()
    holder = SimpleNamespace(lock=threading.Lock(), session_data=OrderedDict(old=1, new=2),
                             time_last_used={"old": now - datetime.timedelta(hours=2), "new": now})
    assert limits.forget_idle_sessions(holder, 3600) == 1
    assert list(holder.session_data) == ["new"] and list(holder.time_last_used) == ["new"]
