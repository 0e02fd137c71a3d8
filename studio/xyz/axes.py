"""The axes of an X/Y/Z plot, derived from the field table: every setting that takes a number, a choice,
a yes/no or a model is an axis without more code, named as A1111's X/Y/Z plot names it where A1111 has
it ("Steps", "CFG Scale", "Checkpoint name", ...), else by its label. Besides them: "Nothing", "Prompt
S/R" (search and replace in the prompts: also how a LoRA's weight is varied) and "Size" (WxH).

An axis parses its values as A1111 does (studio/xyz/values.py) and checks each with its field's own check,
before anything runs; a refusal names the axis's parameter (`x_values`), the axis and the value.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from .. import naming
from ..errors import InvalidValue, StudioError
from ..field_spec import Context, FieldTable
from . import values as parse

NOTHING, PROMPT_SR, SIZE = "Nothing", "Prompt S/R", "Size"
# A1111's axis label -> the field it sets here (the first that exists: a variation seed, where the table has
# one). Its other axes (Sigma churn, Eta, VAE, ...) have no setting here: studio/xyz/a1111.py refuses them.
A1111_LABELS: dict[str, tuple[str, ...]] = {
    "Seed": ("seed",), "Var. seed": ("subseed", "variation_seed"),
    "Var. strength": ("subseed_strength", "variation_strength"), "Steps": ("steps",),
    "Hires steps": ("hires_steps",), "CFG Scale": ("cfg_scale",), "Sampler": ("sampler",),
    "Checkpoint name": ("model",), "Schedule type": ("schedule",), "Clip skip": ("clip_skip",),
    "Denoising": ("denoising_strength",), "Hires upscaler": ("hires_upscaler",), "Face restore": ("restore_faces",),
    "RNG source": ("rng",),
}
AXIS_KINDS = ("int", "float", "choice", "bool", "model")  # the field kinds that make an axis
BARE = ("choice", "model", "prompt")  # legends of these show the value alone (A1111's "Euler a", not "Sampler: ...")
SEED_FIELDS = ("seed", "subseed", "variation_seed")  # -1 on these axes is drawn once, before anything runs
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Axis:
    """One kind of axis: the settings it sets and how its values read."""

    name: str
    kind: str  # a field kind (AXIS_KINDS), or "nothing", "prompt", "size"
    fields: tuple[str, ...] = ()  # the settings each value sets
    cost: float = 0.0  # A1111's: the costliest axis to change (a model load) runs outermost

    def label(self, value: Any) -> str:
        """The grid's legend for a value (A1111's format_value_add_label, or the bare value)."""
        if self.kind == "nothing":
            return ""
        if self.kind == "size":
            return f"{self.name}: {value[0]}x{value[1]}"
        text = f"{round(value, 8):g}" if isinstance(value, float) else str(value)
        return text if self.kind in BARE else f"{self.name}: {text}"

    def apply(self, settings: dict[str, Any], value: Any, values: tuple[Any, ...]) -> None:
        """A cell's settings: this axis's value put in (Prompt S/R replaces its first value by this one)."""
        if self.kind == "prompt":
            for name in ("prompt", "negative_prompt"):
                settings[name] = (settings.get(name) or "").replace(values[0], value)
        elif self.kind == "size":
            settings["width"], settings["height"] = value
        else:
            settings.update({name: value for name in self.fields})


def _short(label: str) -> str:
    """A field's label as an axis name: "Hires fix: generate, ..." -> "Hires fix"."""
    return label.split(":")[0].strip()


@functools.lru_cache(maxsize=4)
def axes(table: FieldTable) -> dict[str, Axis]:
    """Every axis of a field table by name, in the table's order after Nothing and Prompt S/R."""
    a1111 = {name: label for label, names in A1111_LABELS.items() for name in names if name in table}
    found = [f for f in table if f.scope == "request" and f.kind in AXIS_KINDS and f.widget not in (None, "task")
             and f.record]
    labels = [a1111.get(f.name, _short(f.label)) for f in found]
    made = [Axis(NOTHING, "nothing"), Axis(PROMPT_SR, "prompt")]
    for f, label in zip(found, labels):
        if labels.count(label) > 1:  # "Upscaler" of SD upscale and of Upscale: told apart by their names
            label = f"{label} ({f.name})"
        made.append(Axis(label, f.kind, (f.name,), cost=1.0 if f.kind == "model" else 0.0))
        if f.name == "height" and "width" in table:
            made.append(Axis(SIZE, "size", ("width", "height")))
    return {axis.name: axis for axis in made}


def find(name: Any, parameter: str, table: FieldTable) -> Axis:
    """An axis by its name (case and spacing ignored) or by the name of the field it sets."""
    known = axes(table)
    by_field = {axis.fields[0]: axis.name for axis in known.values() if len(axis.fields) == 1}
    found = naming.find(name, list(known)) or by_field.get(name if isinstance(name, str) else "")
    if found is None:
        raise InvalidValue(parameter, name, "an axis: " + ", ".join(known))
    return known[found]


