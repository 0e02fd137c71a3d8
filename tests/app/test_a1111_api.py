"""A1111's HTTP API: the requests Open WebUI and SillyTavern send (from their public source), replayed
and parsed as those clients parse the answers; progress with a live image, interrupt and skip of the
caller's own runs only, errors naming fields, auth, PNG Info."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from support import b64_png, png, running_app
from studio.outputs import OutputFolder
from studio.service import Service
from studio.web.sdapi.routes import build_router
from studio.web.sdapi.calls import SdApi

USERS = {"alice": "wonder", "bob": "builder"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return OutputFolder(tmp_path_factory.mktemp("sdapi-outputs"))


def client_for(studio, outputs, credentials=None, refusal=None) -> TestClient:
    app = FastAPI()
    api = SdApi(Service(studio, outputs), lambda: "tiny")
    app.include_router(build_router(api, credentials, refusal))
    client = TestClient(app)
    client.api = api  # what the tests look into
    return client


@pytest.fixture(scope="module")
def anonymous(studio, outputs):
    return client_for(studio, outputs)


@pytest.fixture(scope="module")
def users(studio, outputs):
    return client_for(studio, outputs, USERS)


def test_open_webui_lists_models_switches_its_model_and_generates(anonymous):
    """routers/images.py: `authorization: ''` on every call; GET options for the model, GET
    sd-models (title / model_name), POST the whole options dict back to switch, POST txt2img with
    prompt, batch_size, width, height, steps, negative_prompt and AUTOMATIC1111_PARAMS."""
    headers = {"authorization": ""}
    options = anonymous.get("/sdapi/v1/options", headers=headers).json()
    assert options["sd_model_checkpoint"] == "tiny"
    listed = [{"id": m["title"], "name": m["model_name"]} for m in anonymous.get("/sdapi/v1/sd-models",
                                                                                   headers=headers).json()]
    assert {"id": "tiny-xl", "name": "tiny-xl"} in listed
    options["sd_model_checkpoint"] = "tiny-xl"
    assert anonymous.post("/sdapi/v1/options", json=options, headers=headers).status_code == 200
    assert anonymous.get("/sdapi/v1/options", headers=headers).json()["sd_model_checkpoint"] == "tiny-xl"
    data = {"prompt": "a lighthouse", "batch_size": 2, "width": 64, "height": 64, "steps": 4,
            "negative_prompt": "fog", "cfg_scale": 6, "sampler_name": "Euler a", "seed": 11}
    res = anonymous.post("/sdapi/v1/txt2img", json=data, headers=headers).json()
    images = [png(b64) for b64 in res["images"]]
    info = json.loads(res["info"])
    assert [i.size for i in images] == [(64, 64)] * 2
    assert info["all_seeds"] == [11, 12] and info["sd_model_name"] == "tiny-xl" and info["steps"] == 4
    assert "Negative prompt: fog" in info["infotexts"][0] and images[0].info["parameters"] == info["infotexts"][0]
    options["sd_model_checkpoint"] = "tiny"
    anonymous.post("/sdapi/v1/options", json=options, headers=headers)


def sillytavern_body(**fields) -> dict:
    """generateAutoImage's body as its server forwards it (url and auth included, Basic header)."""
    return {"url": "http://127.0.0.1:7860", "auth": "", "prompt": "a cat in a hat", "negative_prompt": "blurry",
            "sampler_name": "DDIM", "scheduler": "normal", "steps": 4, "cfg_scale": 7, "width": 64, "height": 64,
            "restore_faces": False, "enable_hr": False, "hr_upscaler": "Latent", "hr_scale": 2.0,
            "denoising_strength": 0.7, "hr_second_pass_steps": 0, "seed": 5,
            "override_settings": {"CLIP_stop_at_last_layers": 1}, "override_settings_restore_afterwards": True,
            "clip_skip": 1, "save_images": True, "send_images": True, "do_not_save_grid": False,
            "do_not_save_samples": False, "hr_additional_modules": [], **fields}


