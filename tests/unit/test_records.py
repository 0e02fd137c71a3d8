"""Records: a list-valued setting's items (a ControlNet unit, an image prompt) are typed classes whose
fields are declared once, with `part`; the check of an item, its infotext line, A1111's names, the
page's controls, the /generate description and the reference all derive from those fields. A field
added to a record reaches every one of them with nothing else written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pytest

from studio.references import REFERENCE
from studio.control import image_prompts
from studio.control.units import UNIT, ControlUnit
from studio.errors import InvalidValue
from studio.field_spec import A1111, Context, Infotext, Record, part
from studio.fields import TABLE
from studio.models import resolve_model
from studio.web import control_view
from studio.web.sdapi import units as sdapi_units

CONTEXT = Context(resolve_model("tiny"))


@dataclass(frozen=True)
class Axis:
    """A record made up here (an X/Y/Z axis, say): everything below derives from these three lines."""

    setting: str = part("choice", "steps", "Setting", choices=("steps", "cfg_scale"), infotext=(Infotext("Axis", 1),),
                        a1111=A1111("axis_type"))
    values: str = part("text", "", "Values", infotext=(Infotext("Values", 2),), a1111=A1111("axis_values"))
    every: int = part("int", 1, "Every", range=(1, 4), infotext=(Infotext("Every", 3, parse=int),),
                      a1111=A1111(None, note="ours only"))


AXIS = Record(Axis, 3, "axis", plural="axes")


def test_a_records_fields_are_its_class_attributes_in_order():
    assert list(UNIT.fields.by_name) == [name for name in ControlUnit.__dataclass_fields__]
    assert list(AXIS.fields.by_name) == ["setting", "values", "every"]
    assert AXIS.fields["every"].range == (1, 4) and AXIS.fields["every"].default == 1


def test_an_item_is_checked_field_by_field_with_its_place_named():
    assert AXIS.parse({"setting": "cfg_scale", "values": "3, 5"}, "axes[0]", CONTEXT) == Axis("cfg_scale", "3, 5", 1)
    assert AXIS.parse(Axis(), "axes[0]", CONTEXT) == Axis()
    with pytest.raises(InvalidValue, match=r"axes\[1\]\.every: 9.*1 to 4"):
        AXIS.parse_all("axes", [{}, {"every": 9}], CONTEXT)
    with pytest.raises(InvalidValue, match=r"axes\[0\]\.colour.*one of setting, values, every"):
        AXIS.parse({"colour": 1}, "axes[0]", CONTEXT)
    with pytest.raises(InvalidValue, match=r"axes\[0\]: 'str'.*an axis: \{setting, values, every\}"):
        AXIS.parse("steps", "axes[0]", CONTEXT)
    with pytest.raises(InvalidValue, match=r"axes: '4 axes'.*at most 3"):
        AXIS.parse_all("axes", [{}] * 4, CONTEXT)


def test_an_item_writes_its_infotext_line_and_reads_it_back():
    axis = Axis("cfg_scale", "3", 2)
    assert AXIS.line(axis) == "Axis: cfg_scale, Values: 3, Every: 2"
    assert AXIS.parse(AXIS.read_line(AXIS.line(axis)), "axes[0]", CONTEXT) == axis
    unit = UNIT.parse({"model": "m", "module": "canny", "weight": 0.5, "union_type": "tile", "resize_mode": "Just resize",
                       "pixel_perfect": True, "control_mode": "ControlNet is more important"}, "controlnets[0]", CONTEXT)
    line = unit.infotext()
    assert line.startswith("Module: canny, Model: m, Weight: 0.5, Resize Mode: Just Resize, Processor Res: 512")
    assert line.endswith("Control Mode: ControlNet is more important, Union Control Type: tile")
    assert UNIT.parse(UNIT.read_line(line), "controlnets[0]", CONTEXT) == unit


def test_a_record_is_recorded_without_its_pictures():
    from PIL import Image

    prompt = image_prompts.PROMPT.parse({"image": Image.new("RGB", (64, 32)), "model": "ip-adapter_sd15"},
                                        "image_prompts[0]", CONTEXT)
    assert prompt.record() == {"image": {"width": 64, "height": 32, "stored": False}, "model": "ip-adapter_sd15",
                               "weight": 1.0}


def test_the_table_takes_records_fields_by_their_record():
    records = {f.name: f.items for f in TABLE if f.kind == "records"}
    assert records == {"controlnets": UNIT, "image_prompts": image_prompts.PROMPT, "references": REFERENCE}
    assert "union_type" in TABLE["controlnets"].help  # the help lists the unit's fields


def test_a1111s_unit_keys_come_from_the_units_fields():
    units, prompts = sdapi_units.controlnet_units({"args": [
        {"module": "canny", "model": "m", "weight": 0.4, "resize_mode": 0, "control_mode": 2, "processor_res": 256,
         "union_control_type": "Hard Edge", "low_vram": True},
        {"module": "ip-adapter_clip_h", "model": "ip-adapter_sd15", "weight": 0.6},
        {"enabled": False, "module": "canny"}]})
    assert units == [{"model": "m", "weight": 0.4, "processor_res": 256, "resize_mode": "Just resize",
                      "control_mode": "ControlNet is more important", "union_type": "canny", "image": None,
                      "module": "canny"}]
    assert prompts == [{"image": None, "model": "ip-adapter_sd15", "weight": 0.6}]
    assert set(sdapi_units.UNIT_NAMES) == set(UNIT.fields.by_name)  # every field says its A1111 name


def test_every_unit_field_has_its_place_on_the_page():
    placed = [name for row in control_view.UNIT_ROWS for name in row]
    assert sorted(placed) == sorted(UNIT.fields.by_name) and len(placed) == len(set(placed))
    with gr.Blocks():
        units = control_view.build_units()
        slots = control_view.build_slots()
    assert sorted(units[0].parts) == sorted(control_view.UNIT_KEYS)
    weight = units[1].parts["weight"]
    assert (weight.minimum, weight.maximum, weight.elem_id) == (*UNIT.fields["weight"].range, "cn-weight-1")
    assert units[0].parts["module"].value == "canny" and units[0].parts["control_mode"].elem_id == "cn-mode-0"
    assert list(slots[0].parts) == list(image_prompts.PROMPT.fields.by_name)
    assert slots[0].parts["weight"].maximum == image_prompts.PROMPT.fields["weight"].range[1]
    assert slots[2].image.elem_id == "ip-image-2" and slots[0].parts["model"].value is None


def axis_field() -> Any:
    from studio.fields import Field

    return Field("axes", "records", (), "Axes", items=AXIS, a1111=A1111(None, note="test"))


def test_a_new_records_field_reaches_the_api_and_the_reference():
    from studio import docs
    from studio.web.generate_api import api_parameter

    field = axis_field()
    assert api_parameter(field).annotation == list[dict[str, Any]]
    reference = docs.records_markdown(TABLE.with_fields(field))
    assert "### `axes[i]`: an axis" in reference and "| `every` | int | `1` | 1..4 | Every |" in reference
