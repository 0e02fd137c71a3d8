"""The page's X/Y/Z plot panel (A1111's script): an accordion, closed by default, of three rows, each an axis
dropdown and its values. The controls are the field table's widgets (studio/xyz/fields.py), so Generate,
PNG Info and History's restore reach them by name with nothing else written; with an axis chosen, Generate
makes the plot (the grid first in the gallery, then every cell). The title says when a plot is set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import StudioError
from ..xyz import axes
from ..xyz.fields import LETTERS

TITLE = "X/Y/Z plot"
HINT = ("Pick a setting for an axis and write its values: `10, 20, 30`, a range `10-30 (+10)` or a count `1-3 [5]`; "
        "Prompt S/R replaces its first value in the prompts (`<lora:x:0.5>, <lora:x:1>` varies a LoRA's weight). "
        "Generate then makes every cell, each saved with its own infotext, and a labelled grid. "
        "Set every axis to Nothing for a plain Generate.")
PRIVATE = {"api_visibility": "private", "show_progress": "hidden"}


@dataclass
class XyzView:
    panel: Any  # the accordion
    types: list[Any]  # each axis's dropdown


def title(*types: str) -> str:
    chosen = [t for t in types if t and t != "Nothing"]
    return f"{TITLE}: {' × '.join(chosen)}" if chosen else TITLE


def build(form: Any) -> XyzView:
    """The panel, built in the current layout (the settings column), its title kept up to date."""
    with gr.Accordion(title(*(form.values[f"{letter}_type"] for letter in LETTERS)), open=False,
                      elem_id="xyz-panel") as panel:
        gr.Markdown(HINT, elem_id="xyz-hint")
        types, boxes = [], []
        for letter in LETTERS:
            with gr.Row():
                types.append(form.widget(f"{letter}_type", info=None, scale=1, allow_custom_value=True))
                boxes.append(form.widget(f"{letter}_values", info=hint(form.table, form.values[f"{letter}_type"]),
                                         scale=2))
    gr.on(triggers=[t.change for t in types], fn=lambda *chosen: gr.Accordion(label=title(*chosen)),
          inputs=types, outputs=panel, **PRIVATE)
    for chosen, box in zip(types, boxes):  # what the values may be, under them
        chosen.change(lambda name: gr.Textbox(info=hint(form.table, name)), inputs=chosen, outputs=box, **PRIVATE)
    return XyzView(panel, types)


def hint(table: Any, name: Any) -> str:
    """What the chosen axis's values may be ("" for no axis or a name the server will refuse on Generate)."""
    try:
        axis = axes.find(name, "x_type", table)
    except StudioError:
        return ""
    return "" if axis.kind == "nothing" else axes.describe(axis, table)