def test_sillytavern_reads_its_lists_sets_a_model_waits_and_generates(anonymous):
    """src/endpoints/stable-diffusion.js: `Authorization: Basic ` always (no auth set); ping is GET
    options; names of samplers and schedulers; titles of models; upscalers then latent modes, "None"
    first; VAEs; set-model then progress polled until idle; txt2img, only images[0] read."""
    headers = {"Authorization": "Basic "}
    assert anonymous.get("/sdapi/v1/options", headers=headers).status_code == 200
    assert "forge_preset" not in anonymous.get("/sdapi/v1/options", headers=headers).json()
    samplers = [x["name"] for x in anonymous.get("/sdapi/v1/samplers", headers=headers).json()]
    schedulers = [x["name"] for x in anonymous.get("/sdapi/v1/schedulers", headers=headers).json()]
    assert {"Euler a", "DDIM", "DPM++ 2M"} <= set(samplers) and "karras" in schedulers
    assert "tiny" in [x["title"] for x in anonymous.get("/sdapi/v1/sd-models", headers=headers).json()]
    upscalers = [x["name"] for x in anonymous.get("/sdapi/v1/upscalers", headers=headers).json()]
    latent = [x["name"] for x in anonymous.get("/sdapi/v1/latent-upscale-modes", headers=headers).json()]
    assert upscalers[0] == "None" and "Latent" in latent
    assert anonymous.get("/sdapi/v1/sd-vae", headers=headers).json() == []
    assert anonymous.post("/sdapi/v1/options", json={"sd_model_checkpoint": "tiny"}, headers=headers).status_code == 200
    state = anonymous.get("/sdapi/v1/progress", headers=headers).json()
    assert state["progress"] == 0.0 and state["state"]["job_count"] == 0  # idle: the model is set
    res = anonymous.post("/sdapi/v1/txt2img", json=sillytavern_body(), headers=headers)
    assert res.status_code == 200
    image = png(res.json()["images"][0])
    info = json.loads(res.json()["info"])
    assert image.size == (64, 64) and info["sampler_name"] == "DDIM" and info["clip_skip"] == 1
    assert {"url", "auth", "clip_skip"} <= set(info["ignored"])  # not A1111's fields: said, not used
    assert any("normal" in note and "Automatic" in note for note in info["notes"])
    again = png(anonymous.post("/sdapi/v1/txt2img", json=sillytavern_body(), headers=headers).json()["images"][0])
    assert np.array_equal(np.asarray(again), np.asarray(image))  # same seed and settings, same image


def test_fields_that_would_change_nothing_here_are_reported_and_bad_values_named(anonymous):
    res = anonymous.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 2, "width": 64, "height": 64,
                                                    "restore_faces": True, "tiling": False, "s_churn": 0.3})
    ignored = json.loads(res.json()["info"])["ignored"]
    assert ignored == {"s_churn": 0.3}  # restore_faces runs the folder's GFPGAN, or says it cannot
    for body, loc in (({"prompt": "x", "steps": "many"}, ["body", "steps"]),
                      ({"prompt": "x", "sampler_name": "Nope"}, ["body", "sampler_name"]),
                      ({"prompt": "x", "n_iter": 0}, ["body", "n_iter"]),
                      ({"prompt": "x", "enable_hr": True, "hr_scale": 9}, ["body", "hr_scale"])):
        res = anonymous.post("/sdapi/v1/txt2img", json=body)
        assert res.status_code == 422 and res.json()["detail"][0]["loc"] == loc, (body, res.json())
    res = anonymous.post("/sdapi/v1/img2img", json={"prompt": "x"})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "init_images"]
    res = anonymous.post("/sdapi/v1/options", json={"sd_model_checkpoint": "no-such-model"})
    assert res.status_code == 422 and "no-such-model" in res.json()["detail"][0]["msg"]
    assert anonymous.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == "tiny"  # unchanged
    res = anonymous.post("/sdapi/v1/txt2img", content=b"{not json")
    assert res.status_code == 422


