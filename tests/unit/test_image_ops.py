"""The picture operations behind image to image and inpainting (resize modes, masks, the masked box,
fill), the steps a strength runs, and image settings refused with the value and the choices."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from support import picture, square_mask, tiny_request
from studio import images
from studio.tasks import img2img_steps, plan_passes
from studio.errors import InvalidValue, UnknownName


@pytest.mark.parametrize("steps, strength, expected", [(20, 0.5, (20, 10)), (20, 1.0, (20, 20)), (20, 0.0, (20, 0)),
                                                      (4, 0.1, (10, 1)), (10, 0.75, (10, 7))])
def test_img2img_runs_strength_times_steps_as_a1111(steps, strength, expected):
    assert img2img_steps(steps, strength) == expected


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


def test_plan_counts_passes():
    assert plan_passes(tiny_request(steps=10)) == [10]
    assert plan_passes(tiny_request(steps=10, hires=True, hires_strength=0.5)) == [10, 5]
    assert plan_passes(tiny_request(steps=10, init_image=picture(), denoising_strength=0.3)) == [3]


@pytest.mark.parametrize("fields, message", [
    ({"mask": square_mask()}, "init_image: None .*task inpaint needs init_image and mask"),
    ({"task": "img2img"}, "init_image: None .*task img2img needs init_image"),
    ({"task": "txt2img", "init_image": picture()}, "init_image: .*none: task txt2img takes no image"),
    ({"task": "img2img", "init_image": picture(), "mask": square_mask()}, "mask: .*task img2img takes only init_image"),
    ({"task": "colorize"}, "task: .colorize. .*txt2img, img2img, inpaint"),
    ({"init_image": picture(), "hires": True}, "hires fix is for text to image"),
    ({"init_image": picture(), "denoising_strength": 1.5}, "denoising_strength: 1.5 .* from 0 to 1"),
    ({"init_image": "photo.png"}, "init_image: 'str' .*PIL image"),
    ({"init_image": picture(size=(4, 4))}, "init_image: '4x4'"),
    ({"resize_mode": "stretch"}, "resize_mode: 'stretch'.*Just resize"),
    ({"hires": True, "hires_scale": 9}, "hires_scale: 9"),
    ({"hires": True, "hires_scale": 4.0, "width": 256, "height": 256}, "hires_scale: 4.0 .*within 512"),
    ({"hires_upscaler": "../ESRGAN"}, "hires_upscaler: '../ESRGAN'.*Latent.*upscalers folder"),
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
