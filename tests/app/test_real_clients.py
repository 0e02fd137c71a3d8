"""A1111's own Python client, webuiapi 0.9.17 (pinned in requirements-test.txt), against the running
studio exactly as its users call it: its default payloads (every key it sends, its ControlNet units
with an empty image, its `Resize and Fill`), sd-webui-controlnet's routes through its methods, an
interrupt that still yields `result.image`. A change that breaks this client fails here."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from support import running_app

webuiapi = pytest.importorskip("webuiapi")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_app(tmp_path_factory) as app:
        url = urlparse(app.url)
        yield webuiapi.WebUIApi(host=url.hostname, port=url.port, steps=4)


def small(**fields):
    """What a user passes on top of webuiapi's own defaults (it sends every other key itself)."""
    return {"prompt": "a lighthouse at dusk", "seed": 42, "width": 64, "height": 64, **fields}


def test_lists_and_options_as_webuiapi_reads_them(api):
    assert "tiny" in [m["title"] for m in api.get_sd_models()]
    assert "Euler a" in [s["name"] for s in api.get_samplers()]
    assert "karras" in [s["name"] for s in api.get_schedulers()]
    assert api.get_options()["sd_model_checkpoint"] == "tiny"
    assert api.get_upscalers()[0]["name"] == "None"


def test_txt2img_with_webuiapis_defaults_runs_and_repeats(api):
    first = api.txt2img(**small())
    assert first.image.size == (64, 64) and first.info["all_seeds"] == [42]
    again = api.txt2img(**small())
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))  # same seed, same image
    # Open WebUI's default params: a sampler with a schedule it cannot take runs with one it can, said.
    karras = api.txt2img(**small(sampler_name="Euler a", scheduler="Karras"))
    assert karras.image.size == (64, 64)
    # Strings for numbers, an unknown style, a size off the model's multiple: A1111 runs them.
    loose = api.txt2img(**small(cfg_scale="7.0", seed="42", styles=["None"], width=100))
    assert loose.image.size[0] % 8 == 0 and loose.info["notes"]


def test_img2img_with_a_controlnet_unit_that_has_no_image_uses_the_init_image(api):
    init = Image.new("RGB", (64, 64), (200, 120, 40))
    unit = webuiapi.ControlNetUnit(module="canny", model="builtin:controlnet/sd15", weight=0.5)
    result = api.img2img(images=[init], prompt="a bright square", seed=3, denoising_strength=0.6, width=64, height=64,
                         controlnet_units=[unit])
    assert result.image.size == (64, 64)
    assert "ControlNet 0:" in result.info["infotexts"][0]


def test_controlnet_routes_through_webuiapi(api):
    assert api.controlnet_version() >= 2
    assert "builtin:controlnet/sd15" in " ".join(api.controlnet_model_list())
    assert "canny" in api.controlnet_module_list()
    maps = api.controlnet_detect([Image.new("RGB", (64, 64), (255, 255, 255))], module="canny",
                                 processor_res=64, threshold_a=100, threshold_b=200)
    assert len(maps.images) == 1 and min(maps.images[0].size) == 64  # the map at the processor resolution


def test_an_interrupted_call_still_answers_with_its_image(api):
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(result=api.txt2img(**small(steps=150, width=128,
                                                                                  height=128))))
    worker.start()
    deadline = time.monotonic() + 120
    while api.get_progress()["state"]["sampling_step"] < 2:
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.05)
    api.interrupt()
    worker.join(120)
    result = out["result"]
    assert result.image is not None and result.image.size == (128, 128)  # A1111's partial image
    assert any("interrupted at step" in note for note in result.info["notes"])
    assert "Interrupted: step" in result.info["infotexts"][0]


def test_extras_upscale_through_webuiapi(api):
    result = api.extra_single_image(Image.new("RGB", (32, 24), (5, 50, 150)), upscaler_1="R-ESRGAN 4x+",
                                    upscaling_resize=2)
    assert result.image.size == (64, 48) and "Lanczos" in result.info