def test_img2img_and_inpainting_take_a1111s_fields(anonymous):
    picture = Image.new("RGB", (64, 64), (200, 80, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    body = {"prompt": "a tile", "steps": 4, "width": 64, "height": 64, "seed": 3, "denoising_strength": 0.6,
            "init_images": [b64_png(picture, "data:image/png;base64,")], "resize_mode": 1}
    res = anonymous.post("/sdapi/v1/img2img", json=body).json()
    assert "Denoising strength: 0.6" in json.loads(res["info"])["infotexts"][0]
    assert res["parameters"]["init_images"] is None  # not echoed back unless include_init_images
    inpaint = anonymous.post("/sdapi/v1/img2img", json={**body, "mask": b64_png(mask), "mask_blur": 2,
                                                        "inpainting_fill": 1, "inpaint_full_res": False}).json()
    text = json.loads(inpaint["info"])["infotexts"][0]
    assert "Mask blur: 2" in text and png(inpaint["images"][0]).size == (64, 64)
    info = anonymous.post("/sdapi/v1/png-info", json={"image": inpaint["images"][0]}).json()
    assert info["info"] == text and info["parameters"]["Steps"] == "4" and info["parameters"]["Size-1"] == "64"


def run_in_thread(client, body, headers) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(client.post("/sdapi/v1/txt2img", json=body,
                                                                    headers=headers).json()))
    thread.start()
    return thread, out


def wait_progress(client, headers, condition, timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/sdapi/v1/progress", headers=headers).json()
        if condition(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"progress never met the condition: {state}")


def test_progress_shows_the_callers_run_with_a_live_image_and_interrupt_stops_only_theirs(users):
    alice, bob = basic("alice", USERS["alice"]), basic("bob", USERS["bob"])
    body = {"prompt": "a long run", "steps": 150, "width": 64, "height": 64, "n_iter": 3}
    thread, out = run_in_thread(users, body, alice)
    state = wait_progress(users, alice, lambda s: s["state"]["sampling_step"] >= 2 and s["current_image"])
    assert 0 < state["progress"] < 1 and state["state"]["job_count"] == 3 and png(state["current_image"]).size
    assert users.get("/sdapi/v1/progress", params={"skip_current_image": "true"},
                     headers=alice).json()["current_image"] is None
    assert users.get("/sdapi/v1/progress", headers=bob).json()["state"]["job_count"] == 0  # bob sees his own
    assert users.post("/sdapi/v1/interrupt", headers=bob).json() == {}  # bob has nothing to stop
    assert thread.is_alive() and users.get("/sdapi/v1/progress", headers=alice).json()["state"]["job_count"] == 3
    stopped_at = users.get("/sdapi/v1/progress", headers=alice).json()["state"]["sampling_step"]
    assert users.post("/sdapi/v1/interrupt", headers=alice).json() == {}
    thread.join(60)
    assert not thread.is_alive()
    info = json.loads(out["info"])
    # Batches 2 and 3 never ran; batch 1 answers with its partial image, as A1111's does.
    assert len(out["images"]) == 1 and png(out["images"][0]).size == (64, 64)
    assert any("interrupted at step" in n for n in info["notes"])
    note = next(n for n in info["notes"] if "batch 1 stopped at step" in n)
    step = int(note.split("step ")[1].split("/")[0])
    assert step <= stopped_at + 5  # within a step or so of the interrupt, not the 150
    assert users.get("/sdapi/v1/progress", headers=alice).json()["state"]["job_count"] == 0


def test_skip_ends_the_current_batch_and_the_next_one_runs(users):
    alice = basic("alice", USERS["alice"])
    thread, out = run_in_thread(users, {"prompt": "skip me", "steps": 150, "width": 64, "height": 64,
                                        "n_iter": 2, "seed": 7}, alice)
    wait_progress(users, alice, lambda s: s["state"]["job_no"] == 0 and s["state"]["sampling_step"] >= 1)
    assert users.post("/sdapi/v1/skip", headers=alice).status_code == 200
    wait_progress(users, alice, lambda s: s["state"]["job_no"] == 1)
    users.post("/sdapi/v1/interrupt", headers=alice)  # no need to wait for the second one
    thread.join(60)
    assert any("batch 1 stopped" in n for n in json.loads(out["info"])["notes"])


def test_credentials_are_asked_for_and_a_shared_studio_without_them_says_so(studio, outputs, users):
    assert users.get("/sdapi/v1/options").status_code == 401
    wrong = users.get("/sdapi/v1/options", headers=basic("alice", "nope"))
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Incorrect username or password"
    assert wrong.headers["WWW-Authenticate"] == "Basic"
    assert users.get("/sdapi/v1/options", headers=basic("bob", USERS["bob"])).status_code == 200
    assert users.get("/internal/ping").json() == {}  # open, as A1111's
    refused = client_for(studio, outputs, refusal="needs --api-auth").get("/sdapi/v1/samplers")
    assert refused.status_code == 403 and "--api-auth" in refused.json()["detail"]


def test_the_app_serves_the_api_next_to_the_page(tmp_path_factory):
    with running_app(tmp_path_factory, "--api-auth", "u:p") as app:
        request = urllib.request.Request(app.url + "sdapi/v1/samplers", headers=basic("u", "p"))
        with urllib.request.urlopen(request, timeout=30) as r:
            assert "Euler a" in [x["name"] for x in json.load(r)]
        try:
            urllib.request.urlopen(app.url + "sdapi/v1/samplers", timeout=30)
            raise AssertionError("no credentials, yet served")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401


def test_override_settings_change_this_request_only_and_controlnet_units_come_through_alwayson_scripts(anonymous):
    """A model in override_settings serves that request alone (the caller's option stays); the
    ControlNet extension's units (an IP-Adapter one too) steer the image; other scripts are reported."""
    base = {"prompt": "a lantern", "steps": 4, "width": 64, "height": 64, "seed": 9}
    other = json.loads(anonymous.post("/sdapi/v1/txt2img", json={
        **base, "override_settings": {"sd_model_checkpoint": "tiny-xl", "sd_vae": "Automatic"}}).json()["info"])
    assert other["sd_model_name"] == "tiny-xl" and other["ignored"] == {}
    assert anonymous.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == "tiny"
    picture = Image.new("RGB", (64, 64), (30, 30, 30))
    picture.paste((240, 240, 240), (16, 16, 48, 48))
    plain = anonymous.post("/sdapi/v1/txt2img", json=base).json()
    units = [{"enabled": True, "module": "canny", "model": "builtin:controlnet/sd15", "weight": 1.0,
              "image": {"image": b64_png(picture), "mask": None}, "resize_mode": 1, "control_mode": 2,
              "low_vram": False, "processor_res": 512, "threshold_a": 100, "threshold_b": 200},
             {"enabled": True, "module": "ip-adapter_clip_h", "model": "builtin:ip-adapter/sd15", "weight": 0.7,
              "image": b64_png(picture)},
             {"enabled": False, "module": "depth", "model": "whatever"}]
    steered = anonymous.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": {
        "ControlNet": {"args": units}, "Dynamic Prompts v2.17.1": {"args": [True]}}}).json()
    info = json.loads(steered["info"])
    assert 'Control Mode: ControlNet is more important' in info["infotexts"][0]
    assert 'Module: ip-adapter-auto, Model: builtin:ip-adapter/sd15, Weight: 0.7' in info["infotexts"][0]
    assert info["ignored"] == {"alwayson_scripts.Dynamic Prompts v2.17.1": "(not run here)"}
    assert not np.array_equal(np.asarray(png(steered["images"][0])), np.asarray(png(plain["images"][0])))
    res = anonymous.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": {"controlnet": {"args": [
        {"module": "canny", "model": "builtin:controlnet/sd15", "image": b64_png(picture), "weight": 5}]}}})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "alwayson_scripts", "controlnet", "args[0]",
                                                                 "weight"]  # the key the caller sent


