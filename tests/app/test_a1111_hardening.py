"""A hostile caller at the A1111 door (behind credentials, still a door): bodies past the cap refused
before they are read whole, JSON nested too deep, options that would grow the server's memory, pictures
counted and measured before they are decoded, wrong types as 422s naming the key (never a 500), and a
caller that hangs up stops its own run."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import zlib

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from support import b64_png
from studio.outputs import OutputFolder
from studio.service import Service
from studio.web.sdapi import body, calls, pictures, translate
from studio.web.sdapi.calls import SdApi
from studio.web.sdapi.routes import build_router


@pytest.fixture(scope="module")
def client(studio, tmp_path_factory):
    app = FastAPI()
    api = SdApi(Service(studio, OutputFolder(tmp_path_factory.mktemp("hardening"))), lambda: "tiny")
    app.include_router(build_router(api, None))
    test_client = TestClient(app)
    test_client.api, test_client.app_ = api, app
    return test_client


def loc(res) -> list:
    assert res.status_code == 422, res.text
    return res.json()["detail"][0]["loc"]


def png_header(width: int, height: int) -> str:
    """A PNG that only claims its size (what a decompression bomb's header says)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) +
                            chunk(b"IEND", b"")).decode()


# -- 1. the body cap -----------------------------------------------------------------------------

def test_a_body_past_the_cap_is_refused_by_its_length_or_as_it_streams(client, monkeypatch):
    assert body.MAX_BODY_BYTES >= 5 * pictures.MAX_PICTURE_CHARS  # 3 units + init image + mask fit
    monkeypatch.setattr(body, "MAX_BODY_BYTES", 10_000)
    big = json.dumps({"prompt": "x" * 20_000})
    for path in ("/sdapi/v1/txt2img", "/sdapi/v1/options", "/controlnet/detect", "/sdapi/v1/extra-single-image"):
        res = client.post(path, content=big, headers={"content-type": "application/json"})
        assert res.status_code == 413 and "10000 bytes" in res.json()["detail"], res.text
    streamed = client.post("/sdapi/v1/txt2img", content=(big[i:i + 1000].encode() for i in range(0, len(big), 1000)))
    assert streamed.status_code == 413  # chunked: no Content-Length, refused as it passes the cap


def test_the_body_is_not_read_past_the_cap():
    chunks_read = []

    class Streaming:
        headers: dict = {}

        async def stream(self):
            for n in range(1000):
                chunks_read.append(n)
                yield b"x" * 1000

    with pytest.raises(body.BodyError) as caught:
        asyncio.run(body.read_body(Streaming(), cap=5_000))
    assert caught.value.response.status_code == 413 and len(chunks_read) == 6


# -- 2. nesting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[" * 999 + "]" * 999, '{"prompt": "x", "styles": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                  '{"override_settings": ' + '{"a": ' * 40 + "1" + "}" * 41])
def test_json_nested_too_deep_is_a_422(client, text):
    res = client.post("/sdapi/v1/txt2img", content=text)
    assert loc(res) == ["body", 0] and "nested deeper" in res.json()["detail"][0]["msg"]


def test_brackets_inside_strings_do_not_count():
    assert body.json_depth(b'{"prompt": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\" [[[", "a": [[1]]}') == 3
    assert body.parse_json(b'{"prompt": "' + b"[" * 100 + b'"}') == {"prompt": "[" * 100}


# -- 3. options ----------------------------------------------------------------------------------

def test_options_keep_what_get_gives_and_bound_the_rest(client):
    options = client.get("/sdapi/v1/options").json()
    assert client.post("/sdapi/v1/options", json=options).status_code == 200  # Open WebUI posts it all back
    assert client.get("/sdapi/v1/options").json() == options
    assert client.post("/sdapi/v1/options", json={"huge": "x" * 100_000, "small": 1}).status_code == 200
    after = client.get("/sdapi/v1/options").json()
    assert "huge" not in after and after["small"] == 1
    many = {f"key{n}": n for n in range(500)}
    assert client.post("/sdapi/v1/options", json=many).status_code == 200
    assert len(client.api._options["anonymous"]) <= calls.MAX_OPTIONS


@pytest.mark.parametrize("model", [None, "", "  ", 7, {"a": 1}])
def test_an_empty_model_option_is_refused_not_read_as_the_default(client, model):
    assert loc(client.post("/sdapi/v1/options", json={"sd_model_checkpoint": model})) == ["body", "sd_model_checkpoint"]
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == "tiny"


# -- 4. pictures counted and measured before they are decoded ------------------------------------

