"""The detailer (A1111's ADetailer) on the tiny models: the offline tiny OWLv2 finds boxes (its scores are
random, the same every time), each region is repainted by "only masked" inpainting and pasted back, the
rest of the picture keeps its very pixels; its progress, Stop, cost, infotext, checks and A1111's
ADetailer arguments. The mask and box arithmetic alone: the first tests here (no model)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from support import picture, pixels, tiny_request
from studio import Cancelled, Preview, Progress, Result, StudioError
from studio.detail import detector as detectors
from studio.detail.masks import Box, largest, region_mask, suppress
from studio.detail.targets import TARGETS, TINY_DETECTOR, target_of
from studio.devices import DeviceChoice
from studio.engine import Job, generation
from studio.infotext import format_infotext, parse_infotext, request_fields

CPU = DeviceChoice("cpu", "fp32")
# The tiny detector scores several of its patches near 1: at this confidence it finds six 8 px boxes in a
# 64 px picture, the two largest are repainted.
DETAIL = dict(detailer=True, detailer_model=TINY_DETECTOR, detailer_confidence=0.5, detailer_max=2,
              detailer_strength=0.5, detailer_padding=8, detailer_mask_blur=2)


def regions(image: Image.Image, request) -> list[Box]:
    """The boxes the detail pass finds in `image` (the detector is deterministic)."""
    found = detectors.load(TINY_DETECTOR, CPU).detect(image, TARGETS[request.detailer_target],
                                                      request.detailer_confidence)
    return found[:request.detailer_max]


def touched(image: Image.Image, request) -> np.ndarray:
    """Where the detail pass may change pixels: the union of its regions' blurred masks."""
    masks = [np.asarray(region_mask(image.size, box, request.detailer_dilate, request.detailer_mask_blur))
             for box in regions(image, request)]
    return np.any(np.stack(masks) > 0, axis=0)


# -- boxes and masks (no model) ---------------------------------------------------------------------------

def test_overlapping_boxes_keep_the_best_and_the_largest_come_first():
    a, b, c = Box(0, 0, 10, 10, 0.9), Box(1, 1, 11, 11, 0.5), Box(20, 20, 40, 40, 0.4)
    assert suppress([b, a, c]) == [a, c]  # b overlaps a (IoU 0.68): the same object, the lesser score
    assert largest([a, c], 1) == [c] and largest([a, c]) == [c, a]


def test_a_regions_mask_grows_by_half_the_dilation_and_is_blurred():
    box = Box(20, 20, 30, 30, 1.0)
    grown = np.asarray(region_mask((64, 64), box, 8, 0)) > 0
    assert grown[16:34, 16:34].all() and grown.sum() == 18 * 18
    shrunk = np.asarray(region_mask((64, 64), box, -4, 0)) > 0
    assert shrunk.sum() == 6 * 6
    assert (np.asarray(region_mask((64, 64), box, -40, 0)) > 0).sum() == 1  # its middle pixel is kept
    blurred = np.asarray(region_mask((64, 64), Box(10, 10, 50, 50, 1.0), 0, 3))
    assert 0 < blurred[30, 9] < 255 and blurred[30, 30] == 255 and blurred[0, 0] == 0


def test_adetailer_model_names_read_as_targets():
    assert [target_of(n) for n in ("face_yolov8n.pt", "mediapipe_face_full", "hand_yolov9c.pt",
                                   "person_yolov8s-seg.pt", "yolov8x-worldv2.pt")] == \
        ["face", "face", "hand", "person", None]


# -- the detector -------------------------------------------------------------------------------------------

def test_the_tiny_detector_finds_boxes_at_a_low_confidence_the_same_every_time(tmp_path):
    detector = detectors.load(TINY_DETECTOR, CPU)
    image = picture(3, (96, 64))
    boxes = detector.detect(image, TARGETS["face"], 0.1)
    assert boxes and boxes == detector.detect(image, TARGETS["face"], 0.1)
    assert all(0 <= b.left < b.right <= 96 and 0 <= b.top < b.bottom <= 64 for b in boxes)
    assert [b.area for b in boxes] == sorted((b.area for b in boxes), reverse=True)
    assert len(detector.detect(image, TARGETS["face"], 0.1, 2)) == 2
    assert detector.detect(image, TARGETS["face"], 1.0) == []  # no score is above 1
    # The same model from a folder of its files (as a Hub snapshot holds them) finds the same boxes.
    detector.model.save_pretrained(tmp_path)
    detector.image_processor.save_pretrained(tmp_path)
    detector.tokenizer.save_pretrained(tmp_path)
    assert detectors.build(str(tmp_path)).detect(image, TARGETS["face"], 0.1) == boxes