def test_a_caller_has_one_running_and_a_few_waiting_at_most(studio, outputs):
    client = client_for(studio, outputs)
    first = run_in_thread(client, {"prompt": "long", "steps": 150, "width": 64, "height": 64, "n_iter": 4}, {})
    wait_progress(client, {}, lambda s: s["state"]["sampling_step"] >= 1)
    waiting = [run_in_thread(client, {"prompt": "w", "steps": 1, "width": 64, "height": 64}, {}) for _ in range(2)]
    deadline = time.monotonic() + 60
    while client.api._in_flight.get("anonymous") != 3:  # the two wait for the device (the run holds it)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    res = client.post("/sdapi/v1/txt2img", json={"prompt": "one too many", "steps": 1, "width": 64, "height": 64})
    assert res.status_code == 429 and "--max-queued" in res.json()["detail"]
    client.post("/sdapi/v1/interrupt")
    for thread, _ in [first, *waiting]:
        thread.join(120)


def test_the_flags_say_who_may_use_the_api():
    import app

    def options(*argv):
        return app.api_options(app.parser().parse_args(list(argv)))

    assert options() == {"api": True, "api_credentials": None, "api_refusal": None}  # local: anonymous
    assert "--api-auth" in options("--share")["api_refusal"]
    assert options("--share", "--api-auth", "a:b,c:d")["api_credentials"] == {"a": "b", "c": "d"}
    assert options("--host", "0.0.0.0", "--auth", "u:p")["api_credentials"] == {"u": "p"}
    assert options("--no-api")["api"] is False
    with pytest.raises(SystemExit):
        options("--api-auth", "no-colon")


