"""A1111's names come from the field table: every field says how A1111's API names it (or why it has no
A1111 name), the translation of a request reads those declarations, and a 422 names the key the caller
sent. A field added to the table with an A1111 key reaches the translation with nothing else written."""

from __future__ import annotations

import base64
import io

from PIL import Image

from studio.models import resolve_model
from studio.fields import TABLE, A1111, Field
from studio.web.sdapi import translate, units


def picture() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_every_field_says_how_a1111_names_it():
    undeclared = [f.name for f in TABLE if f.a1111 is None or (f.a1111.key is None and not f.a1111.note)]
    assert undeclared == [], "declare a1111=A1111(key) or A1111(None, note=...) in studio/fields.py"


def test_every_direct_key_arrives_as_its_field_for_its_tasks():
    for f in TABLE:
        spec = f.a1111
        if not spec.direct:
            continue
        for task in spec.tasks:
            payload = {spec.key: f"value of {f.name}", **({spec.when: True} if spec.when else {})}
            assert translate.direct_settings(payload, task)[f.name] == f"value of {f.name}", (f.name, task)
        if spec.when:  # without its switch it is not this field
            assert f.name not in translate.direct_settings({spec.key: 1}, spec.tasks[0])


def test_every_converted_key_is_read():
    """One txt2img and one inpainting request carrying every converted key: each reaches its field."""
    unit = {"module": "canny", "model": "builtin:controlnet/sd15", "image": picture(), "weight": 0.5}
    prompt_unit = {"module": "ip-adapter_clip_h", "model": "builtin:ip-adapter/sd15", "image": picture()}
    common = {"prompt": ["first", "second"], "sampler_name": "DPM++ 2M", "scheduler": "karras", "n_iter": 2,
              "override_settings": {"sd_model_checkpoint": "tiny", "CLIP_stop_at_last_layers": 2},
              "alwayson_scripts": {"controlnet": {"args": [unit, prompt_unit]}}}
    txt, _, _ = translate.to_settings({**common, "enable_hr": True}, "txt2img", None, None)
    img, _, _ = translate.to_settings({**common, "init_images": [picture()], "mask": picture(), "resize_mode": 1,
                                       "inpainting_fill": 0, "inpaint_full_res": True, "inpainting_mask_invert": 1},
                                      "img2img", None, None)
    # On an edit model (FLUX.2 Klein) img2img's init_images are the reference pictures.
    edit, ignored, _ = translate.to_settings({"prompt": "make it night", "init_images": [picture()] * 5,
                                              "override_settings": {"sd_model_checkpoint": "tiny-klein"}},
                                             "img2img", None, None, source_of=resolve_model)
    assert edit["task"] == "edit" and len(edit["references"]) == 4 and "init_image" not in edit
    assert "init_images[4:]" in ignored
    converted = {f.name for f in TABLE if f.a1111.converted}
    for f in TABLE:
        if f.name in converted:
            settings = txt if "txt2img" in f.a1111.tasks else edit if f.a1111.tasks == ("edit",) else img
            assert settings.get(f.name) not in (None, (), []), f.name
    assert txt["prompt"] == "first" and img["masked_content"] == "fill" and img["inpaint_mode"] == "Inpaint not masked"


def test_a_new_field_with_an_a1111_key_reaches_the_translation():
    table = TABLE.with_fields(Field("eta", "float", 0.0, "Eta", range=(0.0, 1.0), a1111=A1111("eta")))
    assert translate.direct_settings({"eta": 0.3, "steps": 5}, "txt2img", table) == {"eta": 0.3, "steps": 5}


def test_a_422_names_the_key_the_caller_sent():
    assert units.A1111_NAMES["batch_count"] == "n_iter"
    assert units.A1111_NAMES["masked_content"] == "inpainting_fill"
    assert units.A1111_NAMES["clip_skip"] == "override_settings.CLIP_stop_at_last_layers"


def test_a_controlnet_units_keys_are_the_units_own():
    assert "union_type" in units.UNIT_NAMES and "image" not in units.UNIT_KEYS.values()


def test_a_422_names_a_units_field_by_its_place_in_the_args_the_caller_sent():
    body = {"alwayson_scripts": {"ControlNet": {"args": [
        {"enabled": False}, {"module": "ip-adapter_clip_h"}, {"module": "canny"}, {"module": "depth"}]}}}
    assert units.a1111_field("controlnets[1].union_type", body) == \
        "alwayson_scripts.controlnet.args[3].union_control_type"
    assert units.a1111_field("image_prompts[0].weight", body) == "alwayson_scripts.controlnet.args[1].weight"
    assert units.a1111_field("controlnets[0]", body) == "alwayson_scripts.controlnet.args[2]"
    assert units.a1111_field("controlnets[5].weight", body) == "controlnets[5].weight"  # not from args
    assert units.a1111_field("batch_count", body) == "n_iter"