def describe(axis: Axis, table: FieldTable) -> str:
    """What an axis's values may be, in a line (the page shows it under the values)."""
    if axis.kind in ("nothing", "prompt", "size", "model"):
        return {"nothing": "no axis", "prompt": "the first value is searched in the prompts; each value replaces it",
                "size": "WIDTHxHEIGHT, e.g. 512x768, 768x512", "model": "model names, as the Model box takes them"}[axis.kind]
    field = table[axis.fields[0]]
    if axis.kind == "bool":
        return "true, false"
    if axis.kind == "choice":
        choices = field.choice_list()
        return "one or more of: " + ", ".join(choices[:16]) + (", ..." if len(choices) > 16 else "")
    shown = (lambda v: str(int(v))) if axis.kind == "int" else (lambda v: f"{v:g}")
    where = f" from {shown(field.range[0])} to {shown(field.range[1])}" if field.range else \
        " in the model's size range" if field.model_range else ""
    return f"{'integers' if axis.kind == 'int' else 'numbers'}{where}{field.range_note}; ranges: 1-5, 10-30 (+5), 1-3 [5]"


# -- values, checked by the field's own check ---------------------------------------------------

def read(axis: Axis, text: Any, letter: str, table: FieldTable, context: Context,
         check_model: Callable[[str], Any] | None = None) -> tuple[Any, ...]:
    """An axis's values from its text (A1111's syntax), each checked; a bad one refused by name.
    `check_model`: a shared studio's path rule for a model's name, before the name touches the disk."""
    parameter = f"{letter}_values"
    if axis.kind == "nothing":
        return (None,)
    if not isinstance(text, str):
        raise InvalidValue(parameter, text, f"comma-separated values for the {letter.upper()} axis ({axis.name})")
    try:
        given = [v for v in parse.split(text)] if axis.kind == "prompt" else [v for v in parse.split(text) if v]
        if axis.kind == "int":
            given = parse.expand_ints(given)
        elif axis.kind == "float":
            given = parse.expand_floats(given)
    except ValueError as exc:
        raise InvalidValue(parameter, text, f"A1111's values for {axis.name} ({exc})") from None
    if not given:
        raise InvalidValue(parameter, text, f"at least one value for the {letter.upper()} axis ({axis.name})")
    checked = []
    for value in given:
        try:
            checked.append(CHECKS[axis.kind](axis, value, table, context, check_model))
        except StudioError as exc:
            allowed = getattr(exc, "allowed", str(exc))
            raise InvalidValue(parameter, value, f"{allowed} (the {letter.upper()} axis, {axis.name})") from None
    return tuple(checked)


def _number(kind: type) -> Callable[..., Any]:
    def check(axis: Axis, value: Any, table: FieldTable, context: Context, roots: Any) -> Any:
        field = table[axis.fields[0]]
        if isinstance(value, str):
            try:
                value = kind(value)
            except ValueError:
                raise InvalidValue(field.name, value, f"{'an integer' if kind is int else 'a number'}") from None
        return field.validate(value, context)
    return check


def _choice(axis: Axis, value: Any, table: FieldTable, context: Context, roots: Any) -> Any:
    field = table[axis.fields[0]]
    return naming.find(value, field.choice_list()) or field.validate(value, context)


def _boolean(axis: Axis, value: Any, table: FieldTable, context: Context, roots: Any) -> bool:
    word = str(value).strip().lower()
    if word in TRUE or word in ("codeformer", "gfpgan"):  # A1111's Face restore names a model: it means on
        return True
    if word in FALSE:
        return False
    raise InvalidValue(axis.fields[0], value, "true or false")


def _model(axis: Axis, value: Any, table: FieldTable, context: Context, check_model: Any) -> str:
    from ..models import resolve_model

    if check_model is not None:
        check_model(value)
    resolve_model(value)  # refused now, with the models there are, if it names none
    return value


def _size(axis: Axis, value: Any, table: FieldTable, context: Context, roots: Any) -> tuple[int, int]:
    width, sep, height = str(value).lower().partition("x")
    try:
        sides = (int(width), int(height if sep else width))
    except ValueError:
        raise InvalidValue("size", value, "WIDTHxHEIGHT, e.g. 512x768") from None
    return tuple(table[name].validate(side, context) for name, side in zip(("width", "height"), sides))  # type: ignore


CHECKS: dict[str, Callable[..., Any]] = {
    "int": _number(int), "float": _number(float), "choice": _choice, "bool": _boolean, "model": _model,
    "size": _size, "prompt": lambda axis, value, table, context, roots: value,
}