def test_page_and_api_users_are_isolated(tmp_path_factory):
    """On the real app: the page's Stop (a gradio_client caller) does not stop an API run, and an
    API user's interrupt does not stop another's."""
    from gradio_client import Client

    with running_app(tmp_path_factory, "--api-auth", "alice:wonder,bob:builder") as app:
        def call(method, path, user, body=None):
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(app.url + path.lstrip("/"), data=data, method=method,
                                             headers={**basic(user, USERS[user]), "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=300) as r:
                return json.load(r)

        out: dict = {}
        thread = threading.Thread(target=lambda: out.update(call("POST", "/sdapi/v1/txt2img", "alice", {
            "prompt": "isolated", "steps": 150, "width": 64, "height": 64, "n_iter": 2})))
        thread.start()
        deadline = time.monotonic() + 120
        while call("GET", "/sdapi/v1/progress?skip_current_image=true", "alice")["state"]["sampling_step"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        Client(app.url, verbose=False).predict(api_name="/stop")  # a page visitor's Stop
        call("POST", "/sdapi/v1/interrupt", "bob")  # another API user's interrupt
        before = call("GET", "/sdapi/v1/progress?skip_current_image=true", "alice")["state"]["sampling_step"]
        while True:  # alice's run goes on: two more steps after both
            state = call("GET", "/sdapi/v1/progress?skip_current_image=true", "alice")["state"]
            assert time.monotonic() < deadline + 120 and not state["interrupted"] and state["job_count"] == 2
            if state["sampling_step"] >= before + 2:
                break
            time.sleep(0.1)
        call("POST", "/sdapi/v1/interrupt", "alice")
        thread.join(120)
        assert any("stopped at step" in n for n in json.loads(out["info"])["notes"])


def test_a_bots_loose_body_runs_as_a1111_runs_it_and_says_what_changed(anonymous):
    """AIYA-like: numbers as text, styles ["None"], a width off the model's step, a LoRA the folder
    lacks, Euler a with Karras (Open WebUI's default): it runs, and info.notes says each replacement."""
    body = {"prompt": "a fox <lora:nowhere:0.7>", "negative_prompt": "", "steps": "3", "cfg_scale": "7.0",
            "seed": "42", "width": "100", "height": 64, "styles": ["None"], "sampler_name": "Euler a",
            "scheduler": "Karras", "n_iter": 1, "batch_size": 1}
    res = anonymous.post("/sdapi/v1/txt2img", json=body)
    assert res.status_code == 200, res.json()
    info = json.loads(res.json()["info"])
    notes = "\n".join(info["notes"])
    assert png(res.json()["images"][0]).size == (104, 64) and info["seed"] == 42 and info["steps"] == 3
    assert info["sampler_name"] == "Euler a" and "lora" not in info["prompt"]
    for said in ("cfg_scale '7.0'", "style 'None' not found", "width 100 ran as 104",
                 "LoRA 'nowhere' not found: ran without it", "schedule Karras ran as Automatic"):
        assert said in notes, (said, notes)
    res = anonymous.post("/sdapi/v1/txt2img", json={**body, "width": "wide"})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "width"]


def test_a1111s_upscaler_models_and_target_size_run_as_the_nearest(anonymous):
    body = {"prompt": "a dune", "steps": 2, "width": 64, "height": 64, "seed": 1, "enable_hr": True,
            "hr_upscaler": "R-ESRGAN 4x+", "hr_scale": 3, "hr_resize_x": 128, "hr_resize_y": 0,
            "denoising_strength": 0.5, "sampler_name": "DPM adaptive", "scheduler": "kl_optimal"}
    res = anonymous.post("/sdapi/v1/txt2img", json=body).json()
    info = json.loads(res["info"])
    assert png(res["images"][0]).size == (128, 128)  # the target size won over hr_scale 3
    assert "Hires upscaler: Lanczos" in info["infotexts"][0] and info["sampler_name"] == "DPM++ 2M"
    assert sum("ran as" in note for note in info["notes"]) == 4  # upscaler, target size, sampler, schedule


def test_a_controlnet_unit_without_image_runs_on_the_init_image_in_img2img(anonymous):
    picture = Image.new("RGB", (64, 64), (30, 30, 30))
    picture.paste((240, 240, 240), (16, 16, 48, 48))
    unit = {"enabled": True, "module": "canny", "model": "builtin:controlnet/sd15", "image": "", "weight": 1.0}
    body = {"prompt": "a lantern", "steps": 2, "width": 64, "height": 64, "seed": 9, "init_images": [b64_png(picture)],
            "alwayson_scripts": {"controlnet": {"args": [unit]}}}
    res = anonymous.post("/sdapi/v1/img2img", json=body)
    assert res.status_code == 200, res.json()
    info = json.loads(res.json()["info"])
    assert "ControlNet 0" in info["infotexts"][0] and any("init image" in note for note in info["notes"])
    res = anonymous.post("/sdapi/v1/txt2img", json={k: v for k, v in body.items() if k != "init_images"})
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"] == ["body", "alwayson_scripts", "controlnet", "args[0]", "image"]


def test_a1111s_sd_upscale_and_outpainting_scripts_run_as_the_studios_own(anonymous):
    """img2img with script_name "SD upscale" repaints in tiles; "Poor man's outpainting" extends the picture."""
    picture = b64_png(Image.new("RGB", (64, 64), (20, 120, 220)))
    base = {"prompt": "a wall", "steps": 2, "width": 64, "height": 64, "seed": 4, "init_images": [picture],
            "denoising_strength": 0.5}
    tiled = anonymous.post("/sdapi/v1/img2img", json={**base, "script_name": "SD upscale",
                                                      "script_args": [None, 16, 1, 2]})
    assert tiled.status_code == 200, tiled.text
    assert png(tiled.json()["images"][0]).size == (128, 128)
    assert "SD upscale overlap: 16" in json.loads(tiled.json()["info"])["infotexts"][0]
    wider = anonymous.post("/sdapi/v1/img2img", json={**base, "denoising_strength": 1.0,
                                                      "script_name": "Poor man's outpainting",
                                                      "script_args": [32, 4, 0, ["right"]]})
    assert wider.status_code == 200, wider.text
    assert png(wider.json()["images"][0]).size == (96, 64)
    assert "Outpaint right: 32" in json.loads(wider.json()["info"])["infotexts"][0]


def test_restore_faces_without_a_face_restorer_is_said_and_not_run(anonymous):
    """A1111's restore_faces: true runs the upscalers folder's GFPGAN; a studio without one says so."""
    answer = anonymous.post("/sdapi/v1/txt2img", json={"prompt": "a face", "steps": 2, "width": 64, "height": 64,
                                                       "restore_faces": True})
    assert answer.status_code == 200, answer.text
    info = json.loads(answer.json()["info"])
    assert "restore_faces" not in info["ignored"]
    assert any("no face restoration model" in note for note in info["notes"]), info
    assert "Face restoration" not in info["infotexts"][0]


def test_variation_seeds_come_through_and_are_reported_as_a1111_reports_them(anonymous):
    body = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "seed": 5, "subseed": 70, "subseed_strength": 0.4,
            "seed_resize_from_w": 96, "seed_resize_from_h": 64, "batch_size": 2}
    res = anonymous.post("/sdapi/v1/txt2img", json=body)
    assert res.status_code == 200, res.json()
    info = json.loads(res.json()["info"])
    assert info["ignored"] == {} and info["all_seeds"] == [5, 5]  # with a strength the batch shares the seed
    assert info["subseed"] == 70 and info["all_subseeds"] == [70, 71] and info["subseed_strength"] == 0.4
    assert (info["seed_resize_from_w"], info["seed_resize_from_h"]) == (96, 64)
    assert "Variation seed: 71, Variation seed strength: 0.4, Seed resize from: 96x64" in info["infotexts"][1]
    plain = json.loads(anonymous.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 2, "width": 64,
                                                                  "height": 64, "seed": 5}).json()["info"])
    assert plain["subseed_strength"] == 0 and plain["seed_resize_from_w"] == -1 and "Variation" not in \
        plain["infotexts"][0]
    picture = b64_png(Image.new("RGB", (64, 64), (200, 80, 40)))
    res = anonymous.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [picture], "subseed_strength": 0.4})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "subseed_strength"], res.json()