def test_a_detector_that_is_not_one_is_refused_by_name(tmp_path):
    from studio.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="neither a Hub id"):
        detectors.build(str(tmp_path / "nothing"))
    (tmp_path / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(ModelLoadError):
        detectors.build(str(tmp_path))


# -- the pass ------------------------------------------------------------------------------------------------

def test_the_detailer_repaints_only_its_regions(studio):
    plain = studio.run(tiny_request())
    request = tiny_request(**DETAIL)
    detailed = studio.run(request)
    before, after = pixels(plain.images[0]).astype(int), pixels(detailed.images[0]).astype(int)
    inside = touched(plain.images[0], request)
    assert 0 < inside.mean() < 0.5
    # Only masked: the region is pasted back through its mask, so the rest keeps its very pixels.
    assert np.array_equal(before[~inside], after[~inside])
    assert np.abs(before - after)[inside].mean() > 5
    again = studio.run(tiny_request(**DETAIL))
    assert np.array_equal(pixels(again.images[0]), pixels(detailed.images[0]))  # same seed, same picture
    other = studio.run(tiny_request(**{**DETAIL, "detailer_strength": 0.9}))
    assert not np.array_equal(pixels(other.images[0]), pixels(detailed.images[0]))


def test_progress_counts_the_regions_found_and_previews_show_the_region(studio):
    request = tiny_request(**DETAIL, detailer_width=96, detailer_height=96, preview="latent2rgb")
    assert request.pass_costs() == [4 * 64 * 64] + [2 * 96 * 96] * 2  # 4 steps, then 2 regions of 0.5 x 4 steps
    events = list(studio.generate(request))
    assert isinstance(events[-1], Result) and events[-1].images[0].size == (64, 64)
    steps = [e for e in events if isinstance(e, Progress)]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6, 7, 8] and steps[-1].total == 8
    assert any(p.step > 4 and p.image.size == (96, 96) for p in events if isinstance(p, Preview))
    assert "Detailer: 6 faces found; the 2 largest were repainted (detailer_max)." in events[-1].notices


def test_no_region_found_leaves_the_picture_as_it_was_and_says_so(studio):
    plain = studio.run(tiny_request())
    result = studio.run(tiny_request(**{**DETAIL, "detailer_confidence": 1.0}))
    assert np.array_equal(pixels(result.images[0]), pixels(plain.images[0]))
    assert "Detailer: no face found at confidence 1; it is unchanged." in result.notices


def test_each_picture_of_a_batch_is_detailed_with_its_own_seed(studio):
    batch = studio.run(tiny_request(**DETAIL, batch_size=2, seed=5))
    alone = studio.run(tiny_request(**DETAIL, seed=6))
    assert np.array_equal(pixels(batch.images[1]), pixels(alone.images[0]))


def test_image_to_image_at_strength_0_runs_the_detailer_alone_on_the_picture(studio):
    init = picture(7)
    request = tiny_request(**DETAIL, init_image=init, denoising_strength=0.0)
    result = studio.run(request)
    inside = touched(init, request)
    assert np.array_equal(pixels(result.images[0])[~inside], pixels(init)[~inside])
    assert not np.array_equal(pixels(result.images[0]), pixels(init))


def test_the_detailers_own_prompt_is_encoded_as_the_prompt_is(studio):
    same = studio.run(tiny_request(**DETAIL))
    token = studio.run(tiny_request(**DETAIL, detailer_prompt="[PROMPT]"))  # the prompt, through the encoder here
    assert np.array_equal(pixels(token.images[0]), pixels(same.images[0]))
    other = studio.run(tiny_request(**DETAIL, detailer_prompt="a blue sphere", detailer_negative_prompt="blur"))
    assert not np.array_equal(pixels(other.images[0]), pixels(same.images[0]))


def test_hires_fix_then_the_detailer(studio):
    result = studio.run(tiny_request(**DETAIL, hires=True, hires_scale=1.5, hires_steps=2, hires_strength=0.5))
    assert result.images[0].size == (96, 96) and "ADetailer model" in result.infotexts[0]


def test_a_detector_that_cannot_load_fails_the_job_before_any_step(studio, tmp_path):
    from studio.errors import ModelUnavailable

    for name, error in ((str(tmp_path / "none"), "neither a Hub id"), ("someone/no-such-detector", "Hub cannot be reached")):
        seen = []
        with pytest.raises(StudioError, match=error) as failed:
            for event in studio.generate(tiny_request(**{**DETAIL, "detailer_model": name})):
                seen.append(event)
        assert not any(isinstance(e, Progress) for e in seen)
    assert isinstance(failed.value, ModelUnavailable)  # offline: the Hub's snapshot is not cached


