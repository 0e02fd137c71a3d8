"""sd-webui-controlnet's routes (`/controlnet/version`, `model_list`, `module_list`, `detect`) as webuiapi's
client calls them, the limits detect applies before decoding, A1111's ControlNet names (`name [hash]`)
found in the controlnets folder, and /cmd-flags from the server's real settings."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import save_file

from support import b64_png, png, running_app
from studio.control.folder import A1111_CONTROLNETS, legacy_hash, resolve
from studio.control.preprocessors import PREPROCESSORS
from studio.outputs import OutputFolder
from studio.service import Service
from studio.validation import MAX_INPUT_PIXELS
from studio.web.sdapi.calls import SdApi
from studio.web.sdapi.controlnet import MAX_DETECT_IMAGES
from studio.web.sdapi.routes import build_router


def square(size: tuple[int, int] = (96, 64)) -> Image.Image:
    picture = Image.new("RGB", size, (30, 30, 30))
    picture.paste((240, 240, 240), (16, 16, 48, 48))
    return picture


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A controlnets folder as A1111 users have one: a tiny ControlNet in diffusers' layout, a
    .safetensors file by A1111's name, and a pickled .pth (listed only with --allow-pickle)."""
    from studio.control.models import build_tiny_controlnet

    root = tmp_path_factory.mktemp("controlnets")
    build_tiny_controlnet("sd15").save_pretrained(root / "tiny-canny")
    save_file({"weight": torch.arange(300_000, dtype=torch.float32)}, str(root / "control_v11p_sd15_canny.safetensors"))
    torch.save({"weight": torch.zeros(4)}, root / "control_v11f1p_sd15_depth.pth")
    return root


def client_for(studio, outputs, credentials=None, refusal=None) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(SdApi(Service(studio, outputs), lambda: "tiny"), credentials, refusal))
    return TestClient(app)


@pytest.fixture(scope="module")
def client(folder, tmp_path_factory):
    from studio import Studio

    studio = Studio(device="cpu", cache_size=1, controlnets_dir=folder)
    return client_for(studio, OutputFolder(tmp_path_factory.mktemp("cn-outputs")))


def test_version_models_and_modules_have_the_extensions_shapes(client, folder):
    assert client.get("/controlnet/version").json() == {"version": 2}
    listed = client.get("/controlnet/model_list", params={"update": "true"}).json()["model_list"]
    file = folder / "control_v11p_sd15_canny.safetensors"
    assert listed[:2] == [f"control_v11p_sd15_canny [{legacy_hash(file)}]", "tiny-canny"]
    assert "builtin:controlnet/sd15" in listed and "lllyasviel/control_v11p_sd15_canny" in listed
    assert not any("depth" in name and "[" in name for name in listed)  # the .pth: pickles are not allowed
    modules = client.get("/controlnet/module_list").json()
    assert modules["module_list"] == list(PREPROCESSORS)
    assert modules["module_detail"]["canny"] == {"model_free": False, "sliders": [
        {"name": "Preprocessor Resolution", "value": 512, "min": 64, "max": 2048, "step": 8},
        {"name": "Low threshold", "value": 100, "min": 1, "max": 255, "step": 1},
        {"name": "High threshold", "value": 200, "min": 1, "max": 255, "step": 1}]}
    assert modules["module_detail"]["none"]["sliders"] == []
    aliases = client.get("/controlnet/module_list", params={"alias_names": "true"}).json()
    assert aliases["module_list"][1] == "Canny edges" and "Canny edges" in aliases["module_detail"]
    assert client.get("/controlnet/settings").json() == {"control_net_unit_count": 3}


