"""Image to image, inpainting and hires fix on the tiny models, all on one set of weights. The
picture operations alone: tests/unit/test_image_ops.py; LoRAs: test_loras.py."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageFilter

from support import picture, pixels, square_mask, tiny_request
from studio import Cancelled, Preview, Progress, Result, StudioError


def test_strength_0_returns_the_input_and_strength_1_ignores_it(studio):
    init = picture()
    kept = studio.run(tiny_request(init_image=init, denoising_strength=0.0))
    assert np.array_equal(pixels(kept.images[0]), pixels(init))
    one = studio.run(tiny_request(init_image=init, denoising_strength=1.0))
    other = studio.run(tiny_request(init_image=picture(1), denoising_strength=1.0))
    text = studio.run(tiny_request())
    assert np.array_equal(pixels(one.images[0]), pixels(other.images[0]))
    assert np.array_equal(pixels(one.images[0]), pixels(text.images[0]))  # strength 1 = text to image


def test_img2img_is_reproducible_and_follows_the_input_and_the_strength(studio):
    init = picture()
    half = studio.run(tiny_request(init_image=init, denoising_strength=0.5))
    again = studio.run(tiny_request(init_image=init, denoising_strength=0.5))
    assert np.array_equal(pixels(half.images[0]), pixels(again.images[0]))
    other_input = studio.run(tiny_request(init_image=picture(1), denoising_strength=0.5))
    assert not np.array_equal(pixels(half.images[0]), pixels(other_input.images[0]))
    # (How close the result stays to the input cannot be checked here: the tiny model's random VAE
    # does not reproduce pictures. Strength is checked by the steps it runs, below.)
    other_strength = studio.run(tiny_request(init_image=init, denoising_strength=0.25))
    assert not np.array_equal(pixels(half.images[0]), pixels(other_strength.images[0]))
    assert "Denoising strength: 0.5" in half.infotexts[0]


def test_img2img_progress_counts_the_steps_actually_run(studio):
    events = list(studio.generate(tiny_request(init_image=picture(), denoising_strength=0.5, steps=8)))
    steps = [e for e in events if isinstance(e, Progress)]
    assert [e.step for e in steps] == [1, 2, 3, 4] and {e.total for e in steps} == {4}


def outside(mask: Image.Image, blur: int) -> np.ndarray:
    """Pixels the blurred mask does not touch at all."""
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask) == 0


@pytest.mark.parametrize("content", ["original", "fill", "latent noise"])
@pytest.mark.parametrize("area", ["Whole picture", "Only masked"])
def test_inpainting_changes_only_the_masked_area(studio, content, area):
    init, mask = picture(), square_mask()
    result = studio.run(tiny_request(init_image=init, mask=mask, masked_content=content, inpaint_area=area,
                                     masked_padding=8, denoising_strength=0.9))
    out, original = pixels(result.images[0]).astype(int), pixels(init).astype(int)
    keep = outside(mask, 4)
    assert np.abs(out - original)[keep].max() <= 1  # outside: the original pixels
    inside = np.asarray(mask) == 255
    assert np.abs(out - original)[inside].mean() > 5  # inside: repainted
    assert f"Masked content: {content}" in result.infotexts[0] and "Mask blur: 4" in result.infotexts[0]


def test_inpaint_not_masked_repaints_the_rest(studio):
    init, mask = picture(), square_mask(box=(8, 8, 56, 56))
    result = studio.run(tiny_request(init_image=init, mask=mask, inpaint_mode="Inpaint not masked", mask_blur=0))
    out, original = pixels(result.images[0]).astype(int), pixels(init).astype(int)
    inside = np.asarray(mask) == 255
    assert np.abs(out - original)[inside].max() <= 1 and np.abs(out - original)[~inside].mean() > 5


def test_hires_fix_gives_the_upscaled_size_and_streams_both_passes(studio):
    for upscaler in ("Latent", "Lanczos"):
        events = list(studio.generate(tiny_request(steps=4, hires=True, hires_scale=2.0, hires_upscaler=upscaler,
                                                   hires_steps=4, hires_strength=0.5, preview="latent2rgb")))
        result = events[-1]
        assert isinstance(result, Result) and result.images[0].size == (128, 128)
        progress = [e.step for e in events if isinstance(e, Progress)]
        assert progress == [1, 2, 3, 4, 5, 6] and {e.total for e in events if isinstance(e, Progress)} == {6}
        previews = [e for e in events if isinstance(e, Preview)]
        assert any(p.step > 4 and p.image.size == (128, 128) for p in previews)  # the second pass previews
        assert "Hires upscale: 2" in result.infotexts[0] and f"Hires upscaler: {upscaler}" in result.infotexts[0]
        assert "Size: 64x64" in result.infotexts[0]  # as A1111: the first pass's size


@pytest.mark.slow
def test_cancel_in_the_hires_pass(studio):
    job = studio.generate(tiny_request(steps=3, hires=True, hires_steps=60, hires_strength=1.0, hires_scale=2.0))
    seen = []
    for event in job:
        seen.append(event)
        if isinstance(event, Progress) and event.step == 5:
            threading.Thread(target=job.cancel).start()
    assert isinstance(seen[-1], Cancelled) and 5 <= seen[-1].step <= 7 and seen[-1].total == 63


def test_every_task_shares_the_same_weights(studio):
    from studio.loading import task_pipe

    loaded = studio.load("tiny")
    before = studio.load_count
    studio.run(tiny_request(init_image=picture()))
    studio.run(tiny_request(init_image=picture(), mask=square_mask()))
    assert studio.load_count == before
    for task in ("img2img", "inpaint"):
        pipe = task_pipe(loaded, task)
        for name in ("unet", "vae", "text_encoder", "tokenizer"):
            assert getattr(pipe, name) is getattr(loaded.pipe, name)
    assert task_pipe(loaded, "img2img") is task_pipe(loaded, "img2img")


def test_tiny_xl_img2img_and_inpaint(studio):
    init = picture()
    for extra in ({}, {"mask": square_mask()}):
        result = studio.run(tiny_request(model="tiny-xl", init_image=init, negative_prompt="blur", **extra))
        assert result.images[0].size == (64, 64)


@pytest.fixture(scope="module")
def inpainting_model(tmp_path_factory):
    """A tiny dedicated inpainting model (UNet with 9 input channels) saved as a diffusers folder."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    from studio.tiny import TINY_BUILDERS

    base = TINY_BUILDERS["sd15"]()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        unet = UNet2DConditionModel.from_config({**base.unet.config, "in_channels": 9})
    pipe = StableDiffusionInpaintPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet,
        scheduler=base.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    folder = tmp_path_factory.mktemp("inpainting-model")
    pipe.save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_a_dedicated_inpainting_model_runs_every_task(studio, inpainting_model):
    loaded = studio.load(inpainting_model)
    assert loaded.inpainting and type(loaded.pipe).__name__ == "StableDiffusionInpaintPipeline"
    init, mask = picture(), square_mask()
    painted = studio.run(tiny_request(model=inpainting_model, init_image=init, mask=mask))
    out, original = pixels(painted.images[0]).astype(int), pixels(init).astype(int)
    assert np.abs(out - original)[outside(mask, 4)].max() <= 1
    assert np.abs(out - original)[np.asarray(mask) == 255].mean() > 5
    again = studio.run(tiny_request(model=inpainting_model, init_image=init, mask=mask))
    assert np.array_equal(pixels(again.images[0]), pixels(painted.images[0]))
    text = studio.run(tiny_request(model=inpainting_model))  # text to image: the whole picture, from grey
    assert text.images[0].size == (64, 64)
    assert studio.run(tiny_request(model=inpainting_model, init_image=init, denoising_strength=0.5)).images
    with pytest.raises(StudioError, match="hires: True .*inpainting model"):
        studio.run(tiny_request(model=inpainting_model, hires=True))


