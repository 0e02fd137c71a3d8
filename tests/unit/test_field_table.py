"""The field table is the one declaration of every setting: the request, the API, the infotext and
PNG Info all agree with it, field by field, and a new setting is one entry. The page built from it:
tests/app/test_page_fields.py."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from support import dummy_table, tiny_request
from studio import TABLE, GenerationRequest
from studio.fields import FROM_MODEL
from studio.infotext import format_infotext, parse_infotext, request_fields
from studio.models import resolve_model
from studio.request import request_class
from studio.web.generate_api import SERVER_DEFAULTS, api_signature, api_type


KIND_TYPES = {"text": str, "model": str, "choice": str, "int": int, "float": float, "bool": bool}


def test_the_request_is_the_tables_request_fields_in_order():
    assert [f.name for f in dataclasses.fields(GenerationRequest)] == [f.name for f in TABLE.request]
    for f in dataclasses.fields(GenerationRequest):
        declared = TABLE[f.name].default
        assert f.default == (None if declared is FROM_MODEL else declared), f.name


@pytest.mark.parametrize("model", ["tiny", "tiny-xl", "sd15", "sdxl", "sd-turbo"])
def test_request_defaults_are_the_tables_and_the_models(model):
    request = GenerationRequest(model=model)
    source = resolve_model(model)
    for f in TABLE.request:
        expected = vars(source.defaults)[f.name] if f.default is FROM_MODEL else f.default
        if f.name == "task":
            expected = "txt2img"  # no images: text to image
        assert getattr(request, f.name) == (source.name if f.name == "model" else expected), f.name


def test_the_api_parameters_are_the_tables_with_their_types_and_defaults():
    parameters = api_signature().parameters
    assert [name for name in parameters if name != "request"] == [f.name for f in TABLE.api]
    for f in TABLE.api:
        p = parameters[f.name]
        base = api_type(f)
        if f.default is FROM_MODEL or f.default is None or f.name in SERVER_DEFAULTS:
            assert p.default is None and type(None) in typing.get_args(p.annotation), f.name
        else:
            assert p.annotation == base and p.default == (list(f.default) if isinstance(f.default, tuple)
                                                          else f.default), f.name
        if f.kind in ("int", "float"):  # integers are integers, not the page's sliders' floats
            assert KIND_TYPES[f.kind] in (p.annotation, *typing.get_args(p.annotation)), f.name


def test_every_field_is_written_and_read_back_by_the_infotext_or_said_not_to_be():
    """An A1111 text alone gives back each recorded field (styles and LoRAs are in the final prompt)."""
    from PIL import Image

    picture = Image.new("RGB", (64, 64))
    changed = {"negative_prompt": "neg", "sampler": "Heun", "schedule": "Karras", "steps": 3, "cfg_scale": 4.5,
               "seed": 77, "width": 72, "height": 56, "batch_size": 2, "prompt_syntax": "compel", "clip_skip": 2,
               "rng": "device", "task": "inpaint", "init_image": picture, "mask": picture.convert("L"),
               "denoising_strength": 0.3, "resize_mode": "Resize and fill", "mask_blur": 1,
               "inpaint_mode": "Inpaint not masked", "masked_content": "fill", "inpaint_area": "Only masked",
               "masked_padding": 12}
    request = tiny_request(**changed)
    fields, notes = request_fields(parse_infotext(format_infotext(request, 1)))
    assert notes == []
    for name in changed:
        if TABLE[name].kind != "image":
            assert fields[name] == getattr(request, name), name


def test_a_new_setting_is_one_entry_in_the_table():
    """The request checks it, records it, the infotext writes and reads it, the API takes it typed."""
    table = dummy_table()
    Request = request_class(table)
    request = Request(prompt="p", model="tiny", steps=1, dummy_strength=0.25)
    assert request.dummy_strength == 0.25 and request.record()["dummy_strength"] == 0.25
    with pytest.raises(Exception, match="dummy_strength: 2 is not valid; allowed: a number from 0 to 1"):
        Request(model="tiny", dummy_strength=2)
    text = format_infotext(request)
    assert "Dummy strength: 0.25" in text
    fields, _ = request_fields(parse_infotext(text), table)
    assert fields["dummy_strength"] == 0.25
    parameter = api_signature(table).parameters["dummy_strength"]
    assert parameter.annotation is float and parameter.default == 0.5
