"""PNG Info and History: a PNG's settings back into the form, every one of them.

What a PNG holds comes from `studio.pnginfo.recall` (checked, with notes); here it becomes updates
of the form's components by field name, the task's tab, and the model's size range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gradio as gr

from .. import loras, validation
from . import control_view
from ..errors import StudioError
from ..fields import TABLE, FieldTable
from ..metadata import MetadataError, read_png
from ..models import resolve_model
from ..pnginfo import checked_settings, recall
from .calls import as_gradio_error
from .widgets import Form

NOTHING_PICKED = "Pick an image in the history first: nothing was changed."
NOTHING_LOADED = "Drop a PNG with generation parameters first: nothing was changed."


def make_png_info(models_dir: str | Path | None, allow_pickle: bool,
                  table: FieldTable = TABLE) -> Callable[[Any], tuple[str, dict]]:
    def png_info(image: bytes | str | Path | None) -> tuple[str, dict]:
        """A PNG's parameters as text, and the settings they hold: `fields` are /generate's keyword
        arguments (input images aside), `notes` what to know, `batch_index` which image of the
        regenerated batch this one is."""
        if not image:
            return "", {}
        try:
            meta = read_png(image)
        except MetadataError as exc:
            raise as_gradio_error(exc) from None
        recalled = recall(meta, models_dir, allow_pickle, table)
        return meta.infotext or meta.message, recalled.as_json()

    return png_info


def prompt_with_loras(prompt: str, refs: list) -> str:
    """LoRAs given by name (the API's `loras`) as the page spells them: tags in the prompt."""
    for name, weight in refs:
        prompt = lora_tag(prompt, name, weight)
    return prompt


def lora_tag(prompt: str, name: str | None, weight: float) -> str:
    """The prompt with `<lora:name:weight>` added (or that LoRA's weight changed), as A1111's
    extra-networks cards do."""
    if not name:
        raise gr.Error("Pick a LoRA first.", print_exception=False)
    text = validation.text("prompt", prompt)
    name = validation.text("lora", name)
    if len(name) > loras.MAX_NAME_CHARS or ">" in name or ":" in name:
        raise gr.Error(f"lora: {name[:40]!r} is not a LoRA name", print_exception=False)
    weight = validation.float_in_range("lora weight", weight, *loras.WEIGHT_RANGE)
    tag = f"<lora:{name}:{weight:g}>"
    for found in loras.find_tags(text):
        if found.name.strip() == name:
            return text[:found.start] + tag + text[found.end:]
    return f"{text.rstrip()} {tag}".strip()


def form_updates(found: dict | None, form: Form, tabs: gr.Tabs, note: gr.Markdown,
                 controls: control_view.Controls | None = None) -> dict:
    """Updates that put a PNG's settings in the form; fields it does not hold are left alone."""
    found = found if isinstance(found, dict) else {}
    # The settings come from the page (a JSON component anyone can send): checked as a request would.
    fields, problems = checked_settings(found.get("fields") or {}, form.table)
    if not fields:
        return {note: found.get("message") if isinstance(found.get("message"), str) else NOTHING_LOADED}
    if fields.get("loras"):
        fields["prompt"] = prompt_with_loras(fields.get("prompt", ""), fields.pop("loras"))
    values: dict[str, dict] = {name: {"value": value} for name, value in fields.items() if name in form.components}
    if "model" in fields:  # the size sliders take the restored model's range
        try:
            source = resolve_model(fields["model"])
            low, high = source.size_range
            for name in ("width", "height"):
                values.setdefault(name, {}).update(minimum=low, maximum=high, step=source.size_rule.multiple)
        except StudioError:
            pass
    updates: dict[Any, Any] = {form.components[name]: gr.update(**change) for name, change in values.items()}
    if fields.get("task") in ("txt2img", "img2img", "inpaint"):
        updates[tabs] = gr.Tabs(selected=fields["task"])
    unit_changes, unit_notes = controls.updates(fields) if controls is not None else ({}, [])
    updates.update(unit_changes)
    notes = [n for n in found.get("notes") or [] if isinstance(n, str)] + problems + unit_notes
    lines = [found.get("message") if isinstance(found.get("message"), str) else ""] + [f"- {n}" for n in notes]
    updates[note] = "\n".join(line for line in lines if line)
    return updates


def restorable_outputs(form: Form, tabs: gr.Tabs, note: gr.Markdown,
                       controls: control_view.Controls | None = None) -> list:
    return [*form.components.values(), tabs, note, *(controls.outputs() if controls is not None else ())]


def make_restore(form: Form, tabs: gr.Tabs, note: gr.Markdown, png_info: Callable,
                 controls: control_view.Controls | None = None) -> Callable:
    def restore(path: str | None) -> dict:
        """History's "Restore these settings": the picked image's own PNG back into the form."""
        if not path:
            return {note: NOTHING_PICKED}
        return form_updates(png_info(path)[1], form, tabs, note, controls)

    return restore


def make_send(form: Form, tabs: gr.Tabs, note: gr.Markdown, controls: control_view.Controls | None = None) -> Callable:
    def send(found: dict | None) -> dict:
        """PNG Info's "Send to the form"."""
        return form_updates(found, form, tabs, note, controls)

    return send