def test_an_inpainting_folder_is_known_as_its_family_before_loading(inpainting_model):
    from studio.models import resolve_model

    source = resolve_model(inpainting_model)
    assert source.kind == "folder" and source.family == "sd15" and source.size_range == (64, 2048)


BATCH_CASES = {
    "txt2img": {},
    "img2img": {"task": "img2img", "init_image": picture()},
    "inpaint original": {"task": "inpaint", "init_image": picture(), "mask": square_mask()},
    "inpaint fill": {"task": "inpaint", "init_image": picture(), "mask": square_mask(), "masked_content": "fill"},
    "inpaint latent noise": {"task": "inpaint", "init_image": picture(), "mask": square_mask(),
                             "masked_content": "latent noise", "inpaint_area": "Only masked"},
    "hires latent": {"hires": True, "hires_scale": 1.5},
    "hires image": {"hires": True, "hires_scale": 1.5, "hires_upscaler": "Lanczos"},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BATCH_CASES))
def test_every_task_runs_batches(studio, case):
    """A batch of 3 in every task: three images of the right size, each with its own seed, and the
    same request makes the same three images again."""
    request = tiny_request(seed=20, batch_size=3, steps=3, **BATCH_CASES[case])
    first, again = studio.run(request), studio.run(request)
    size = request.hires_size if request.hires else (64, 64)
    assert [im.size for im in first.images] == [size] * 3 and first.seeds == (20, 21, 22)
    assert [f"Seed: {s}," in text for s, text in zip(first.seeds, first.infotexts)] == [True] * 3
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first.images, again.images))
    assert not np.array_equal(pixels(first.images[0]), pixels(first.images[1]))  # each its own noise
