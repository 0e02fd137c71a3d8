"""Outpainting (studio/tasks/outpaint.py): the picture on a larger canvas, the new area painted by the
family's inpaint pipeline, on the tiny models. The canvas's layout and mask alone first, then runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from support import picture, pixels, tiny_request
from studio import GenerationRequest
from studio.errors import InvalidValue
from studio.families import FAMILIES
from studio.infotext import fields_from_params, parse_infotext
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.tasks import outpaint

SIDES = {"left": (32, 0, 0, 0), "right": (0, 32, 0, 0), "up": (0, 0, 32, 0), "down": (0, 0, 0, 32)}


def outpaint_request(init: Image.Image, pads=(0, 32, 0, 16), **fields) -> GenerationRequest:
    sides = dict(zip((f"outpaint_{side}" for side in outpaint.SIDES), pads))
    return tiny_request(**{"outpaint_image": init, "denoising_strength": 1.0, "steps": 2, **sides, **fields})


def kept_box(pads, size=(64, 64), overlap=16) -> tuple[int, int, int, int]:
    """The picture's place on the canvas less the overlap on each side that grew: its own pixels."""
    left, right, up, down = pads
    return (left + (overlap if left else 0), up + (overlap if up else 0),
            left + size[0] - (overlap if right else 0), up + size[1] - (overlap if down else 0))


# -- the canvas: padding, rounding, the mask, the aspect helper, A1111's script ---------------------

def test_the_canvas_rounds_up_to_the_models_multiple_on_the_sides_that_grow():
    assert outpaint.placement((64, 64), (32, 0, 0, 0), 8) == (32, 0, 0, 0)
    assert outpaint.placement((60, 64), (0, 10, 0, 0), 8) == (0, 12, 0, 0)  # 70 -> 72, all on the right
    assert outpaint.placement((60, 60), (0, 10, 0, 0), 16) == (0, 20, 2, 2)  # 80; 60 -> 64 split up and down
    assert outpaint.placement((64, 64), (3, 9, 0, 0), 8) == (4, 12, 0, 0)  # 76 -> 80: in proportion
    assert outpaint.canvas_size((60, 60), (0, 20, 2, 2)) == (80, 64)


def test_the_mask_is_the_new_area_fading_over_the_overlap_into_the_picture():
    mask = np.asarray(outpaint.new_area_mask((64, 64), (16, 0, 0, 0), 8))
    assert mask.shape == (64, 80)
    assert (mask[:, :16] == 255).all() and (mask[:, 16 + 8:] == 0).all()  # new area; beyond the overlap
    ramp = mask[0, 16:24]
    assert list(ramp) == sorted(ramp, reverse=True) and 0 < ramp[-1] < ramp[0] < 255  # fades inwards
    hard = np.asarray(outpaint.new_area_mask((64, 64), (0, 0, 8, 8), 0))
    assert (hard[:8] == 255).all() and (hard[-8:] == 255).all() and (hard[8:-8] == 0).all()


def test_padding_to_an_aspect_grows_the_short_way_half_on_each_side():
    assert outpaint.for_aspect((64, 64), "16:9") == (25, 25, 0, 0)  # 114 x 64
    assert outpaint.for_aspect((160, 90), "1:1") == (0, 0, 35, 35)
    assert outpaint.for_aspect((64, 64), "1:1") == (0, 0, 0, 0)
    with pytest.raises(InvalidValue, match="aspect"):
        outpaint.for_aspect((64, 64), "wide")


def test_a1111s_poor_mans_outpainting_arguments_become_the_fields():
    settings = outpaint.from_a1111_script([64, 4, 1, ["left", "up"]])
    assert settings == {"task": "outpaint", "outpaint_fill": "original", "outpaint_overlap": 16,
                        "outpaint_left": 64, "outpaint_right": 0, "outpaint_up": 64, "outpaint_down": 0}
    assert outpaint.from_a1111_script([])["outpaint_right"] == 128  # A1111's defaults: 128 px on every side
    with pytest.raises(InvalidValue, match=r"script_args\[2\]"):
        outpaint.from_a1111_script([64, 4, 7, ["left"]])


# -- the request: its size, limits, family and cost --------------------------------------------------

def test_width_and_height_are_the_canvas_and_the_cost_grows_with_the_padding():
    request = outpaint_request(picture(size=(64, 48)), (0, 32, 0, 16), width=256, height=256)
    assert request.task == "outpaint" and (request.width, request.height) == (96, 64)  # the typed size is not used
    assert request.pass_tasks() == ("inpaint",) and request.pass_costs() == [2 * 96 * 64]
    wider = outpaint_request(picture(size=(64, 48)), (0, 96, 0, 16))
    assert wider.cost() > request.cost()
    assert GenerationRequest(model="tiny", outpaint_image=picture(), outpaint_up=8).task == "outpaint"  # inferred


@pytest.mark.parametrize("pads, field", [((0, 480, 0, 0), "outpaint_right"), ((0, 0, 400, 100), "outpaint_up"),
                                         ((0, 0, 0, 0), "outpaint_left")])
def test_a_canvas_past_the_models_size_or_no_padding_is_refused_by_name(pads, field):
    with pytest.raises(InvalidValue) as refused:
        outpaint_request(picture(), pads)  # the tiny model takes 32..512 a side
    assert refused.value.field == field


def test_a_picture_too_large_for_any_canvas_is_refused_by_name():
    with pytest.raises(InvalidValue) as refused:
        outpaint_request(picture(size=(512, 64)), (8, 0, 0, 0))
    assert refused.value.field == "outpaint_image"