def test_stop_lands_between_regions(studio):
    """Cancelled after the first region's last step: the second runs none, and the job ends there."""
    request = tiny_request(**DETAIL)
    seen = []

    def work(emit, cancel):
        def emit_then_cancel(event):  # on the device thread: the cancel lands in the very next step callback
            seen.append(event)
            emit(event)
            if isinstance(event, Progress) and event.step == 6:
                cancel.set()

        generation.run(studio, request, emit_then_cancel, cancel)

    final = Job(request, work).result()
    assert isinstance(final, Cancelled) and (final.step, final.total) == (6, 8)
    assert max(e.step for e in seen if isinstance(e, Progress)) == 6


def test_a_partial_result_is_the_picture_before_the_detailer(studio):
    """A1111's interrupt during a region answers with the pictures as the task made them, not a region."""
    from studio.engine.partial import Interrupted

    request = tiny_request(**DETAIL, preview="none")

    def work(emit, cancel):
        def emit_then_cancel(event):
            emit(event)
            if isinstance(event, Progress) and event.step == 5:
                cancel.set()

        generation.run(studio, request, emit_then_cancel, cancel, partial=True)

    final = Job(request, work).result()
    plain = studio.run(tiny_request(preview="none"))
    assert isinstance(final, Interrupted) and final.images[0].size == (64, 64)
    assert np.abs(pixels(final.images[0]).astype(int) - pixels(plain.images[0]).astype(int)).max() <= 1


# -- the request: cost, checks, infotext ------------------------------------------------------------------------

def test_the_cost_counts_every_region_it_may_repaint():
    plain, detailed = tiny_request(), tiny_request(**DETAIL)
    per_region = 2 * 64 * 64 / 1e6  # 2 steps (strength 0.5 of 4) at 64x64
    assert detailed.cost() == pytest.approx(plain.cost() + 2 * per_region + 0.5)  # + the detection
    more = tiny_request(**{**DETAIL, "detailer_max": 4, "batch_size": 2})
    assert more.cost() == pytest.approx(2 * (plain.cost() + 4 * per_region + 0.5))
    assert tiny_request(**{**DETAIL, "detailer_strength": 0.0}).cost() == pytest.approx(plain.cost() + 0.5)


@pytest.mark.parametrize("fields, field", [
    ({"detailer_confidence": 1.5}, "detailer_confidence"),
    ({"detailer_max": 9}, "detailer_max"),
    ({"detailer_max": 0}, "detailer_max"),
    ({"detailer_target": "cat"}, "detailer_target"),
    ({"detailer_model": "builtin:yolo"}, "detailer_model"),
    ({"detailer_model": ""}, "detailer_model"),
    ({"detailer_strength": -0.1}, "detailer_strength"),
    ({"detailer_dilate": 200}, "detailer_dilate"),
    ({"detailer_width": 60, "detailer_height": 64}, "detailer_width"),  # not a multiple of 8
    ({"detailer_width": 64}, "detailer_height"),  # both or neither
    ({"detailer_prompt": "a face <lora:x:0.5>"}, "detailer_prompt"),
    ({"init_image": picture(), "mask": picture().convert("L")}, "detailer"),  # not after inpainting
    ({"model": "tiny-qwen-edit", "references": [{"image": picture()}], "task": "edit"}, "detailer"),
])
def test_bad_values_are_refused_by_field_name(fields, field):
    with pytest.raises(StudioError) as refused:
        tiny_request(**{**DETAIL, **fields})
    assert getattr(refused.value, "field", None) == field, str(refused.value)


def test_the_infotext_has_adetailers_keys_and_reads_back():
    request = tiny_request(**DETAIL, detailer_target="hand", detailer_prompt="a hand, detailed",
                           detailer_negative_prompt="extra fingers", detailer_width=96, detailer_height=80,
                           detailer_dilate=-8)
    text = format_infotext(request)
    for pair in ('ADetailer model: "builtin:owlv2"', "ADetailer model classes: hand",
                 'ADetailer prompt: "a hand, detailed"', "ADetailer negative prompt: extra fingers",
                 "ADetailer confidence: 0.5", "ADetailer mask only top k largest: 2", "ADetailer dilate erode: -8",
                 "ADetailer mask blur: 2", "ADetailer denoising strength: 0.5", "ADetailer inpaint only masked: True",
                 "ADetailer inpaint padding: 8", "ADetailer use inpaint width height: True",
                 "ADetailer inpaint width: 96", "ADetailer inpaint height: 80"):
        assert pair in text, pair
    fields, notes = request_fields(parse_infotext(text))
    assert notes == []
    for name in ("detailer", "detailer_model", "detailer_target", "detailer_prompt", "detailer_negative_prompt",
                 "detailer_confidence", "detailer_max", "detailer_dilate", "detailer_mask_blur", "detailer_strength",
                 "detailer_padding", "detailer_width", "detailer_height"):
        assert fields[name] == getattr(request, name), name
    assert "ADetailer" not in format_infotext(tiny_request())
    assert request_fields(parse_infotext(format_infotext(tiny_request())))[0]["detailer"] is False


