"""The page's Edit tab: an instruction in the prompt, up to four reference pictures, the output size.

Each reference slot is the Reference record's picture widget (studio/references.py); the first picture
sets the output size unless "Output size" says the width and height stand. A picture comes from a file,
the clipboard, the result shown ("→ Edit") or a history image ("→ Edit" in History): each lands in the
first empty slot (the last slot once all are full). A model that does not edit, or more pictures than
the model reads, is refused by name at Generate (the request's rules), before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from ..families import FAMILIES
from ..references import MAX_REFERENCES, REFERENCE
from .calls import reported
from .widgets import part_widget

EDITORS = ", ".join(f"{fam.title} (up to {fam.references})" for fam in FAMILIES.values() if fam.references)
HINT = (f"Say what to change in the prompt: *make it night*, *put the cat from picture 2 on the sofa of picture 1*. "
        f"Models that edit: {EDITORS}.")


@dataclass
class EditView:
    pictures: list[Any]  # one gr.Image per reference slot

    def inputs(self) -> list[Any]:
        return list(self.pictures)

    def settings(self, data: dict) -> dict[str, Any]:
        """The request's `references`: the slots with a picture, in order."""
        return {"references": [{"image": data[p]} for p in self.pictures if data.get(p) is not None]}

    def receive(self, source: Callable[..., Any]) -> Callable[..., list[Any]]:
        """A handler putting `source(*args)`'s picture in the first empty slot (the last when all are
        full); its inputs are the source's, then every slot."""
        def put(*values: Any) -> list[Any]:
            args, slots = values[:len(values) - len(self.pictures)], values[len(values) - len(self.pictures):]
            picture = source(*args)
            empty = [i for i, value in enumerate(slots) if value is None]
            target = empty[0] if empty else len(slots) - 1
            return [picture if i == target else gr.skip() for i in range(len(slots))]

        return put


def build(form: Any) -> EditView:
    """The Edit tab's contents, built in the current layout (inside its gr.Tab)."""
    gr.Markdown(HINT, elem_id="edit-hint")
    field = REFERENCE.fields.by_name["image"]
    pictures = []
    with gr.Row(elem_id="reference-row"):
        for i in range(MAX_REFERENCES):
            pictures.append(part_widget(field, f"reference-{i}", label=f"Picture {i + 1}", height=180,
                                        min_width=120))
    form.widget("size_from")
    return EditView(pictures)


def history_picture(pick: str | None) -> str:
    """The History image clicked last (its path), for "→ Edit" in History."""
    if not pick:
        raise gr.Error("Click a History image first.", print_exception=False)
    return pick


def wire_sends(view: EditView, sends: list[tuple[Any, Callable[..., Any], list[Any]]], tabs: Any, task: Any,
               landed_js: str, private: dict) -> None:
    """Each (button, source, its inputs): the source's picture into a slot, then the Edit tab shown."""
    for button, source, inputs in sends:
        button.click(reported(view.receive(source)), inputs=[*inputs, *view.pictures], outputs=view.pictures,
                     **private).success(lambda: (gr.Tabs(selected="edit"), "edit"), outputs=[tabs, task], **private
                                        ).success(None, js=landed_js, **private)
