"""The X/Y/Z plot through the doors: A1111's `script_name: "x/y/z plot"` with its positional script_args
(grid first among the images, then every cell), listed by GET /sdapi/v1/scripts and refused by name for an
axis the studio has no setting for; and `/generate`'s x_type / x_values parameters."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from support import png
from studio.fields import TABLE
from studio.infotext import parse_infotext
from studio.outputs import OutputFolder
from studio.service import Service
from studio.web.generate_api import make_generate_api
from studio.web.sdapi.calls import SdApi
from studio.web.sdapi.routes import build_router

BODY = {"prompt": "a red cube", "steps": 2, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler",
        "script_name": "x/y/z plot"}


@pytest.fixture(scope="module")
def service(studio, tmp_path_factory):
    return Service(studio, OutputFolder(tmp_path_factory.mktemp("xyz-outputs")))


@pytest.fixture(scope="module")
def client(service):
    app = FastAPI()
    app.include_router(build_router(SdApi(service, lambda: "tiny"), None, None))
    return TestClient(app)


def test_a1111s_xyz_plot_answers_the_grid_first_then_every_cell(client):
    assert "x/y/z plot" in client.get("/sdapi/v1/scripts").json()["txt2img"]
    # X: Steps (index 4) 2, 3; Y: CFG Scale (index 6) by a count range; Z: Nothing
    args = [4, "2-3", [], 6, "3-7 [2]", [], 0, "", [], True, False, False, False, False, False, False, 0, False]
    res = client.post("/sdapi/v1/txt2img", json={**BODY, "script_args": args})
    assert res.status_code == 200, res.text
    answer = res.json()
    pictures = [png(image) for image in answer["images"]]
    assert len(pictures) == 1 + 4 and all(p.size == (64, 64) for p in pictures[1:])
    assert pictures[0].width > 2 * 64 and pictures[0].height > 2 * 64  # the grid, with its legends
    cells = [parse_infotext(p.text["parameters"]).params for p in pictures[1:]]
    assert [(c["Steps"], c["CFG scale"]) for c in cells] == [("2", "3"), ("3", "3"), ("2", "7"), ("3", "7")]
    grid = parse_infotext(pictures[0].text["parameters"]).params
    assert (grid["Script"], grid["X Type"], grid["Y Type"], grid["Y Values"]) == ("X/Y/Z plot", "Steps", "CFG Scale",
                                                                               "3-7 [2]")
    info = json.loads(answer["info"])
    assert info["index_of_first_image"] == 1 and "script_name" not in info["ignored"]


def test_a1111_axes_without_a_setting_here_and_bad_values_are_refused_by_name(client):
    res = client.post("/sdapi/v1/txt2img", json={**BODY, "script_args": [13, "0.1, 0.2"]})
    assert res.status_code == 422 and "Sigma Churn" in res.text and "script_args[0]" in res.text
    res = client.post("/sdapi/v1/txt2img", json={**BODY, "script_args": [9, "", ["Euler", "Bogus"]]})
    assert res.status_code == 422 and "Bogus" in res.text


def test_generate_takes_the_axes_as_parameters(service):
    generate = make_generate_api(service, TABLE, lambda: "tiny")
    bound = generate.__signature__.bind(prompt="a red cube", model="tiny", steps=2, width=64, height=64, seed=3,
                                        x_type="Seed", x_values="3, 4", y_type="Size", y_values="64x64, 64x96")
    bound.apply_defaults()
    for gallery, infotext, seed, status, _ in generate(*bound.args):
        pass
    assert len(gallery) == 1 + 4 and seed == 3 and "X Type: Seed" in infotext and "grid first" in status
    sizes = [Image.open(item["image"]["path"]).size for item in gallery[1:]]
    assert sizes == [(64, 64), (64, 64), (64, 96), (64, 96)]
    assert Image.open(gallery[0]["image"]["path"]).height > 64 + 96  # cells centred in the largest
