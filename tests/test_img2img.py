"""Image to image, inpainting, hires fix and LoRAs on the tiny model, all on one set of weights."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import pixels, tiny_request
from lora_files import write_tiny_lora
from studio import Cancelled, Preview, Progress, Result, Studio, StudioError, images
from studio.tasks import img2img_steps, plan_passes
from studio.errors import InvalidValue, UnknownName


def picture(seed: int = 0, size=(64, 64)) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype("uint8"))


def square_mask(size=(64, 64), box=(16, 16, 40, 40)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


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


@pytest.mark.parametrize("steps, strength, expected", [(20, 0.5, (20, 10)), (20, 1.0, (20, 20)), (20, 0.0, (20, 0)),
                                                      (4, 0.1, (10, 1)), (10, 0.75, (10, 7))])
def test_img2img_runs_strength_times_steps_as_a1111(steps, strength, expected):
    assert img2img_steps(steps, strength) == expected


def test_img2img_progress_counts_the_steps_actually_run(studio):
    events = list(studio.generate(tiny_request(init_image=picture(), denoising_strength=0.5, steps=8)))
    steps = [e for e in events if isinstance(e, Progress)]
    assert [e.step for e in steps] == [1, 2, 3, 4] and {e.total for e in steps} == {4}


@pytest.mark.parametrize("mode", list(images.RESIZE_MODES))
def test_resize_modes_give_the_target_size(mode):
    wide = picture(size=(160, 80))
    out = images.resize(wide, 64, 64, mode)
    assert out.size == (64, 64)


def test_crop_and_resize_crops_and_resize_and_fill_keeps_everything():
    wide = Image.new("RGB", (160, 80), "white")
    wide.paste((255, 0, 0), (0, 0, 20, 80))  # a red strip at the left edge
    cropped = np.asarray(images.crop_and_resize(wide, 64, 64))
    filled = np.asarray(images.resize_and_fill(wide, 64, 64))
    assert cropped[32, 2, 1] > 200  # the strip was cropped away: white at the left
    assert filled[32, 2, 1] < 100  # still there (its edge stretched into the border)


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


def test_a_drawn_mask_layer_uses_its_alpha():
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (10, 10, 20, 20))
    assert images.mask_of(layer).getbbox() == (10, 10, 20, 20)


def test_masked_box_pads_keeps_the_aspect_and_stays_inside():
    mask = square_mask(size=(200, 100), box=(180, 40, 190, 50))
    box = images.masked_box(mask, 8, 2.0)
    left, top, right, bottom = box
    assert 0 <= left and right <= 200 and 0 <= top and bottom <= 100
    assert left <= 172 and right >= 198 and abs((right - left) / (bottom - top) - 2.0) < 0.1
    assert images.masked_box(Image.new("L", (64, 64)), 8, 1.0) is None


def test_fill_spreads_the_surroundings_into_the_hole():
    red = Image.new("RGB", (64, 64), (200, 10, 10))
    holed = red.copy()
    holed.paste((0, 255, 0), (20, 20, 44, 44))
    filled = np.asarray(images.fill_masked(holed, square_mask(box=(20, 20, 44, 44))))
    assert np.abs(filled.astype(int) - [200, 10, 10]).max() <= 2


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


def test_cancel_in_the_hires_pass(studio):
    job = studio.generate(tiny_request(steps=3, hires=True, hires_steps=60, hires_strength=1.0, hires_scale=2.0))
    seen = []
    for event in job:
        seen.append(event)
        if isinstance(event, Progress) and event.step == 5:
            threading.Thread(target=job.cancel).start()
    assert isinstance(seen[-1], Cancelled) and 5 <= seen[-1].step <= 7 and seen[-1].total == 63


def test_plan_counts_passes():
    assert plan_passes(tiny_request(steps=10)) == [10]
    assert plan_passes(tiny_request(steps=10, hires=True, hires_strength=0.5)) == [10, 5]
    assert plan_passes(tiny_request(steps=10, init_image=picture(), denoising_strength=0.3)) == [3]


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


@pytest.mark.parametrize("fields, message", [
    ({"mask": square_mask()}, "init_image: None .*task inpaint needs init_image and mask"),
    ({"task": "img2img"}, "init_image: None .*task img2img needs init_image"),
    ({"task": "txt2img", "init_image": picture()}, "init_image: .*none: task txt2img takes no image"),
    ({"task": "img2img", "init_image": picture(), "mask": square_mask()}, "mask: .*task img2img takes only init_image"),
    ({"task": "outpaint"}, "task: .outpaint. .*txt2img, img2img, inpaint"),
    ({"init_image": picture(), "hires": True}, "hires fix is for text to image"),
    ({"init_image": picture(), "denoising_strength": 1.5}, "denoising_strength: 1.5 .* from 0 to 1"),
    ({"init_image": "photo.png"}, "init_image: 'str' .*PIL image"),
    ({"init_image": picture(size=(4, 4))}, "init_image: '4x4'"),
    ({"resize_mode": "stretch"}, "resize_mode: 'stretch'.*Just resize"),
    ({"hires": True, "hires_scale": 9}, "hires_scale: 9"),
    ({"hires": True, "hires_scale": 4.0, "width": 256, "height": 256}, "hires_scale: 4.0 .*within 512"),
    ({"hires_upscaler": "ESRGAN"}, "hires_upscaler: 'ESRGAN'.*Latent"),
    ({"prompt": "a <lora:detail:abc>"}, "lora 'detail' weight: 'abc'"),
    ({"loras": [("detail", float("nan"))]}, "lora 'detail' weight"),
])
def test_bad_image_settings_are_refused_with_the_value_and_the_choices(fields, message):
    with pytest.raises((InvalidValue, UnknownName), match=message):
        tiny_request(**fields)


def test_the_saved_request_describes_input_images_without_storing_them():
    record = tiny_request(init_image=picture(), mask=square_mask()).record()
    assert record["init_image"] == {"width": 64, "height": 64, "stored": False}
    import json

    json.dumps(record)


@pytest.fixture(scope="module")
def lora_studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    write_tiny_lora(folder, "detail", seed=0)
    write_tiny_lora(folder / "styles", "ink", seed=1)
    return Studio(device="cpu", cache_size=1, loras_dir=folder)


def test_a_lora_changes_the_image_at_weight_1_not_at_0_and_disabling_restores_it(lora_studio):
    studio = lora_studio
    base = pixels(studio.run(tiny_request()).images[0])
    loads = studio.load_count
    with_lora = studio.run(tiny_request(prompt="a red cube <lora:detail:1>"))
    assert not np.array_equal(pixels(with_lora.images[0]), base)
    assert np.array_equal(pixels(studio.run(tiny_request(prompt="a red cube <lora:detail:0>")).images[0]), base)
    assert np.array_equal(pixels(studio.run(tiny_request()).images[0]), base)  # exactly as before
    explicit = studio.run(tiny_request(loras=[("detail", 1.0)]))
    assert np.array_equal(pixels(explicit.images[0]), pixels(with_lora.images[0]))  # tag = parameter
    assert studio.load_count == loads  # the base model was never reloaded
    assert 'Lora hashes: "detail: ' in with_lora.infotexts[0]
    assert with_lora.infotexts[0].startswith("a red cube <lora:detail:1>")  # the prompt as typed


def test_several_loras_at_once_and_in_sub_folders(lora_studio):
    one = lora_studio.run(tiny_request(loras=[("detail", 1.0)]))
    both = lora_studio.run(tiny_request(loras=[("detail", 1.0), ("ink", 0.8)]))
    assert not np.array_equal(pixels(one.images[0]), pixels(both.images[0]))
    assert "detail: " in both.infotexts[0] and "ink: " in both.infotexts[0]


def test_loras_work_in_img2img_and_hires_too(lora_studio):
    plain = lora_studio.run(tiny_request(init_image=picture(), denoising_strength=0.6))
    styled = lora_studio.run(tiny_request(init_image=picture(), denoising_strength=0.6, loras=[("detail", 1)]))
    assert not np.array_equal(pixels(plain.images[0]), pixels(styled.images[0]))


def test_an_unknown_or_broken_lora_is_a_clear_error_and_the_next_run_works(lora_studio, tmp_path):
    with pytest.raises(StudioError, match="lora: 'nope' is not valid; allowed: one of detail, ink"):
        lora_studio.run(tiny_request(prompt="a <lora:nope:1>"))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(StudioError, match="broken.*not a readable .safetensors"):
        lora_studio.run(tiny_request(loras=[(str(broken), 1.0)]))
    assert lora_studio.run(tiny_request()).images


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


def test_an_sdxl_lora_and_a_lora_of_the_wrong_family(tmp_path):
    write_tiny_lora(tmp_path, "xl-detail", seed=2, family="sdxl")
    write_tiny_lora(tmp_path, "sd-detail", seed=3, family="sd15")
    studio = Studio(device="cpu", cache_size=1, loras_dir=tmp_path)
    base = studio.run(tiny_request(model="tiny-xl"))
    styled = studio.run(tiny_request(model="tiny-xl", prompt="a red cube <lora:xl-detail:1>"))
    assert not np.array_equal(pixels(base.images[0]), pixels(styled.images[0]))
    assert np.array_equal(pixels(studio.run(tiny_request(model="tiny-xl")).images[0]), pixels(base.images[0]))
    with pytest.raises(StudioError, match="LoRA sd-detail does not fit tiny-xl"):
        studio.run(tiny_request(model="tiny-xl", prompt="a red cube <lora:sd-detail:1>"))
    assert np.array_equal(pixels(studio.run(tiny_request(model="tiny-xl")).images[0]), pixels(base.images[0]))


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
