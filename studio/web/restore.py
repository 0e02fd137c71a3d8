"""PNG Info and History: a PNG's settings back into the form, every one of them; and the one step
that fits settings to a model (`fit_to_model`), which a restore and a model switch share.

What a PNG holds comes from `studio.pnginfo.recall` (checked, with notes); here it becomes updates
of the form's components by field name and the task's tab, fitted to the model the form will have
(the PNG's, or the form's own when this studio lacks the PNG's), with a note for each change.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import gradio as gr

from .. import loras, models, validation
from . import control_view
from ..errors import StudioError
from ..fields import TABLE, FieldTable
from ..metadata import MetadataError, read_png
from ..models import resolve_model
from ..pnginfo import checked_settings, recall
from ..request import family_sampler_names
from ..sizes import snap
from .calls import as_gradio_error
from .warmup import model_notice
from .widgets import Form, guidance_label, used_by

NOTHING_PICKED = "Pick an image in the history first: nothing was changed."
NOTHING_LOADED = "Drop a PNG with generation parameters first: nothing was changed."


def family_visibility(source: models.ModelSource) -> dict[str, dict[str, Any]]:
    """The form's fields only some families use (True CFG scale: FLUX), shown for the model's family
    (every one while its family is not known)."""
    return {f.name: {"visible": used_by(f, source)} for f in TABLE.page if f.families is not None}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    return f"{value:g}" if _number(value) else str(value)


def fit_to_model(source: models.ModelSource, values: dict[str, Any],
                 guidance_known: bool = False) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """THE step that fits settings to a model, for a model switch and a restore alike. Each of
    `values` (by field name) that the model takes is kept; one it does not is changed to what it
    takes: a size to the nearest multiple in its range, a sampler of another kind to its own, a CFG
    scale that means nothing to its kind of guidance (models.GUIDANCE_SENSE; not checked when
    `guidance_known`: the values were made for this model) to its recommended one. The widgets take
    the model's size range, samplers, guidance label and family's fields, so no value is ever out
    of a widget's range. Returns gr.update arguments by field name, and each change
    ("width 768 → 512 (...)")."""
    rec = TABLE.model_defaults(source)
    low, high = source.size_range
    multiple = source.size_rule.multiple
    changes: dict[str, dict[str, Any]] = {name: {"minimum": low, "maximum": high, "step": multiple}
                                          for name in ("width", "height")}
    changes["sampler"] = {"choices": family_sampler_names(source.family)}
    changes["cfg_scale"] = dict(guidance_label(source))
    changes.update(family_visibility(source))
    changed: list[str] = []

    def fit(name: str, value: Any, fitted: Any, why: str) -> None:
        changes[name]["value"] = fitted
        if fitted != value:
            changed.append(f"{name} {_text(value)} → {_text(fitted)} ({why})")

    for name in ("width", "height"):
        if name in values:
            value = values[name]
            fitted = snap(value, low, high, multiple) if _number(value) else rec[name]
            fit(name, value, fitted, f"this model takes {low}-{high}, multiples of {multiple}")
    if "sampler" in values:
        sampler = values["sampler"]
        names = changes["sampler"]["choices"]
        fit("sampler", sampler, sampler if sampler in names else rec["sampler"], "not one this model runs")
    sense, cfg = models.GUIDANCE_SENSE.get(source.guidance), values.get("cfg_scale")
    if not guidance_known and sense is not None and _number(cfg) and not sense[0] <= cfg <= sense[1]:
        fit("cfg_scale", cfg, rec["cfg_scale"],
            f"a CFG scale for another kind of guidance: this model's {changes['cfg_scale']['label']} is "
            f"{sense[0]:g}-{sense[1]:g}")
    return changes, changed


def make_png_info(models_dir: str | Path | None, allow_pickle: bool, table: FieldTable = TABLE,
                  loras_dir: str | Path | None = None,
                  embeddings_dir: str | Path | None = None) -> Callable[[Any], tuple[str, dict]]:
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
        recalled = recall(meta, models_dir, allow_pickle, table, loras_dir, embeddings_dir)
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
                 controls: control_view.Controls | None = None, current_model: Any = None,
                 notice: gr.Markdown | None = None) -> dict:
    """Updates that put a PNG's settings in the form, fitted to the model the form will have (the
    PNG's, else `current_model`, the form's) as a model switch fits them; fields it does not hold are
    left alone."""
    found = found if isinstance(found, dict) else {}
    # The settings come from the page (a JSON component anyone can send): checked as a request would.
    fields, problems = checked_settings(found.get("fields") or {}, form.table)
    if not fields:
        return {note: found.get("message") if isinstance(found.get("message"), str) else NOTHING_LOADED}
    if fields.get("loras"):
        fields["prompt"] = prompt_with_loras(fields.get("prompt", ""), fields.pop("loras"))
    values: dict[str, dict] = {name: {"value": value} for name, value in fields.items() if name in form.components}
    updates: dict[Any, Any] = {}
    try:
        source = resolve_model(fields.get("model", current_model))
    except StudioError:  # the form's model box holds no model (a half-typed name): nothing to fit to
        source = None
    if source is not None:
        fitted, changed = fit_to_model(source, fields, guidance_known="model" in fields)
        for name, change in fitted.items():
            values.setdefault(name, {}).update(change)
        if changed:
            problems.append(f"Changed to fit {source.name}: " + "; ".join(changed))
        if notice is not None and "model" in fields:
            updates[notice] = model_notice(source)
    updates.update({form.components[name]: gr.update(**change) for name, change in values.items()
                    if name in form.components})
    if fields.get("task") in ("txt2img", "img2img", "inpaint", "outpaint"):
        updates[tabs] = gr.Tabs(selected=fields["task"])
    unit_changes, unit_notes = controls.updates(fields) if controls is not None else ({}, [])
    updates.update(unit_changes)
    notes = [n for n in found.get("notes") or [] if isinstance(n, str)] + problems + unit_notes
    lines = [found.get("message") if isinstance(found.get("message"), str) else ""] + [f"- {n}" for n in notes]
    updates[note] = "\n".join(line for line in lines if line)
    return updates


def restorable_outputs(form: Form, tabs: gr.Tabs, note: gr.Markdown,
                       controls: control_view.Controls | None = None, notice: gr.Markdown | None = None) -> list:
    return [*form.components.values(), tabs, note, *(controls.outputs() if controls is not None else ()),
            *((notice,) if notice is not None else ())]


def make_restore(form: Form, tabs: gr.Tabs, note: gr.Markdown, png_info: Callable,
                 controls: control_view.Controls | None = None, notice: gr.Markdown | None = None) -> Callable:
    def restore(path: str | None, model: Any = None) -> dict:
        """History's "Restore these settings": the picked image's own PNG back into the form (`model`:
        the form's, which the settings fit when the PNG's model is not here)."""
        if not path:
            return {note: NOTHING_PICKED}
        return form_updates(png_info(path)[1], form, tabs, note, controls, model, notice)

    return restore


def make_send(form: Form, tabs: gr.Tabs, note: gr.Markdown, controls: control_view.Controls | None = None,
              notice: gr.Markdown | None = None) -> Callable:
    def send(found: dict | None, model: Any = None) -> dict:
        """PNG Info's "Send to the form" (`model`: the form's, as for Restore)."""
        return form_updates(found, form, tabs, note, controls, model, notice)

    return send


def _shown(value: Any) -> str:
    """A setting's value as PNG Info's table shows it: lists joined, records counted, pipes escaped."""
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            return f"{len(value)} ({', '.join(str(v.get('model') or v.get('module') or '') for v in value)})"
        text = ", ".join(":".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def settings_markdown(recalled: dict | None, table: FieldTable = TABLE) -> str:
    """PNG Info's "Settings found" for a person: each setting by its label, then the notes (what was
    changed, what the studio does not use). The JSON beside it is what `/png_info` returns."""
    if not recalled:
        return ""
    fields = recalled.get("fields") or {}
    lines = [recalled["message"], ""] if recalled.get("message") else []
    if fields:
        lines += ["| setting | value |", "|---|---|"]
        task = fields.get("task")  # the settings of other tasks (inpaint's on a txt2img PNG) left out
        lines += [f"| {table[name].label if name in table else name} | {_shown(value)} |"
                  for name, value in fields.items() if value not in (None, "", [], ())
                  and not (name in table and task and task not in table[name].tasks)]
    notes = recalled.get("notes") or []
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def build_png_info() -> SimpleNamespace:
    """The PNG Info panel, built in the current layout: a dropped PNG's parameters, its settings as a
    table and as JSON, and the button sending them to the form."""
    with gr.Accordion("PNG Info", open=False, elem_id="png-info"):
        with gr.Row():
            file = gr.File(label="Drop a PNG", file_types=["image"], type="binary", elem_id="png-file")
            with gr.Column():
                text = gr.Textbox(label="Parameters", lines=6, interactive=False, elem_id="png-text")
                table = gr.Markdown("", elem_id="png-table")  # the settings, readable
                with gr.Accordion("As JSON (what /png_info returns)", open=False):
                    fields = gr.JSON(label="Settings found", elem_id="png-fields", height=200)
                send = gr.Button("Send to the form", elem_id="send-to-form")
                note = gr.Markdown("", elem_id="png-note")
    return SimpleNamespace(file=file, text=text, table=table, fields=fields, send=send, note=note)
