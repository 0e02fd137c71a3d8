"""The README's field table, generated from the field table (`python3 -m studio.docs` prints it;
a test keeps the README in step)."""

from __future__ import annotations

from .fields import FROM_MODEL, TABLE, Field, FieldTable
from .tasks import TASK_NAMES


def _allowed(f: Field) -> str:
    if f.model_range:
        return "a multiple of 8 in the model's size range"
    if f.range is not None:
        low, high = f.range
        text = f"{low:g}..{high:g}" if f.kind == "float" else f"{int(low)}..{int(high)}"
        return text + f.range_note
    if f.choices is not None:
        return ", ".join(f"`{c}`" for c in f.choice_list())
    return {"text": "text", "bool": "true / false", "image": "an image", "model": "a preset, hub id, folder or "
            ".safetensors file", "loras": "[name, weight] pairs",
            "controlnets": "up to 3 units",
            "image_prompts": "up to 4 pictures"}.get(f.kind, f.kind)


def _default(f: Field) -> str:
    if f.default is FROM_MODEL:
        return "the model's"
    if f.default is None:
        return "from the images" if f.name == "task" else "none"
    return f"`{list(f.default) if isinstance(f.default, tuple) else f.default}`" if f.default != "" else '`""`'


# Settings the page gathers in a panel of its own (studio/ui/control_view.py), not one widget.
PANELS = {"controlnets": "the ControlNet panel", "image_prompts": "the Image prompts panel"}


def table_markdown(table: FieldTable = TABLE) -> str:
    """The README's field table (a test keeps the README in step with the table)."""
    lines = ["| field | type | default | allowed | tasks | families | infotext key | page |",
             "|---|---|---|---|---|---|---|---|"]
    for f in table:
        keys = ", ".join(spec.key or f"({spec.note})" for spec in f.infotext if spec.key or spec.note)
        tasks = "all" if set(f.tasks) == set(TASK_NAMES) else ", ".join(f.tasks)
        scope = " (per click)" if f.scope == "run" else ""
        page = f.label if f.widget and f.widget != "task" else ("the open tab" if f.widget == "task" else
                                                                PANELS.get(f.kind, "API only"))
        families = "all" if f.families is None else ", ".join(f.families)
        lines.append(f"| `{f.name}` | {f.kind}{scope} | {_default(f)} | {_allowed(f)} | {tasks} | {families} | {keys} "
                     f"| {page} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table_markdown())
