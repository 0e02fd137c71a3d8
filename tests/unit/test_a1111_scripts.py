"""A1111's img2img scripts over its API (studio/web/sdapi/scripts.py): "SD upscale" and "Poor man's
outpainting" become the studio's own settings, their arguments checked by position; other scripts stay
reported as ignored."""

from __future__ import annotations

import pytest
from PIL import Image

from support import b64_png
from studio.errors import InvalidValue
from studio.web.sdapi import translate

PICTURE = b64_png(Image.new("RGB", (64, 48), (20, 120, 220)))


def settings(**body):
    found, ignored, notes = translate.to_settings({"prompt": "x", "init_images": [PICTURE], **body}, "img2img",
                                                  "tiny", None)
    return found, ignored


def test_sd_upscale_takes_its_overlap_upscaler_index_and_scale():
    found, ignored = settings(script_name="SD upscale", script_args=[None, 32, 2, 1.5])
    assert (found["task"], found["sd_upscale"], found["sd_upscale_overlap"], found["sd_upscale_upscaler"],
            found["sd_upscale_scale"]) == ("img2img", True, 32, "Nearest", 1.5)
    assert "script_name" not in ignored and "script_args" not in ignored
    by_name, _ = settings(script_name="sd upscale", script_args=["", 64, "None", 2])
    assert by_name["sd_upscale_upscaler"] == "Lanczos"  # A1111's None: its plain resize
    with pytest.raises(InvalidValue) as caught:
        settings(script_name="SD upscale", script_args=[None, 32, 9, 2])
    assert caught.value.field == "script_args[2]"


def test_poor_mans_outpainting_extends_the_init_image():
    found, ignored = settings(script_name="Poor man's outpainting", script_args=[64, 4, 1, ["left", "up"]])
    assert found["task"] == "outpaint" and "init_image" not in found and found["outpaint_image"].size == (64, 48)
    assert (found["outpaint_left"], found["outpaint_up"], found["outpaint_right"], found["outpaint_fill"],
            found["outpaint_overlap"]) == (64, 64, 0, "original", 16)
    with pytest.raises(InvalidValue) as caught:
        settings(script_name="Poor man's outpainting", script_args=[64, 4, 0, ["sideways"]])
    assert caught.value.field == "script_args[3]"


def test_other_scripts_are_reported_not_run():
    found, ignored = settings(script_name="X/Y/Z plot", script_args=[1, "2"])
    assert found["task"] == "img2img" and ignored["script_name"] == "X/Y/Z plot"
