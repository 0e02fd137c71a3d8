"""Model upscalers (studio/upscalers/) on tiny real architectures spandrel detects: hires fix through a
model, the Upscale task (by a factor, to a size, a second upscaler blended in), A1111's names, the
pickle rule, tiles that leave no seams, Stop between tiles, and the cost counted before any work."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from PIL import Image

from support import picture, pixels, tiny_request
from studio import Studio, StudioConfig
from studio.errors import InvalidValue, StudioError
from studio.events import Cancelled, Result
from studio.infotext import fields_from_params, parse_infotext
from studio.service.plan import make_plan

from studio.upscalers.library import available

if not available():
    pytest.skip("spandrel is not installed (pip install --no-deps -r requirements-upscale.txt)", allow_module_level=True)

from studio.upscalers import folder, tiny  # noqa: E402
from studio.upscalers.models import Upscalers, describe, listed  # noqa: E402
from studio.upscalers.run import model_pass, upscale  # noqa: E402


@pytest.fixture(scope="module")
def upscalers_dir(tmp_path_factory):
    root = tiny.write(tmp_path_factory.mktemp("upscalers"))
    tiny.write(root, {"RealESRGAN_x4plus": ("ESRGAN", 4)})  # A1111's R-ESRGAN 4x+ file, tiny
    return root


@pytest.fixture(scope="module")
def studio(upscalers_dir):
    return Studio(StudioConfig(device="cpu", cache_size=1, upscalers_dir=upscalers_dir))


def run(studio, settings):
    """A call planned as every door plans it, then its one request run; the last event."""
    plan = make_plan(settings, studio.config)
    return list(studio.generate(plan[0]))[-1]


def test_the_tiny_files_are_detected_with_their_architecture_and_scale(upscalers_dir):
    found = {name: (info.architecture, info.scale) for name, info in listed(upscalers_dir, False)}
    assert found == {"tiny-esrgan-x4": ("ESRGAN", 4), "tiny-compact-x2": ("Compact", 2), "R-ESRGAN 4x+": ("ESRGAN", 4)}
    assert "torchvision" not in sys.modules or sys.modules["torchvision"].__spec__ is not None  # no stand-in left


def test_hires_fix_through_a_model_upscaler_is_the_same_image_for_the_same_seed(studio):
    settings = dict(model="tiny", prompt="a red cube", steps=2, width=64, height=64, seed=3, hires=True,
                    hires_upscaler="tiny-compact-x2", hires_scale=2, hires_strength=0.3)
    first, again = run(studio, settings), run(studio, settings)
    assert isinstance(first, Result) and first.images[0].size == (128, 128)
    assert "Hires upscaler: tiny-compact-x2" in first.infotexts[0]
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))
    lanczos = run(studio, {**settings, "hires_upscaler": "Lanczos"})
    assert not np.array_equal(pixels(first.images[0]), pixels(lanczos.images[0]))  # the model did the enlarging


def test_an_upscale_by_a_factor_keeps_the_pictures_own_infotext_and_png_info_restores_its_generation(studio):
    made = run(studio, dict(model="tiny", prompt="a lighthouse", steps=2, width=64, height=64, seed=11))
    source = made.images[0].copy()
    source.info["parameters"] = made.infotexts[0]
    done = run(studio, dict(upscale_image=source, upscaler="R-ESRGAN 4x+", upscale_by=3))
    assert isinstance(done, Result) and done.images[0].size == (192, 192)
    text = done.infotexts[0]
    assert text.startswith(made.infotexts[0])
    assert "Postprocess upscale by: 3, Postprocess upscaler: R-ESRGAN 4x+" in text and "Postprocess upscaler hash" in text
    restored, notes = fields_from_params(parse_infotext(text).params)
    assert restored["task"] == "txt2img" and restored["seed"] == 11 and not notes


def test_to_a_size_crops_or_stretches_and_a_second_upscaler_blends_in(studio):
    wide = Image.new("RGB", (80, 40), (10, 200, 30))
    cropped = run(studio, dict(upscale_image=wide, upscaler="Lanczos", upscale_width=96, upscale_height=96))
    assert cropped.images[0].size == (96, 96) and cropped.images[0].getpixel((48, 48)) == (10, 200, 30)
    assert "Postprocess upscale to: 96x96" in cropped.infotexts[0] and "Postprocess crop to: 96x96" in cropped.infotexts[0]
    noisy = picture(5, (48, 32))
    alone = run(studio, dict(upscale_image=noisy, upscaler="Nearest", upscale_by=2))
    blended = run(studio, dict(upscale_image=noisy, upscaler="Nearest", upscale_by=2, upscaler_2="tiny-esrgan-x4",
                               upscaler_2_visibility=0.5))
    assert blended.images[0].size == (96, 64) and "Postprocess upscaler 2: tiny-esrgan-x4" in blended.infotexts[0]
    assert not np.array_equal(pixels(alone.images[0]), pixels(blended.images[0]))


def test_tiles_leave_no_seams(upscalers_dir):
    _, model = describe("tiny-esrgan-x4", upscalers_dir / "tiny-esrgan-x4.safetensors", False)
    source = picture(2, (150, 90))
    whole = model_pass(model, source, 1024, lambda: None)
    tiled = model_pass(model, source, 48, lambda: None)
    difference = np.abs(pixels(whole).astype(int) - pixels(tiled).astype(int))
    assert whole.size == tiled.size == (600, 360) and difference.mean() < 0.5


def test_stop_lands_between_tiles(upscalers_dir):
    ups = Upscalers("cpu", None)
    stop, tiles = threading.Event(), []

    def stopped() -> None:
        if stop.is_set():
            raise KeyboardInterrupt

    def on_tile(done: int, total: int) -> None:
        tiles.append((done, total))
        stop.set()  # Stop pressed while the first tile ran

    with pytest.raises(KeyboardInterrupt):
        upscale(picture(1, (200, 200)), (400, 400), "tiny-compact-x2", ups, upscalers_dir, False, stopped, 64, on_tile)
    assert tiles == [(1, 16)]


def test_stop_lands_inside_a_tile_at_the_next_layer(upscalers_dir):
    """A Stop pressed while a tile runs ends it at the network's next layer, not after the tile (a full
    ESRGAN tile takes seconds on a CPU)."""
    ups = Upscalers("cpu", None)
    _, model = ups.get("tiny-esrgan-x4", upscalers_dir / "tiny-esrgan-x4.safetensors", False)
    stop, layers, tiles = threading.Event(), [], []

    def stopped() -> None:
        layers.append(1)
        if len(layers) == 5:
            stop.set()  # pressed during the first tile, after four of its layers
        if stop.is_set():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model_pass(model, picture(1, (64, 64)), 64, stopped, lambda done, total: tiles.append(done))
    assert tiles == [] and len(layers) == 5
    assert not model.model._forward_pre_hooks and all(not m._forward_pre_hooks for m in model.model.modules())
    assert model_pass(model, picture(1, (32, 32)), 64, lambda: None).size == (128, 128)  # the hooks are gone


def test_a_stopped_upscale_ends_cancelled(studio):
    plan = make_plan(dict(upscale_image=picture(3, (256, 256)), upscaler="tiny-esrgan-x4", upscale_by=2), studio.config)
    job = studio.generate(plan[0])
    seen = []
    for event in job:
        seen.append(event)
        if type(event).__name__ == "Progress":
            job.cancel()
    assert isinstance(seen[-1], Cancelled) and sum(type(e).__name__ == "Progress" for e in seen) < 4


def test_names_the_folder_lacks_paths_and_pickles_are_refused_by_field_before_any_work(studio, upscalers_dir, tmp_path):
    with pytest.raises(InvalidValue, match="upscaler: '4x-UltraSharp'.*tiny-compact-x2"):
        make_plan(dict(upscale_image=picture(), upscaler="4x-UltraSharp"), studio.config)
    with pytest.raises(InvalidValue, match="hires_upscaler: '../tiny-esrgan-x4'"):
        make_plan(dict(model="tiny", prompt="x", hires=True, hires_upscaler="../tiny-esrgan-x4"), studio.config)
    with pytest.raises(InvalidValue, match="upscaler: 'Latent'"):
        make_plan(dict(upscale_image=picture(), upscaler="Latent"), studio.config)
    # A pickled file is neither listed nor found without --allow-pickle; with it, read weights-only.
    import torch

    torch.save(tiny.build("Compact", 2), tmp_path / "old-x2.pth")
    assert folder.names(tmp_path) == [] and folder.names(tmp_path, allow_pickle=True) == ["old-x2"]
    with pytest.raises(InvalidValue, match="--allow-pickle"):
        folder.find("upscaler", "old-x2", tmp_path)
    info, _ = describe("old-x2", tmp_path / "old-x2.pth", True)
    assert (info.architecture, info.scale) == ("Compact", 2)
    with pytest.raises(InvalidValue, match="allow-pickle"):
        describe("old-x2", tmp_path / "old-x2.pth", False)


def test_a_file_spandrel_cannot_read_is_named(tmp_path):
    from safetensors.torch import save_file
    import torch

    save_file({"nothing.weight": torch.zeros(2)}, str(tmp_path / "junk.safetensors"))
    with pytest.raises(StudioError, match="junk: spandrel does not know this file's architecture"):
        describe("junk", tmp_path / "junk.safetensors", False)


def test_the_cost_counts_a_model_upscale_and_the_cap_refuses_it_by_name(upscalers_dir):
    small = dict(upscale_image=picture(0, (512, 512)), upscale_by=4)
    config = StudioConfig(device="cpu", upscalers_dir=upscalers_dir, max_cost=5)
    assert make_plan({**small, "upscaler": "Lanczos"}, config).cost == 0
    with pytest.raises(InvalidValue, match="cost"):
        make_plan({**small, "upscaler": "tiny-esrgan-x4"}, config)
    hires = tiny_request(hires=True, hires_upscaler="tiny-esrgan-x4", hires_scale=2)
    assert hires.upscaling_cost() > 0 and tiny_request(hires=True, hires_scale=2).upscaling_cost() == 0
    with pytest.raises(InvalidValue, match="upscale_by: '8192x8192'"):
        make_plan(dict(upscale_image=picture(0, (1024, 1024)), upscale_by=8), config)