def test_webuiapis_adetailer_runs_the_detailer_with_the_studios_detector(api):
    """webuiapi's ADetailer (ad_tab_enable and all its defaults) on the tiny detector: run, written back."""
    import webuiapi

    result = api.txt2img(prompt="a portrait", steps=2, width=64, height=64, seed=3,
                         adetailer=[webuiapi.ADetailer(ad_model="builtin:owlv2", ad_confidence=0.5)])
    text = result.info["infotexts"][0]
    assert 'ADetailer model: "builtin:owlv2"' in text and "ADetailer model classes: face" in text
    assert not any("ad_tab_enable" in key for key in result.info["ignored"])


def test_webuiapi_upscales_with_the_folders_models_under_a1111s_names(tmp_path_factory):
    """A studio with an upscalers folder: webuiapi lists its models with their scale, Extras and hires fix
    run `R-ESRGAN 4x+` (the folder's RealESRGAN_x4plus), and a model the folder lacks is said."""
    from studio.upscalers.library import available
    from studio.upscalers.tiny import write

    if not available():
        pytest.skip("spandrel is not installed")
    folder = write(tmp_path_factory.mktemp("upscalers"), {"RealESRGAN_x4plus": ("ESRGAN", 4)})
    with running_app(tmp_path_factory, "--upscalers-dir", str(folder)) as app:
        url = urlparse(app.url)
        client = webuiapi.WebUIApi(host=url.hostname, port=url.port, steps=2)
        assert {"name": "R-ESRGAN 4x+", "scale": 4}.items() <= next(
            u for u in client.get_upscalers() if u["name"] == "R-ESRGAN 4x+").items()
        extra = client.extra_single_image(Image.new("RGB", (48, 32), (5, 50, 150)), upscaler_1="R-ESRGAN 4x+",
                                          upscaling_resize=2)
        assert extra.image.size == (96, 64) and "ran as Lanczos" not in extra.info
        hires = client.txt2img(prompt="a cat", width=64, height=64, enable_hr=True, hr_scale=2,
                               hr_upscaler="R-ESRGAN 4x+", denoising_strength=0.3)
        assert hires.image.size == (128, 128) and "Hires upscaler: R-ESRGAN 4x+" in hires.info["infotexts"][0]
        missing = client.extra_single_image(Image.new("RGB", (48, 32)), upscaler_1="4x-UltraSharp")
        assert "4x-UltraSharp" in missing.info and "Lanczos" in missing.info


def test_the_daily_tools_through_webuiapi(api):
    """Prompt editing, variation seeds, a dynamic-prompts choice and the X/Y/Z plot as webuiapi's users
    send them (its txt2img keywords, script_name and positional script_args)."""
    edited = api.txt2img(**small(prompt="a [cat:dog:0.5] on a [red|blue] mat"))
    assert edited.info["prompt"] == "a [cat:dog:0.5] on a [red|blue] mat" and edited.image.size == (64, 64)
    varied = api.txt2img(**small(subseed=7, subseed_strength=0.4))
    assert varied.info["subseed"] == 7 and varied.info["subseed_strength"] == 0.4
    assert "Variation seed: 7" in varied.info["infotexts"][0]
    assert not np.array_equal(np.asarray(varied.image), np.asarray(api.txt2img(**small()).image))
    chosen = api.txt2img(**small(prompt="a {red|blue} lighthouse"))
    assert chosen.info["prompt"] in ("a red lighthouse", "a blue lighthouse")
    assert api.get_embeddings() == {"loaded": {}, "skipped": {}}
    assert "x/y/z plot" in api.get_scripts()["txt2img"]
    # A1111 1.10's txt2img axis list (axis_options less img2img's): 4 = Steps, 6 = CFG Scale
    plot = api.txt2img(**small(script_name="x/y/z plot", script_args=[
        4, "2, 3", [], 6, "5, 7", [], 0, "", [], True, False, False, False, False, False, False, 0, False]))
    assert len(plot.images) == 5 and plot.images[0].size[0] > 2 * 64  # the labelled grid first, then 4 cells
