"""The page's Detailer panel (A1111's ADetailer): an accordion under the task tabs, shown for text to image
and image to image (the tasks it runs after). Every control is the field table's widget (studio/detail/
fields.py), so Generate, PNG Info and History's restore reach them by name with nothing else written; the
accordion's title says when the detailer is on and what it looks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..detail.targets import DETAIL_TASKS

TITLE = "Detailer (ADetailer)"
HINT = ("Finds each face, hand or person in the finished picture with an open-vocabulary detector (OWLv2) and "
        "repaints it by inpainting only that region, at the inpaint size. Image to image at denoising strength 0 "
        "runs the detailer alone on its picture.")


@dataclass
class DetailView:
    panel: Any  # the accordion
    switch: Any  # the detailer checkbox
    target: Any  # what it looks for


def title(on: bool, target: str) -> str:
    return f"{TITLE}: {target}s" if on else TITLE


def build(form: Any) -> DetailView:
    """The panel, built in the current layout (the settings column, under the task tabs)."""
    visible = (form.values.get("task") or "txt2img") in DETAIL_TASKS
    with gr.Accordion(title(form.values["detailer"], form.values["detailer_target"]), open=False, visible=visible,
                      elem_id="detailer-panel") as panel:
        gr.Markdown(HINT, elem_id="detailer-hint")
        switch = form.widget("detailer")
        with gr.Row():
            target = form.widget("detailer_target")
            form.widget("detailer_model", info=None)
        form.widget("detailer_prompt")
        form.widget("detailer_negative_prompt")
        for pair in (("confidence", "max"), ("strength", "padding"), ("dilate", "mask_blur"), ("width", "height")):
            with gr.Row():
                for name in pair:
                    form.widget(f"detailer_{name}")
    return DetailView(panel, switch, target)


def wire(view: DetailView, task: Any, private: dict) -> None:
    """The panel shows for the tasks the detailer runs after; its title says when it is on."""
    task.change(lambda t: gr.Accordion(visible=t in DETAIL_TASKS), inputs=task, outputs=view.panel, **private)
    gr.on(triggers=[view.switch.change, view.target.change],
          fn=lambda on, target: gr.Accordion(label=title(on, target)), inputs=[view.switch, view.target],
          outputs=view.panel, **private)
