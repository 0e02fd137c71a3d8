"""A1111's scripts over its API (studio/web/sdapi/scripts.py): "SD upscale", "Poor man's outpainting" and
"X/Y/Z plot" become the studio's own settings, their arguments checked by position; other scripts stay
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
    found, ignored = settings(script_name="Prompt matrix", script_args=[1, "2"])
    assert found["task"] == "img2img" and ignored["script_name"] == "Prompt matrix"


def test_the_xyz_plot_reads_its_axes_by_the_routes_index_lists():
    """img2img's list has Image CFG Scale (6) where txt2img's has CFG Scale: A1111's indices per route."""
    found, ignored = settings(script_name="X/Y/Z plot", script_args=[1, "7, 8", [], 22, "0.3, 0.6", []])
    assert (found["x_type"], found["x_values"], found["y_type"], found["y_values"], found["z_type"]) == \
        ("Seed", "7, 8", "Denoising", "0.3, 0.6", "Nothing")
    assert "script_name" not in ignored and "script_args" not in ignored
    with pytest.raises(InvalidValue, match="Image CFG Scale") as caught:
        settings(script_name="X/Y/Z plot", script_args=[6, "1, 2"])
    assert caught.value.field == "script_args[0]"
    txt, _, _ = translate.to_settings({"prompt": "x", "script_name": "x/y/z plot",
                                       "script_args": [9, "", ["Euler", "Euler a"], 23, "0.5, 0.7", []]},
                                      "txt2img", "tiny", None)
    assert (txt["x_type"], txt["x_values"]) == ("Sampler", "Euler,Euler a")  # the dropdown's picks
    assert txt["y_type"] == "Hires denoising strength"  # A1111's Denoising on txt2img: the hires pass's
