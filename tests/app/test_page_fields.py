"""The page is built from the field table: a widget for every page field as the table declares it,
PNG Info's restore reaches every restorable field, and a new setting in the table reaches the page,
the API, the PNG and PNG Info with nothing else written."""

from __future__ import annotations

import pytest

from support import dummy_table, free_port
from studio import TABLE, Studio
from studio.models import resolve_model
from studio.web import Warmup, build_ui


@pytest.fixture(scope="module")
def page(studio):
    warmup = Warmup(studio, "tiny")
    warmup.model = "tiny"
    return build_ui(studio, warmup)


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
              "subseed": 77, "subseed_strength": 0.2, "seed_resize_from_w": 96, "seed_resize_from_h": 64,
              "batch_size": 2, "batch_count": 1, "prompt_syntax": "compel", "clip_skip": 2, "rng": "device",
              "task": "img2img", "denoising_strength": 0.4, "resize_mode": "Crop and resize", "mask_blur": 2,
              "inpaint_mode": "Inpaint not masked", "masked_content": "fill", "inpaint_area": "Only masked",
              "masked_padding": 8, "hires": True, "hires_scale": 1.5, "hires_upscaler": "Lanczos", "hires_steps": 2,
              "hires_strength": 0.3, "loras": [["detail", 0.5]], "true_cfg_scale": 1.0, "size_from": "width and height",
              "fast_decode": True, "controlnets": [{"module": "canny", "model": "builtin:controlnet/sdxl"}],
              "image_prompts": [{"model": "builtin:ip-adapter/sdxl", "weight": 0.6}],
              "sd_upscale": True, "sd_upscale_scale": 1.5, "sd_upscale_upscaler": "Nearest", "sd_upscale_overlap": 32,
              "upscaler": "Nearest", "upscale_by": 3.0, "upscale_width": 0, "upscale_height": 0, "upscale_crop": False,
              "upscaler_2": "Lanczos", "upscaler_2_visibility": 0.5,
              "outpaint_left": 8, "outpaint_right": 16, "outpaint_up": 0, "outpaint_down": 24, "outpaint_fill": "original",
              "outpaint_overlap": 8,
              "detailer": True, "detailer_target": "hand", "detailer_model": "builtin:owlv2", "detailer_prompt": "dp",
              "detailer_negative_prompt": "dn", "detailer_confidence": 0.25, "detailer_max": 3, "detailer_dilate": 8,
              "detailer_mask_blur": 2, "detailer_strength": 0.5, "detailer_padding": 16, "detailer_width": 96,
              "detailer_height": 96,
              "restore_faces": True, "face_restorer": "GFPGANv1.4", "face_restore_visibility": 0.5,
              "face_detector": "builtin:owlv2", "face_confidence": 0.4, "dynamic_prompts": "combinatorial",
              "x_type": "Steps", "x_values": "2, 4", "y_type": "CFG Scale", "y_values": "3-7 [2]", "z_type": "Nothing",
              "z_values": ""}
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
            assert updates[first.parts["model"]]["value"] == "builtin:ip-adapter/sdxl" and updates[first.parts["weight"]]["value"] == 0.6
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
