"""A1111's Extras over HTTP (`/sdapi/v1/extra-single-image`, `/extra-batch-images`) as webuiapi's
`extra_single_image` / `extra_batch_images` send them, and `/interrogate` answering what it cannot do."""

from __future__ import annotations


import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from support import b64_png, png
from studio.outputs import OutputFolder
from studio.service import Service
from studio.web.sdapi.calls import SdApi
from studio.web.sdapi.routes import build_router


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from studio import Studio

    studio = Studio(device="cpu", cache_size=1)
    app = FastAPI()
    outputs = OutputFolder(tmp_path_factory.mktemp("extras-outputs"))
    app.include_router(build_router(SdApi(Service(studio, outputs), lambda: "tiny"), None))
    return TestClient(app)


def webuiapi_body(image: Image.Image, **fields) -> dict:
    """webuiapi 0.9.17's extra_single_image payload with its defaults."""
    return {"resize_mode": 0, "show_extras_results": True, "gfpgan_visibility": 0, "codeformer_visibility": 0,
            "codeformer_weight": 0, "upscaling_resize": 2, "upscaling_resize_w": 512, "upscaling_resize_h": 512,
            "upscaling_crop": True, "upscaler_1": "None", "upscaler_2": "None", "extras_upscaler_2_visibility": 0,
            "upscale_first": False, "image": b64_png(image), **fields}


def test_a_picture_is_upscaled_by_a_factor_and_a_missing_model_upscaler_is_said(client):
    answer = client.post("/sdapi/v1/extra-single-image", json=webuiapi_body(Image.new("RGB", (40, 30), (9, 99, 199)),
                                                                            upscaler_1="R-ESRGAN 4x+"))
    assert answer.status_code == 200, answer.text
    image = png(answer.json()["image"])
    assert image.size == (80, 60) and image.getpixel((40, 30)) == (9, 99, 199)
    assert "R-ESRGAN 4x+" in answer.json()["html_info"] and "Lanczos" in answer.json()["html_info"]


def test_a_batch_is_resized_to_a_size_and_its_cost_checked_before_any_work(client):
    body = {**webuiapi_body(Image.new("RGB", (8, 8))), "resize_mode": 1, "upscaling_resize_w": 64,
            "upscaling_resize_h": 32, "imageList": [{"data": b64_png(Image.new("RGB", (50, 50))), "name": "a.png"},
                                                    {"data": b64_png(Image.new("RGB", (20, 80))), "name": "b.png"}]}
    body.pop("image")
    answer = client.post("/sdapi/v1/extra-batch-images", json=body)
    assert answer.status_code == 200, answer.text
    assert [png(b).size for b in answer.json()["images"]] == [(64, 32), (64, 32)]
    huge = {**body, "resize_mode": 0, "upscaling_resize": 8,
            "imageList": [{"data": b64_png(Image.new("RGB", (2048, 2048))), "name": "big.png"}]}
    refused = client.post("/sdapi/v1/extra-batch-images", json=huge)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "upscaling_resize"]
    empty = client.post("/sdapi/v1/extra-batch-images", json={**body, "imageList": []})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "imageList"]


def test_interrogate_says_it_is_not_available_here(client):
    answer = client.post("/sdapi/v1/interrogate", json={"image": b64_png(Image.new("RGB", (8, 8))), "model": "clip"})
    assert answer.status_code == 501 and "captioning model" in answer.json()["detail"]