def test_detect_answers_each_pictures_map_at_the_processor_resolution(client):
    body = {"controlnet_module": "canny", "controlnet_input_images": [b64_png(square()), b64_png(square((64, 64)))],
            "controlnet_processor_res": 128, "controlnet_threshold_a": 50, "controlnet_threshold_b": 150}
    res = client.post("/controlnet/detect", json=body).json()
    assert res["info"] == "Success"
    maps = [png(b64) for b64 in res["images"]]
    assert [m.size for m in maps] == [(192, 128), (128, 128)]  # short side at 128, as the extension's
    edges = np.asarray(maps[1].convert("L"))
    assert edges.max() == 255 and edges[64, 64] == 0  # the square's outline, not its inside
    plain = client.post("/controlnet/detect", json={"controlnet_module": "none",
                                                    "controlnet_input_images": [b64_png(square((64, 64)))]}).json()
    assert png(plain["images"][0]).size == (512, 512)  # -1 resolution: the extension's default 512


@pytest.mark.parametrize("body, loc, says", [
    ({"controlnet_input_images": [b64_png(Image.new("L", (4097, 4097)))]}, "controlnet_input_images[0]",
     f"{MAX_INPUT_PIXELS} pixels"),
    ({"controlnet_input_images": [b64_png(square())] * (MAX_DETECT_IMAGES + 1)}, "controlnet_input_images",
     f"at most {MAX_DETECT_IMAGES}"),
    ({"controlnet_input_images": []}, "controlnet_input_images", "a list of 1 to"),
    ({"controlnet_input_images": ["bm90IGEgcGljdHVyZQ=="]}, "controlnet_input_images[0]", "a base64 PNG"),
    ({"controlnet_module": "nope", "controlnet_input_images": [b64_png(square())]}, "controlnet_module", "canny"),
    ({"controlnet_module": "canny", "controlnet_threshold_a": 300, "controlnet_input_images": [b64_png(square())]},
     "controlnet_threshold_a", "1 to 255"),
    ({"controlnet_processor_res": 9000, "controlnet_input_images": [b64_png(square())]},
     "controlnet_processor_res", "64 to 2048"),
])
def test_detect_refuses_what_it_would_not_run_with_a_422_naming_the_field(client, body, loc, says):
    res = client.post("/controlnet/detect", json=body)
    assert res.status_code == 422, res.text
    detail = res.json()["detail"][0]
    assert detail["loc"] == ["body", loc] and says in detail["msg"]


def test_an_a1111_name_with_its_hash_finds_the_folders_file_and_pickles_need_allow_pickle(folder, tmp_path):
    file = folder / "control_v11p_sd15_canny.safetensors"
    assert resolve(f"control_v11p_sd15_canny [{legacy_hash(file)}]", folder) == str(file)
    assert resolve("Control_V11p_SD15_Canny [d14c016b]", folder) == str(file)  # A1111 matches any case
    assert resolve("control_v11p_sd15_canny [d14c016b]", tmp_path) == "lllyasviel/control_v11p_sd15_canny"
    assert resolve("control_v11p_sd15_made_up [d14c016b]", tmp_path) == "control_v11p_sd15_made_up"  # never a repo
    assert all(hub.startswith("lllyasviel/") for hub in A1111_CONTROLNETS.values())
    pth = folder / "control_v11f1p_sd15_depth.pth"
    assert resolve("control_v11f1p_sd15_depth [12345678]", folder) == "lllyasviel/control_v11f1p_sd15_depth"
    assert resolve("control_v11f1p_sd15_depth [12345678]", folder, allow_pickle=True) == str(pth)


def test_a_missing_controlnet_name_is_a_clear_error_not_a_hub_lookup():
    from studio.control.models import ControlNets
    from studio.devices import pick_device
    from studio.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="control_v11p_sd15_made_up was not found.*controlnets folder"):
        ControlNets(pick_device("cpu", "fp32")).get("control_v11p_sd15_made_up")