def test_a_family_without_an_inpaint_pipeline_cannot_outpaint(monkeypatch):
    sd = FAMILIES["sd15"]
    monkeypatch.setitem(FAMILIES, "sd15", dataclasses.replace(
        sd, pipelines={task: cls for task, cls in sd.pipelines.items() if task != "inpaint"}))
    with pytest.raises(InvalidValue) as refused:
        outpaint_request(picture())
    assert refused.value.field == "task" and "inpaint pipeline" in str(refused.value)
    assert outpaint_request(picture(), task="txt2img", outpaint_image=None).task == "txt2img"  # the rest still runs


# -- runs on the tiny models ----------------------------------------------------------------------------

@pytest.mark.parametrize("side", SIDES)
def test_each_side_extends_the_picture_and_keeps_it_beyond_the_overlap(studio, side):
    init, pads = picture(), SIDES[side]
    result = studio.run(outpaint_request(init, pads))
    image = result.images[0]
    assert image.size == outpaint.canvas_size((64, 64), pads)
    out = pixels(image).astype(int)
    left, up = pads[0], pads[2]
    box = kept_box(pads)
    kept = out[box[1]:box[3], box[0]:box[2]]
    own = pixels(init).astype(int)[box[1] - up:box[3] - up, box[0] - left:box[2] - left]
    assert np.abs(kept - own).mean() < 1  # the picture's own pixels (no VAE round trip there)
    new = np.asarray(outpaint.new_area_mask((64, 64), pads, 0)) == 255
    stretched = pixels(outpaint.extend(init, pads)).astype(int)
    assert np.abs(out - stretched)[new].mean() > 5  # the new area is painted, not the stretched edges
    assert f"Outpaint {side}: 32" in result.infotexts[0] and "Size: " in result.infotexts[0]


@pytest.mark.parametrize("fill", outpaint.FILLS)
def test_every_fill_runs_and_the_same_seed_gives_the_same_picture(studio, fill):
    init = picture(2)
    first = studio.run(outpaint_request(init, outpaint_fill=fill, denoising_strength=0.8))
    again = studio.run(outpaint_request(init, outpaint_fill=fill, denoising_strength=0.8))
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))
    other = studio.run(outpaint_request(init, outpaint_fill=fill, denoising_strength=0.8, seed=2))
    assert not np.array_equal(pixels(first.images[0]), pixels(other.images[0]))
    assert f"Outpaint fill: {fill}" in first.infotexts[0]


def test_the_infotext_reads_back_into_the_same_outpaint(studio):
    init = picture(3)
    result = studio.run(outpaint_request(init, (8, 24, 0, 16), outpaint_fill="original", outpaint_overlap=8,
                                         denoising_strength=0.9))
    found, notes = fields_from_params(parse_infotext(result.infotexts[0]).params)
    assert not notes
    assert {k: found[k] for k in ("task", "outpaint_left", "outpaint_right", "outpaint_up", "outpaint_down",
                                  "outpaint_fill", "outpaint_overlap", "denoising_strength")} == {
        "task": "outpaint", "outpaint_left": 8, "outpaint_right": 24, "outpaint_up": 0, "outpaint_down": 16,
        "outpaint_fill": "original", "outpaint_overlap": 8, "denoising_strength": 0.9}
    again = studio.run(GenerationRequest.from_settings({**found, "prompt": "a red cube"}, outpaint_image=init))
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))
    txt2img, _ = fields_from_params(parse_infotext(studio.run(tiny_request(steps=1)).infotexts[0]).params)
    assert txt2img["task"] == "txt2img" and "outpaint_left" not in txt2img  # other tasks' PNGs leave them alone


def test_a_saved_png_regenerates_the_same_outpaint_through_png_info(studio, tmp_path):
    init = picture(5)
    result = studio.run(outpaint_request(init, (16, 0, 8, 0), seed=-1, batch_size=2))
    for path in OutputFolder(tmp_path).save(result):
        recalled = recall(read_png(path))
        assert recalled.fields["task"] == "outpaint" and recalled.fields["outpaint_left"] == 16
        again = studio.run(GenerationRequest.from_settings(recalled.fields, outpaint_image=init))
        assert again.request == result.request
        saved = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(pixels(again.images[recalled.batch_index]), saved)


def test_a_batch_outpaints_each_image_from_its_own_seed(studio):
    result = studio.run(outpaint_request(picture(), (16, 0, 0, 0), batch_size=2))
    assert [i.size for i in result.images] == [(80, 64), (80, 64)]
    assert not np.array_equal(pixels(result.images[0]), pixels(result.images[1]))


@pytest.mark.parametrize("model", ["tiny-flux", "tiny-klein"])
def test_flow_families_outpaint_with_their_own_inpaint_pipeline(studio, model):
    init = picture(4)
    result = studio.run(GenerationRequest.for_model(model, prompt="a red cube", steps=2, seed=3,
                                                    outpaint_image=init, outpaint_right=24, denoising_strength=1.0))
    image = result.images[0]
    assert image.size == (96, 64)  # 88 rounded up to FLUX's multiple of 16
    kept = pixels(image).astype(int)[:, :64 - 16]
    assert np.abs(kept - pixels(init).astype(int)[:, :64 - 16]).mean() < 1


def test_the_outpaint_tab_pads_to_an_aspect_and_shows_the_canvas():
    from studio.web import outpaint_view

    init = picture(size=(64, 48))
    assert outpaint_view.pad_to_aspect(init, "1:1") == [0, 0, 8, 8]
    assert outpaint_view.canvas_note(init, 0, 30, 0, 0, "tiny").startswith("Canvas 96x48")
    assert "refuse" in outpaint_view.canvas_note(init, 0, 600, 0, 0, "tiny")
    assert outpaint_view.canvas_note(None, 0, 0, 0, 0) == "Drop a picture to extend."
