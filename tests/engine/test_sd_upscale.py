"""SD upscale (studio/tasks/tiled.py): A1111's tile grid, tiles that blend back into the picture they
came from, and the whole run on the tiny model: its size, every tile's steps counted, the same image
for the same seed, its infotext read back, its limits refused by field before any work."""

from __future__ import annotations

import numpy as np
import pytest

from support import picture, pixels
from studio import Studio, StudioConfig
from studio.errors import InvalidValue
from studio.events import Progress, Result
from studio.infotext import fields_from_params, parse_infotext
from studio.service.plan import make_plan
from studio.tasks.tiled import blend, grid


def test_the_grid_covers_the_picture_as_a1111_lays_it_out():
    boxes = grid((192, 128), (64, 64), 16)
    assert len(boxes) == 12  # ceil((192-16)/48) x ceil((128-16)/48)
    assert boxes[0] == (0, 0, 64, 64) and boxes[-1] == (128, 64, 192, 128)  # the last flush with the edge
    covered = np.zeros((128, 192), bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert grid((64, 64), (64, 64), 16) == [(0, 0, 64, 64)]


def test_tiles_of_one_picture_blend_back_into_it():
    whole = picture(4, (150, 100))
    boxes = grid(whole.size, (64, 64), 24)
    assert np.array_equal(pixels(blend(whole.size, boxes, [whole.crop(b) for b in boxes], 24)), pixels(whole))


@pytest.fixture(scope="module")
def studio():
    return Studio(StudioConfig(device="cpu", cache_size=1))


BASE = dict(model="tiny", prompt="a cat", steps=4, width=64, height=64, sd_upscale=True, sd_upscale_scale=2,
            sd_upscale_overlap=16, denoising_strength=0.5, seed=3)


def test_sd_upscale_repaints_every_tile_the_same_for_the_same_seed_and_its_infotext_restores_it(studio):
    settings = {**BASE, "init_image": picture(1, (96, 64))}
    plan = make_plan(settings, studio.config)
    events = list(studio.generate(plan[0]))
    result = events[-1]
    assert isinstance(result, Result) and result.images[0].size == (192, 128)
    steps = [e for e in events if isinstance(e, Progress)]
    assert steps[-1].total == 12 * 2 and steps[-1].step == steps[-1].total  # 12 tiles x 2 steps (strength 0.5)
    again = studio.run(make_plan(settings, studio.config)[0])
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))
    text = result.infotexts[0]
    assert "SD upscale scale: 2, SD upscale overlap: 16, SD upscale upscaler: Lanczos" in text
    restored, notes = fields_from_params(parse_infotext(text).params)
    assert (restored["task"], restored["sd_upscale"], restored["sd_upscale_scale"], restored["sd_upscale_overlap"],
            restored["width"]) == ("img2img", True, 2.0, 16, 64) and not notes
    plain = studio.run(make_plan({**settings, "sd_upscale": False}, studio.config)[0])
    assert plain.images[0].size == (64, 64) and "SD upscale" not in plain.infotexts[0]


@pytest.mark.parametrize("change, field", [
    ({"sd_upscale_scale": 1.0, "width": 128}, "sd_upscale_scale"),  # smaller than one tile
    ({"sd_upscale_overlap": 64}, "sd_upscale_overlap"),
    ({"batch_size": 2}, "batch_size"),
    ({"sd_upscale_upscaler": "4x-UltraSharp"}, "sd_upscale_upscaler"),  # no upscalers folder here
    ({"sd_upscale_scale": 4, "width": 64, "init_image": picture(0, (2048, 2048))}, "sd_upscale_scale"),
])
def test_its_limits_are_refused_by_field_before_any_work(change, field):
    with pytest.raises(InvalidValue) as caught:
        make_plan({**BASE, "init_image": picture(1, (96, 64)), **change}, StudioConfig(device="cpu"))
    assert caught.value.field == field


def test_the_cost_counts_every_tile():
    one = make_plan({**BASE, "init_image": picture(1, (96, 64)), "sd_upscale": False}, StudioConfig(device="cpu"))
    tiled = make_plan({**BASE, "init_image": picture(1, (96, 64))}, StudioConfig(device="cpu"))
    assert tiled.cost == pytest.approx(12 * one.cost)


def test_a_large_pass_goes_through_the_vae_in_tiles_and_says_so(studio, monkeypatch):
    from studio.engine import passes

    monkeypatch.setattr(passes, "VAE_TILING_PIXELS", 96 * 96)  # the tiny model's large is small
    big = studio.run(make_plan(dict(model="tiny", prompt="a cat", steps=2, width=128, height=128, seed=1,
                                    fast_decode=False), studio.config)[0])
    assert big.images[0].size == (128, 128) and any("VAE tiling is on at 128x128" in n for n in big.notices)
    small = studio.run(make_plan(dict(model="tiny", prompt="a cat", steps=2, width=64, height=64, seed=1,
                                      fast_decode=False), studio.config)[0])
    assert not any("VAE tiling" in n for n in small.notices)
    assert not studio.load("tiny").pipe.vae.use_tiling  # off again for the next, smaller pass