def test_an_adetailer_infotext_reads_as_the_detailer():
    text = ("a portrait\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, ADetailer model: "
            "hand_yolov8n.pt, ADetailer confidence: 0.35, ADetailer dilate erode: 4, ADetailer mask blur: 4, "
            "ADetailer denoising strength: 0.45, ADetailer inpaint only masked: True, ADetailer inpaint padding: 32, "
            "ADetailer version: 24.11.1")
    fields, notes = request_fields(parse_infotext(text))
    assert notes == [] and fields["detailer"] is True and fields["detailer_target"] == "hand"
    assert "detailer_model" not in fields  # a YOLO file: the form's detector looks for hands
    assert (fields["detailer_confidence"], fields["detailer_strength"], fields["detailer_prompt"],
            fields["detailer_width"]) == (0.35, 0.45, "", 0)
    world = parse_infotext(text.replace("hand_yolov8n.pt", "yolov8x-worldv2.pt"))
    assert "detailer_target" in " ".join(request_fields(world)[1])  # looks for no face, hand or person


# -- A1111's API: ADetailer's alwayson_scripts ------------------------------------------------------------------

def test_adetailers_api_arguments_become_the_detailer():
    from studio.web.sdapi import translate

    tab = {"ad_model": "face_yolov8n.pt", "ad_prompt": "a detailed face", "ad_confidence": 0.4,
           "ad_denoising_strength": 0.35, "ad_mask_k_largest": 2, "ad_use_inpaint_width_height": True,
           "ad_inpaint_width": 96, "ad_inpaint_height": 96, "ad_steps": 40, "ad_restore_face": True, "ad_foo": 1}
    body = {"prompt": "p", "alwayson_scripts": {"ADetailer": {"args": [True, False, tab, {"ad_model": "hand_yolov8n.pt"}]}}}
    settings, ignored, notes = translate.to_settings(body, "txt2img", None, None)
    assert {k: v for k, v in settings.items() if k.startswith("detailer")} == {
        "detailer": True, "detailer_target": "face", "detailer_prompt": "a detailed face", "detailer_confidence": 0.4,
        "detailer_strength": 0.35, "detailer_max": 2, "detailer_width": 96, "detailer_height": 96}
    at = "alwayson_scripts.ADetailer.args[2]"
    assert ignored == {f"{at}.ad_restore_face": True, f"{at}.ad_foo": "(not an ADetailer argument)",
                       "alwayson_scripts.ADetailer.args[3]": "(one ADetailer tab runs here: the first with a model)"}
    assert any("face_yolov8n.pt" in note for note in notes)  # ad_steps: its switch is off, as in ADetailer
    off, _, _ = translate.to_settings({"alwayson_scripts": {"ADetailer": {"args": [False, tab]}}}, "txt2img", None, None)
    assert "detailer" not in off
    with pytest.raises(StudioError) as refused:
        translate.to_settings({"alwayson_scripts": {"ADetailer": {"args": [{**tab, "ad_confidence": 3}]}}},
                              "txt2img", None, None)
    assert refused.value.field == "alwayson_scripts.ADetailer.args[0].ad_confidence"


def test_adetailers_skip_img2img_is_image_to_image_at_strength_0():
    from support import b64_png
    from studio.web.sdapi import translate

    body = {"init_images": [b64_png(picture())], "denoising_strength": 0.7,
            "alwayson_scripts": {"adetailer": {"args": [True, True, {"ad_model": "mediapipe_face_full"}]}}}
    settings, _, notes = translate.to_settings(body, "img2img", None, None)
    assert settings["denoising_strength"] == 0.0 and settings["detailer"] is True and settings["detailer_max"] == 8
    inpaint, ignored, _ = translate.to_settings({**body, "mask": b64_png(picture())}, "img2img", None, None)
    assert "detailer" not in inpaint and "alwayson_scripts.ADetailer.args" in ignored


# -- the page's panel -------------------------------------------------------------------------------------------

def test_the_page_panel_holds_every_detailer_setting():
    import gradio as gr

    from studio import TABLE
    from studio.models import resolve_model
    from studio.web import detail_view
    from studio.web.widgets import Form

    form = Form(TABLE, resolve_model("tiny"), {"task": "txt2img"})
    with gr.Blocks():
        view = detail_view.build(form)
        task = gr.Textbox("txt2img")
        detail_view.wire(view, task, {})
    assert {name for name in form.components} == {f.name for f in TABLE if f.name.startswith("detailer")}
    assert view.panel.label == "Detailer (ADetailer)" and detail_view.title(True, "hand") == "Detailer (ADetailer): hands"
