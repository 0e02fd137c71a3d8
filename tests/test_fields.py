"""The field table is the one declaration of every setting: the request, the page, the API, the
infotext and PNG Info all agree with it, field by field, and a new setting is one entry."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path

import gradio as gr
import pytest

from conftest import free_port, tiny_request
from studio import TABLE, GenerationRequest, Studio
from studio.fields import FROM_MODEL, Field, Infotext
from studio.infotext import format_infotext, parse_infotext, request_fields
from studio.models import resolve_model
from studio.request import request_class
from studio.ui import Warmup, build_ui
from studio.ui.api import API_TYPES, SERVER_DEFAULTS, api_signature

KIND_TYPES = {"text": str, "model": str, "choice": str, "int": int, "float": float, "bool": bool}


@pytest.fixture(scope="module")
def page(studio):
    warmup = Warmup(studio, "tiny")
    warmup.model = "tiny"
    return build_ui(studio, warmup)


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
        base = API_TYPES[f.kind]
        if f.default is FROM_MODEL or f.default is None or f.name in SERVER_DEFAULTS:
            assert p.default is None and type(None) in typing.get_args(p.annotation), f.name
        else:
            assert p.annotation == base and p.default == (list(f.default) if isinstance(f.default, tuple)
                                                          else f.default), f.name
        if f.kind in ("int", "float"):  # integers are integers, not the page's sliders' floats
            assert KIND_TYPES[f.kind] in (p.annotation, *typing.get_args(p.annotation)), f.name


def test_the_page_has_a_widget_for_every_page_field_matching_the_table(page):
    form = page.studio_parts.form
    source = resolve_model("tiny")
    defaults = TABLE.defaults_for(source)
    assert set(form.components) == {f.name for f in TABLE.page}
    for f in TABLE.page:
        component = form.components[f.name]
        assert component.elem_id == f.name and component.label == f.label, f.name
        if f.widget == "slider":
            low, high = source.size_range if f.model_range else f.range
            assert (component.minimum, component.maximum) == (low, high), f.name
            assert component.value == defaults[f.name], f.name
        elif f.widget in ("dropdown", "radio", "checkboxgroup") and f.name != "task":
            assert [c[1] for c in component.choices] == f.choice_list(), f.name
            expected = list(defaults[f.name]) if f.widget == "checkboxgroup" else defaults[f.name]
            assert component.value == expected, f.name
        elif f.widget in ("textbox", "checkbox", "seed"):
            assert component.value == defaults[f.name], f.name


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


def dummy_table():
    dummy = Field("dummy_strength", "float", 0.5, "Dummy strength", range=(0.0, 1.0), widget="slider", step=0.05,
                  help="a setting added by a test", infotext=(Infotext("Dummy strength", 180, parse=float),))
    return TABLE.with_fields(dummy)


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


def test_a_new_setting_reaches_the_page_the_api_the_png_and_png_info(tmp_path):
    """End to end on a studio built from the table with one more entry: nothing else was changed."""
    from gradio_client import Client, handle_file

    from studio.outputs import OutputFolder

    table = dummy_table()
    studio = Studio(device="cpu", cache_size=1)
    warmup = Warmup(studio, "tiny")
    warmup.model = "tiny"
    demo = build_ui(studio, warmup, OutputFolder(tmp_path), table=table)
    assert "dummy_strength" in demo.studio_parts.form.components  # under "More settings"
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, allowed_paths=[str(tmp_path)])
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        images, infotext, *_ = client.predict(prompt="dummy", model="tiny", steps=1, seed=3, dummy_strength=0.35,
                                              api_name="/generate")
        assert "Dummy strength: 0.35" in infotext
        _, found = client.predict(image=handle_file(images[0]["image"]), api_name="/png_info")
        assert found["fields"]["dummy_strength"] == 0.35
    finally:
        demo.close()


def test_restore_sets_every_restorable_field_of_the_form(page):
    """PNG Info's settings reach the form component of every field they name, and the task's tab."""
    parts = page.studio_parts
    fields = {"prompt": "p", "negative_prompt": "n", "styles": ["anime"], "model": "tiny-xl", "sampler": "Heun",
              "schedule": "Karras", "steps": 5, "cfg_scale": 3.5, "seed": 5, "width": 72, "height": 80,
              "batch_size": 2, "batch_count": 1, "prompt_syntax": "compel", "clip_skip": 2, "rng": "device",
              "task": "img2img", "denoising_strength": 0.4, "resize_mode": "Crop and resize", "mask_blur": 2,
              "inpaint_mode": "Inpaint not masked", "masked_content": "fill", "inpaint_area": "Only masked",
              "masked_padding": 8, "hires": True, "hires_scale": 1.5, "hires_upscaler": "Lanczos", "hires_steps": 2,
              "hires_strength": 0.3, "loras": [["detail", 0.5]], "true_cfg_scale": 1.0,
              "fast_decode": True, "controlnets": [{"module": "canny", "model": "builtin:controlnet/sdxl"}],
              "image_prompts": [{"model": "builtin:ip-adapter/sdxl", "weight": 0.6}]}
    assert set(fields) == {f.name for f in TABLE.restorable}  # the test names every restorable field
    updates = parts.send_to_form({"message": "m", "fields": fields, "notes": ["a note"]})
    names = parts.form.component_names()
    by_name = {names[c]: u for c, u in updates.items() if c in names}
    for name, value in fields.items():
        if name in ("loras", "prompt"):  # the page spells LoRAs as tags in the prompt
            assert by_name["prompt"]["value"] == "p <lora:detail:0.5>"
            continue
        if name == "controlnets":  # into the page's first unit, without its picture (the note says so)
            unit = parts.units[0].parts
            assert updates[unit["enabled"]]["value"] is True and updates[unit["module"]]["value"] == "canny"
            assert updates[unit["model"]]["value"] == "builtin:controlnet/sdxl"
            assert updates[unit["threshold_a"]]["value"] == 100 and updates[parts.units[1].parts["enabled"]]["value"] is False
            assert "1 ControlNet unit(s) restored without their pictures" in updates[parts.png_note]
            continue
        if name == "image_prompts":  # into the first slot without its picture; the other slots emptied
            first, second = parts.controls.slots[:2]
            assert updates[first.model]["value"] == "builtin:ip-adapter/sdxl" and updates[first.weight]["value"] == 0.6
            assert first.image not in updates and updates[second.image]["value"] is None
            assert "1 image prompt(s) restored without their pictures" in updates[parts.png_note]
            continue
        assert by_name[name]["value"] == value, name
    assert by_name["width"]["maximum"] == 512  # tiny-xl's size range comes with it
    assert updates[parts.tabs].selected == "img2img"
    assert "a note" in updates[parts.png_note]


def test_restore_with_nothing_picked_says_so_and_changes_nothing(page):
    parts = page.studio_parts
    updates = parts.restore_history(None)
    assert list(updates) == [parts.history_note] and "Pick an image" in updates[parts.history_note]
    assert list(parts.send_to_form(None)) == [parts.png_note]


def test_the_readme_shows_the_field_table_as_it_is():
    from studio.docs import table_markdown

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert table_markdown() in readme, "regenerate the README's field table: python3 -m studio.docs"