def test_a_pickled_controlnet_is_loaded_only_when_the_studio_allows_pickles(folder):
    from studio.control.models import ControlNets
    from studio.devices import pick_device
    from studio.errors import ModelLoadError

    pth = str(folder / "control_v11f1p_sd15_depth.pth")
    with pytest.raises(ModelLoadError, match="pickle.*--allow-pickle"):
        ControlNets(pick_device("cpu", "fp32")).get(pth)
    # Allowed, it is opened (this one holds no ControlNet: the loader says so, naming the file).
    with pytest.raises(ModelLoadError, match="control_v11f1p_sd15_depth.pth could not be loaded"):
        ControlNets(pick_device("cpu", "fp32"), allow_pickle=True).get(pth)


def test_a_unit_names_the_folders_controlnet_as_model_list_gives_it(client):
    """The name model_list gives steers as the same ControlNet built in (the folder's is its copy)."""
    base = {"prompt": "a lantern", "steps": 3, "width": 64, "height": 64, "seed": 4}
    unit = {"enabled": True, "module": "canny", "image": b64_png(square((64, 64)))}
    name = next(n for n in client.get("/controlnet/model_list").json()["model_list"] if n.startswith("tiny-canny"))
    runs = [client.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": {"controlnet": {"args": [
        {**unit, "model": model}]}}}).json() for model in (name, "builtin:controlnet/sd15")]
    assert f"Model: {name}, Weight: 1.0" in json.loads(runs[0]["info"])["infotexts"][0]
    assert np.array_equal(np.asarray(png(runs[0]["images"][0])), np.asarray(png(runs[1]["images"][0])))


def test_cmd_flags_say_the_servers_settings_never_a_password(studio, tmp_path):
    outputs = OutputFolder(tmp_path)
    local = client_for(studio, outputs).get("/sdapi/v1/cmd-flags").json()
    assert local["api"] is True and local["api_auth"] is None and local["listen"] is False
    assert local["disable_safe_unpickle"] == studio.config.allow_pickle
    guarded = client_for(studio, outputs, {"alice": "wonder", "bob": "builder"}).get(
        "/sdapi/v1/cmd-flags", auth=("alice", "wonder")).json()
    assert guarded["api_auth"] == "alice:***,bob:***" and "wonder" not in json.dumps(guarded)


def test_the_controlnet_routes_keep_the_apis_access_rules(studio, tmp_path):
    outputs = OutputFolder(tmp_path)
    guarded = client_for(studio, outputs, {"alice": "wonder"})
    assert guarded.get("/controlnet/model_list").status_code == 401
    assert guarded.get("/controlnet/version", auth=("alice", "wonder")).json() == {"version": 2}
    refused = client_for(studio, outputs, refusal="add --api-auth").post("/controlnet/detect", json={})
    assert refused.status_code == 403 and refused.json()["detail"] == "add --api-auth"


def test_webuiapis_controlnet_calls_work_against_the_running_app(tmp_path_factory, folder):
    """webuiapi 0.9.17's own calls (its ControlNetInterface, controlnet_detect's `controlnet_images` and
    data: URLs) against `python app.py`, whose /cmd-flags say where it listens."""
    webuiapi = pytest.importorskip("webuiapi")
    with running_app(tmp_path_factory, "--controlnets-dir", str(folder), "--allow-pickle") as app:
        url = urlparse(app.url)
        api = webuiapi.WebUIApi(host=url.hostname, port=url.port)
        assert api.controlnet_version() == 2
        listed = webuiapi.ControlNetInterface(api).model_list()
        pth = folder / "control_v11f1p_sd15_depth.pth"
        assert f"control_v11f1p_sd15_depth [{legacy_hash(pth)}]" in listed  # pickles allowed: listed
        assert api.controlnet_module_list() == list(PREPROCESSORS)
        found = api.controlnet_detect([square()], module="canny", processor_res=64)
        assert found.info == "Success" and [m.size for m in found.images] == [(96, 64)]
        flags = api.get_cmd_flags()
        assert flags["listen"] is False and flags["port"] == url.port and flags["disable_safe_unpickle"] is True
