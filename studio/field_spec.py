"""The kinds of thing the field table declares: a `Field` (a generation setting), how it is written
to and read from A1111's infotext (`Infotext`) and named in A1111's API (`A1111`), the checks per
kind, and the `FieldTable` with the views each door needs. The table itself is studio/fields.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import loras, validation
from .control import image_prompts
from .control import units as control_units
from .models import ModelSource
from .tasks import TASK_NAMES


class _FromModel:
    """The default of a setting that comes from the requested model's preset (steps, size...)."""

    def __repr__(self) -> str:
        return "FROM_MODEL"


FROM_MODEL = _FromModel()
MISSING = object()  # an infotext does not say


@dataclass(frozen=True)
class Context:
    """What a field's check may depend on: the model the request names."""

    source: ModelSource


@dataclass(frozen=True)
class Infotext:
    """How a field appears on A1111's parameter line (`Key: value, ...`)."""

    key: str | None  # None: never written (the value is read back from other keys)
    position: int = 500  # A1111's order on the line
    when: Callable[[Any], bool] = lambda request: True
    format: Callable[[Any], object] = str
    parse: Callable[[str], Any] = str
    write: Callable[[Any, int], object] | None = None  # custom: (request, image index) -> value or None
    read: Callable[[Mapping[str, str]], Any] | None = None  # custom: params -> value or MISSING
    note: str = ""  # for a key that is never written: where the value comes from (the README says)


@dataclass(frozen=True)
class A1111:
    """The field in A1111's `/sdapi/v1` requests (studio/web/sdapi/translate.py reads these): its key
    (dotted inside an object), the tasks it means this field in (img2img's route with a mask is
    inpaint), the key that must be set for it to count (`enable_hr` for the hires pass's), and whether
    A1111's value has another shape (an index, a flag, a list: translate converts it). key None: A1111's
    API has no such field; `note` says how a caller gets it instead."""

    key: str | None
    tasks: tuple[str, ...] = TASK_NAMES
    when: str | None = None
    converted: bool = False
    note: str = ""

    @property
    def direct(self) -> bool:
        """Taken as it is, whenever the request has it for the task."""
        return self.key is not None and not self.converted


def number_text(value: float) -> str:
    """A1111's look (7, 0.75) where that is exact; otherwise every digit, so the text reads back
    into the very same number."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text, int, float, bool, choice, names, image, model, loras, controlnets, image_prompts
    default: Any  # FROM_MODEL: the requested model's preset default
    label: str
    help: str = ""
    range: tuple[float, float] | None = None  # int / float: inclusive bounds
    range_note: str = ""  # e.g. " (-1 = random)"
    model_range: bool = False  # the bounds are the model's size range (width, height)
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    tasks: tuple[str, ...] = TASK_NAMES  # the tasks it changes anything in
    families: tuple[str, ...] | None = None  # None: every family
    infotext: tuple[Infotext, ...] = ()
    widget: str | None = None  # the page's control (see studio/web/widgets.py); None: not on the page
    step: float | None = None  # slider step
    page: Mapping[str, Any] = field(default_factory=dict)  # extra widget arguments (lines, placeholder...)
    scope: str = "request"  # "request": a GenerationRequest field; "run": per click (batch count)
    record: bool = True  # stored in the PNG's request JSON and restored from it
    api: bool = True  # a parameter of the /generate API
    check: Callable[["Field", Any, Context], Any] | None = None  # replaces the kind's check
    a1111: A1111 | None = None  # how A1111's API names it (every field says, a test checks)

    def choice_list(self) -> list[str]:
        choices = self.choices() if callable(self.choices) else self.choices
        return list(choices or ())

    def validate(self, value: Any, context: Context) -> Any:
        """The value normalised, or an InvalidValue naming this field."""
        if self.check is not None:
            return self.check(self, value, context)
        return KIND_CHECKS[self.kind](self, value, context)

    def infotext_pairs(self, request: Any, index: int) -> Iterator[tuple[int, str, object]]:
        """(position, key, value) for each key this field writes for image `index` of a batch."""
        for spec in self.infotext:
            if spec.key is None:
                continue
            if spec.write is not None:
                value = spec.write(request, index)
            else:
                value = spec.format(getattr(request, self.name)) if spec.when(request) else None
            if value is not None and value != "":
                yield spec.position, spec.key, value

    def from_infotext(self, params: Mapping[str, str]) -> Any:
        """The value an infotext gives this field, or MISSING. Raises ValueError for a bad value."""
        for spec in self.infotext:
            if spec.read is not None:
                value = spec.read(params)
            elif spec.key is not None and spec.key in params:
                value = spec.parse(params[spec.key])
            else:
                continue
            if value is not MISSING:
                return value
        return MISSING


# -- checks per kind ------------------------------------------------------------------------------

def _check_int(f: Field, value: Any, context: Context) -> int:
    low, high = f.range
    return validation.int_in_range(f.name, value, int(low), int(high), f.range_note)


def _check_float(f: Field, value: Any, context: Context) -> float:
    return validation.float_in_range(f.name, value, *f.range, f.range_note)


KIND_CHECKS: dict[str, Callable[[Field, Any, Context], Any]] = {
    "text": lambda f, v, c: validation.text(f.name, v),
    "int": _check_int,
    "float": _check_float,
    "bool": lambda f, v, c: validation.boolean(f.name, v),
    "choice": lambda f, v, c: validation.choice(f.name, v, f.choice_list()),
    "names": lambda f, v, c: validation.names(f.name, v, f.choice_list()),
    "image": lambda f, v, c: validation.image(f.name, v),
    "loras": lambda f, v, c: loras.parse_refs(v),
    "controlnets": lambda f, v, c: control_units.parse_units(v),
    "image_prompts": lambda f, v, c: image_prompts.parse_prompts(v),
    "model": lambda f, v, c: c.source.name if c.source.preset else str(v).strip(),
}


class FieldTable:
    """The fields by name, and the views each door needs."""

    def __init__(self, fields: Sequence[Field]):
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        if len(self.by_name) != len(self.fields):
            raise ValueError("two fields share a name")
        # The views each door needs, worked out once (the infotext writer reads them for every image).
        self.request = tuple(f for f in self.fields if f.scope == "request")  # GenerationRequest's, in order
        self.api = tuple(f for f in self.fields if f.api)
        self.page = tuple(f for f in self.fields if f.widget)
        # What PNG Info and History put back in the form (input images stay out of PNGs).
        self.restorable = tuple(f for f in self.fields if f.record or f.scope == "run")
        # The settings a model recommends (its preset's steps, CFG, size, sampler...).
        self.from_model = tuple(f for f in self.fields if f.default is FROM_MODEL)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __getitem__(self, name: str) -> Field:
        return self.by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def with_fields(self, *extra: Field) -> "FieldTable":
        return FieldTable(self.fields + extra)

    def model_defaults(self, source: ModelSource) -> dict[str, Any]:
        """The settings a model recommends, by field name: its preset's, for the fields that take them."""
        preset = vars(source.defaults)
        return {f.name: preset[f.name] for f in self.from_model}

    def defaults_for(self, source: ModelSource) -> dict[str, Any]:
        """Every field's default for a model: preset values where the field takes them."""
        recommended = self.model_defaults(source)
        return {f.name: recommended.get(f.name, f.default) for f in self.fields}