def test_too_many_controlnet_units_are_refused_before_any_picture_is_decoded(client):
    unit = {"enabled": True, "module": "canny", "model": "tiny-canny", "image": "not a picture at all"}
    started = time.monotonic()
    res = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"controlnet": {"args": [unit] * 40}}})
    assert loc(res) == ["body", "alwayson_scripts", "controlnet", "args"] and "at most 3" in res.json()["detail"][0]["msg"]
    assert time.monotonic() - started < 5
    res = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": ["also not a picture"],
                                                 "alwayson_scripts": {"controlnet": {"args": [unit] * 4}}})
    assert loc(res) == ["body", "alwayson_scripts", "controlnet", "args"]  # counted before the init image


@pytest.mark.parametrize("picture", [png_header(65536, 65536), png_header(5000, 5000)])
def test_a_decompression_bomb_is_a_422_naming_the_field(client, picture):
    res = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [picture]})
    assert loc(res) == ["body", "init_images[0]"] and "pixels" in res.json()["detail"][0]["msg"]
    unit = {"module": "canny", "model": "tiny-canny", "image": picture}
    res = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"controlnet": {"args": [unit]}}})
    assert loc(res) == ["body", "alwayson_scripts", "controlnet", "args[0]", "image"]
    assert loc(client.post("/sdapi/v1/png-info", json={"image": picture})) == ["body", "image"]


def test_a_picture_longer_than_the_cap_is_refused_before_it_is_decoded():
    with pytest.raises(translate.InvalidValue, match="MiB"):
        translate.decode_image("mask", "A" * (pictures.MAX_PICTURE_CHARS + 1))


# -- 5. wrong types: a 422 naming the key, never a 500 ---------------------------------------------

@pytest.mark.parametrize("body, key", [
    ({"enable_hr": True, "hr_resize_x": "not a number"}, ["body", "hr_resize_x"]),
    ({"enable_hr": True, "hr_resize_x": {"a": 1}}, ["body", "hr_resize_x"]),
    ({"steps": [1]}, ["body", "steps"]),
    ({"seed": 10**40}, ["body", "seed"]),
    ({"sampler_name": {"a": 1}}, ["body", "sampler_name"]),
    ({"override_settings": {"sd_model_checkpoint": 5}}, ["body", "override_settings", "sd_model_checkpoint"]),
    ({"override_settings": {"CLIP_stop_at_last_layers": "x"}}, ["body", "override_settings", "CLIP_stop_at_last_layers"]),
    ({"alwayson_scripts": {"controlnet": {"args": [{"module": "canny", "model": "tiny-canny", "resize_mode": {"a": 1},
                                                    "image": b64_png(Image.new("RGB", (64, 64)))}]}}},
     ["body", "alwayson_scripts", "controlnet", "args[0]", "resize_mode"]),
])
def test_a_wrong_type_is_a_422_naming_the_key(client, body, key):
    res = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 1, "width": 64, "height": 64, **body})
    assert loc(res) == key


# -- 6. a caller that hangs up ---------------------------------------------------------------------

def test_a_caller_that_hangs_up_stops_its_run_and_its_batches_to_come(client):
    body = json.dumps({"prompt": "gone", "steps": 150, "width": 64, "height": 64, "n_iter": 6}).encode()
    sent: list = []

    async def call() -> None:
        delivered, sent_at = False, time.monotonic()

        async def receive():  # as a server's: the disconnect is there at once when the caller is gone
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            while time.monotonic() - sent_at < 1.0:  # the caller waits a moment, then hangs up
                await asyncio.sleep(0.05)
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/sdapi/v1/txt2img", "raw_path": b"/sdapi/v1/txt2img", "query_string": b"",
                 "root_path": "", "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80)}
        await client.app_(scope, receive, send)

    started = time.monotonic()
    asyncio.run(call())
    answer = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    info = json.loads(answer["info"])
    assert len(info["all_seeds"]) < 6 and any("hung up" in note for note in info["notes"])
    assert time.monotonic() - started < 60
    assert client.api.service.jobs.running_count(calls.run_key("anonymous")) == 0


# -- 7. the echo -----------------------------------------------------------------------------------

def test_the_parameters_echo_carries_no_pictures():
    picture = b64_png(Image.new("RGB", (64, 64)))
    echo = translate.parameters({"prompt": "x", "init_images": [picture], "mask": picture,
                                 "alwayson_scripts": {"controlnet": {"args": [{"image": picture, "weight": 1}]},
                                                      "other": {"args": [1]}}})
    assert picture not in json.dumps(echo)
    assert echo["alwayson_scripts"]["controlnet"]["args"][0]["weight"] == 1 and echo["alwayson_scripts"]["other"]
