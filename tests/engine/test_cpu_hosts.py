"""CPU hosts (a free Space, a laptop) on the tiny models: Fast decode, no CFG pass when CFG is off, a
CPU start that falls back to tiny offline, a one-step run's picture before the final decode. What
needs no model (bf16 detection, the starting model, a Space's defaults): tests/unit/test_hosting.py."""

from __future__ import annotations

import numpy as np
import pytest

import app
from support import pixels, tiny_request
from studio.infotext import parse_infotext
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.metadata import read_png


def test_fast_decode_is_reproducible_recorded_and_differs_from_the_vae(studio, tmp_path):
    fast = studio.run(tiny_request(seed=5, fast_decode=True))
    again = studio.run(tiny_request(seed=5, fast_decode=True))
    vae = studio.run(tiny_request(seed=5))
    assert fast.images[0].size == vae.images[0].size == (64, 64)
    assert np.array_equal(pixels(fast.images[0]), pixels(again.images[0]))
    assert not np.array_equal(pixels(fast.images[0]), pixels(vae.images[0]))
    assert "Fast decode: TAESD" in fast.infotexts[0] and "Fast decode" not in vae.infotexts[0]
    assert parse_infotext(fast.infotexts[0]).params["Fast decode"] == "TAESD"
    path = OutputFolder(tmp_path).save(fast)[0]
    assert recall(read_png(path)).fields["fast_decode"] is True


@pytest.mark.parametrize("model", ["tiny-xl", "tiny-flux", "tiny-sd3", "tiny-zimage"])
def test_fast_decode_works_for_every_family(studio, model):
    result = studio.run(tiny_request(model=model, seed=2, fast_decode=True, width=64, height=64, steps=2,
                                     sampler="Euler", cfg_scale=1.0))
    assert result.images[0].size == (64, 64) and "Fast decode: TAESD" in result.infotexts[0]


def unet_batches(studio, **fields) -> list[int]:
    """The batch size of every UNet call of one generation."""
    unet = studio.load("tiny").pipe.unet
    seen: list[int] = []
    hook = unet.register_forward_pre_hook(lambda module, args, kwargs: seen.append(int(args[0].shape[0])),
                                          with_kwargs=True)
    try:
        studio.run(tiny_request(**fields))
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("cfg", [0.0, 1.0])
def test_no_negative_pass_when_cfg_is_off(studio, cfg):
    assert unet_batches(studio, cfg_scale=cfg, steps=3) == [1, 1, 1]
    assert unet_batches(studio, cfg_scale=7.0, steps=3) == [2, 2, 2]


def test_a_cpu_start_says_why_and_falls_back_to_tiny_offline(studio):
    from studio.web import Warmup

    model, why = app.starting_model("auto", "cpu")
    warmup = Warmup(studio, model, why).start(background=False)  # offline here: sd-turbo is not cached
    assert warmup.model == "tiny"
    assert warmup.notice.startswith("No GPU here") and "sd-turbo could not be loaded" in warmup.notice


@pytest.mark.parametrize("fast", [False, True])
def test_a_one_step_run_shows_its_picture_before_the_final_decode(studio, fast):
    from studio import Preview, Result

    kinds = [type(event) for event in studio.generate(tiny_request(steps=1, fast_decode=fast,
                                                                   preview="latent2rgb")).events()]
    assert Preview in kinds and Result in kinds and kinds.index(Preview) < kinds.index(Result)
