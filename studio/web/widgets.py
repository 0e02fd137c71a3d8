"""The page's widgets, built from the field table: one builder per kind of control.

`Form` builds a field's widget where the layout asks for it and keeps every one in
`components[name]`; the page maps components to settings by name, never by position.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import gradio as gr

from ..fields import FROM_MODEL, Field, FieldTable
from ..models import ModelSource
from ..request import family_sampler_names
from .bounded import BoundedImage, drawn_as_base


def _common(field: Field) -> dict[str, Any]:
    options: dict[str, Any] = {"label": field.label, "elem_id": field.name}
    if field.help and field.widget not in ("textbox", "task"):
        options["info"] = field.help
    options.update(field.page)
    return options


# What the CFG scale slider is called for each kind of guidance a model has (ModelSource.guidance).
GUIDANCE_LABELS = {
    "cfg": "CFG scale",
    "distilled": "Distilled CFG scale",  # FLUX dev: embedded guidance, one pass a step, no negative
    "none": "CFG scale (not used by this model)",  # schnell, turbo models: distilled to need none
}


def guidance_label(source: ModelSource) -> dict[str, str]:
    return {"label": GUIDANCE_LABELS[source.guidance]}


def used_by(field: Field, source: ModelSource) -> bool:
    """Whether the model's family uses a setting the table gives to some families only (True CFG
    scale: FLUX): the page shows it only then (every one while the family is not known)."""
    return field.families is None or source.family is None or source.family in field.families


@drawn_as_base
class SizeSlider(gr.Slider):
    """A slider whose range is the model's (width, height): the value is passed on as it is, whatever
    range the slider had when it was sent (a model switch may narrow it while an event is under way),
    and the request's own check refuses a size the model does not take, naming the field in the
    status line, never as Gradio's bare "Value 768 is greater than maximum value 512." toast."""

    def preprocess(self, payload: float | None) -> float | None:
        return None if payload is None else gr.Number.round_to_precision(payload, self.precision)


def _slider(field: Field, value: Any, source: ModelSource) -> gr.Slider:
    low, high = source.size_range if field.model_range else field.range
    step = source.size_rule.multiple if field.model_range else field.step
    options = {**_common(field), **(guidance_label(source) if field.name == "cfg_scale" else {}), **field.page}
    return (SizeSlider if field.model_range else gr.Slider)(low, high, value=value, step=step, **options)


def _dropdown(field: Field, value: Any, source: ModelSource | None) -> gr.Dropdown:
    # Sampler names accept A1111's aliases and old combined names: typed values are checked by the request.
    # The sampler list is the starting model's kind (FLUX: the flow-matching samplers).
    options = _common(field)
    choices = options.pop("choices", None)  # the page's own list (labelled choices, a folder's files)
    if choices is None:
        choices = family_sampler_names(source.family) if field.name == "sampler" and source else field.choice_list()
    options.setdefault("allow_custom_value", field.name in ("sampler", "schedule"))
    return gr.Dropdown(choices, value=value, **options)


def _image(field: Field, value: Any, source: ModelSource) -> gr.Image:
    return BoundedImage(type="pil", sources=["upload", "clipboard"], **_common(field))


# The source is the starting model (None for a record's field: nothing of it depends on the model).
WIDGETS: dict[str, Callable[[Field, Any, Any], gr.components.Component]] = {
    "textbox": lambda f, v, s: gr.Textbox(v, **_common(f)),
    "slider": _slider,
    "seed": lambda f, v, s: gr.Number(value=v, precision=0, minimum=f.range[0], maximum=f.range[1], **_common(f)),
    "number": lambda f, v, s: gr.Number(value=v, precision=0, minimum=f.range[0], maximum=f.range[1], **_common(f)),
    "dropdown": _dropdown,
    "radio": lambda f, v, s: gr.Radio(f.choice_list(), value=v, **_common(f)),
    "checkbox": lambda f, v, s: gr.Checkbox(value=v, **_common(f)),
    "checkboxgroup": lambda f, v, s: gr.CheckboxGroup(f.choice_list(), value=list(v), **_common(f)),
    "image": _image,
    # The model box lists presets and the models folder, and takes any hub id or path typed in.
    "model": lambda f, v, s: gr.Dropdown([], value=v, allow_custom_value=True, **_common(f)),
    # The task is the open tab: the page keeps it in a hidden control.
    "task": lambda f, v, s: gr.Radio(f.choice_list(), value=v or "txt2img", visible=False, **_common(f)),
}


def part_widget(field: Field, elem_id: str, **overrides: Any) -> gr.components.Component:
    """A record's field (a ControlNet unit's weight...) as its widget, with an element id of its own
    (each of three units has a weight). The page's starting value is `value` in its page arguments,
    else the field's default."""
    page = {**field.page, "elem_id": elem_id, **overrides}
    value = page.pop("value", field.default)
    return WIDGETS[field.widget](dataclasses.replace(field, page=page), value, None)


class Form:
    """The generation form: widgets built from the table, by name."""

    def __init__(self, table: FieldTable, source: ModelSource, values: dict[str, Any] | None = None):
        self.table = table
        self.source = source  # the starting model: its defaults and size range
        self.values = {**table.defaults_for(source), **(values or {})}
        self.components: dict[str, gr.components.Component] = {}

    def widget(self, name: str, **overrides: Any) -> gr.components.Component:
        """Build the widget of field `name` here in the layout."""
        field = self.table[name]
        value = self.values[name]
        assert value is not FROM_MODEL
        if not used_by(field, self.source):
            overrides = {"visible": False, **overrides}
        if overrides:
            field = dataclasses.replace(field, page={**field.page, **overrides})
        component = WIDGETS[field.widget](field, value, self.source)
        self.components[name] = component
        return component

    def remaining(self) -> list[str]:
        """Page fields the layout has not placed yet (a new setting shows up without a layout change)."""
        return [f.name for f in self.table.page if f.name not in self.components]

    def component_names(self) -> dict[gr.components.Component, str]:
        return {component: name for name, component in self.components.items()}
