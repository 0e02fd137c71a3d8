"""The page's Outpaint tab: a picture, the pixels to add on each side (or the padding that reaches an
aspect ratio), what the new area starts as and how far the repaint reaches into the picture.

Generate runs it as the `outpaint` task (studio/tasks/outpaint.py): the canvas is the picture plus the
padding, rounded to the model's size multiple (the Width and Height sliders are not used: the canvas
is the size), and the model's inpaint pipeline paints the new area; the denoising strength below the
tabs applies. A model whose family has no inpaint pipeline is refused by name at Generate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import StudioError
from ..families import FAMILIES
from ..models import resolve_model
from ..sizes import ASPECT_RATIOS
from ..tasks import outpaint
from .calls import reported

PAINTERS = ", ".join(fam.title for fam in FAMILIES.values() if outpaint.PIPELINE in fam.pipelines)
HINT = ("Generate extends the picture below by the pixels set on each side and paints the new area from the "
        "prompt (a denoising strength near 1 paints it anew; lower keeps the fill's colours). The canvas is the "
        f"result's size: Width and Height are not used here. Models that outpaint: {PAINTERS}.")


@dataclass
class OutpaintView:
    picture: Any
    sides: list[Any]  # left, right, up, down
    aspect: Any
    to_aspect: Any
    canvas: Any  # the result's size, as the picture and the padding make it


def canvas_note(picture: Any, left: Any, right: Any, up: Any, down: Any, model: Any = None) -> str:
    """The canvas the picture and the padding make, on the chosen model (its multiple and size range)."""
    if picture is None or not hasattr(picture, "size"):
        return "Drop a picture to extend."
    try:
        source = resolve_model(model) if model else None
    except StudioError:
        source = None
    multiple = source.size_rule.multiple if source is not None else 8
    pads = [int(v or 0) for v in (left, right, up, down)]
    width, height = outpaint.canvas_size(picture.size, outpaint.placement(picture.size, pads, multiple))
    note = f"Canvas {width}x{height} (the picture is {picture.width}x{picture.height})"
    if source is not None and max(width, height) > source.size_range[1]:
        note += f": over {source.name}'s {source.size_range[1]} pixels a side, Generate will refuse it"
    return note + "."


def pad_to_aspect(picture: Any, ratio: str) -> list[Any]:
    """The four sides' pixels that bring the picture to the aspect ratio chosen."""
    if picture is None or not hasattr(picture, "size"):
        raise gr.Error("Drop a picture first: the padding depends on its size.", print_exception=False)
    return list(outpaint.for_aspect(picture.size, ratio))


def build(form: Any) -> OutpaintView:
    """The Outpaint tab's contents, built in the current layout (inside its gr.Tab), with its own events."""
    gr.Markdown(HINT, elem_id="outpaint-hint")
    picture = form.widget("outpaint_image")
    with gr.Row():
        sides = [form.widget(f"outpaint_{side}", info=None) for side in outpaint.SIDES]
    with gr.Row():
        aspect = gr.Dropdown(list(ASPECT_RATIOS), value="16:9", label="Aspect to reach", allow_custom_value=True,
                             info="W:H; the short way grows, half on each side", elem_id="outpaint-aspect", scale=2)
        to_aspect = gr.Button("Pad to aspect", elem_id="outpaint-to-aspect", scale=1, min_width=120)
    with gr.Row():
        form.widget("outpaint_fill")
        form.widget("outpaint_overlap")
    canvas = gr.Markdown(canvas_note(None, 0, 0, 0, 0), elem_id="outpaint-canvas")
    private = {"api_visibility": "private", "show_progress": "hidden"}
    to_aspect.click(reported(pad_to_aspect), inputs=[picture, aspect], outputs=sides, **private)
    model = form.components.get("model")
    inputs = [picture, *sides, *([model] if model is not None else [])]
    gr.on(triggers=[picture.change, *(side.change for side in sides)], fn=reported(canvas_note), inputs=inputs,
          outputs=canvas, trigger_mode="always_last", **private)
    return OutpaintView(picture, sides, aspect, to_aspect, canvas)
