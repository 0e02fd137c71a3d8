"""The kinds of thing the field table declares: a `Field` (a generation setting), how it is written
to and read from A1111's infotext (`Infotext`) and named in A1111's API (`A1111`), the checks per
kind, the `FieldTable` with the views each door needs, and the `Record` of a list-valued field (a
ControlNet unit, an image prompt), whose own fields are declared with `part` on its typed class.
The table itself is studio/fields.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import loras, validation
from .errors import InvalidValue
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
    kind: str  # text, int, float, bool, choice, names, image, model, loras, records (a list of `items`)
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
    items: "Record | None" = None  # kind records: what each item is

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
    "records": lambda f, v, c: f.items.parse_all(f.name, v, c),
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


# -- records: the items of a list-valued field ------------------------------------------------------

def part(kind: str, default: Any, label: str, **spec: Any) -> Any:
    """A field of a record, declared on the record's typed class as InvokeAI declares an invocation's
    inputs: the attribute's default here, the rest of its `Field` (checks, infotext key, A1111 name,
    widget) in the dataclass field's metadata. `Record` reads them back as a `FieldTable`."""
    return dataclasses.field(default=default, metadata={"part": (kind, label, spec)})


def record_fields(cls: type) -> FieldTable:
    """The fields a record class declares with `part`, in its attribute order."""
    return FieldTable(tuple(Field(f.name, f.metadata["part"][0], f.default, f.metadata["part"][1],
                                  **f.metadata["part"][2]) for f in dataclasses.fields(cls)))


def _no_rules(item: Any, where: str, context: Context) -> Any:
    return item


@dataclass(frozen=True)
class Record:
    """What each item of a list-valued field is (a ControlNet unit, an image prompt): a frozen, typed
    class whose attributes are `part`s. From its fields: the check of an item (every field by its kind,
    named `field[i].part`), the infotext line it writes (`Key: value, ...` in its keys' positions) and
    reads back, A1111's names for it, the page's controls and the reference's table. `finish` adds the
    rules between its fields."""

    cls: type
    max_items: int
    noun: str  # one item, in messages: "ControlNet unit"
    finish: Callable[[Any, str, Context], Any] = _no_rules  # (item, "field[i]", context) -> item
    plural: str = ""  # "": the noun and an s
    fields: FieldTable = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", record_fields(self.cls))

    @property
    def one(self) -> str:
        """The noun with its article, for messages: "a ControlNet unit", "an image prompt"."""
        return ("an " if self.noun[0] in "aeiou" else "a ") + self.noun

    def shape(self) -> str:
        return "{" + ", ".join(f.name for f in self.fields) + "}"

    def parse(self, value: Any, where: str, context: Context) -> Any:
        """One item from an instance or a mapping (the API's, a PNG's record); None is a field's default."""
        if isinstance(value, self.cls):
            value = {f.name: getattr(value, f.name) for f in self.fields}
        if not isinstance(value, Mapping):
            raise InvalidValue(where, type(value).__name__, f"{self.one}: {self.shape()}")
        unknown = sorted(set(value) - set(self.fields.by_name))
        if unknown:
            raise InvalidValue(f"{where}.{unknown[0]}", value[unknown[0]], "one of " + ", ".join(self.fields.by_name))
        checked = {}
        for f in self.fields:
            given = value.get(f.name)
            try:
                checked[f.name] = f.validate(f.default if given is None else given, context)
            except InvalidValue as exc:
                raise InvalidValue(f"{where}.{exc.field}", exc.value, exc.allowed) from None
        return self.finish(self.cls(**checked), where, context)

    def parse_all(self, name: str, value: Any, context: Context) -> tuple[Any, ...]:
        return validation.items(name, value, self.max_items, self.plural or self.noun + "s",
                                lambda item, i: self.parse(item, f"{name}[{i}]", context))

    def record(self, item: Any) -> dict[str, Any]:
        """JSON-safe, pictures described (never stored, as the request's input images)."""
        return {f.name: describe_image(getattr(item, f.name)) if f.kind == "image" else getattr(item, f.name)
                for f in self.fields}

    def line(self, item: Any) -> str:
        """The item's infotext value: `Key: value, ...` in its keys' positions."""
        pairs = sorted(pair for f in self.fields for pair in f.infotext_pairs(item, 0))  # (position, key, value)
        return ", ".join(f"{key}: {value}" for _, key, value in pairs)

    def read_line(self, text: str) -> dict[str, Any]:
        """The fields an infotext value gives (the others are left to their defaults). Raises
        ValueError for a bad value."""
        pairs = {}
        for piece in text.split(", "):
            key, sep, value = piece.partition(": ")
            if sep:
                pairs[key.strip()] = value.strip()
        read = {f.name: f.from_infotext(pairs) for f in self.fields}
        return {name: value for name, value in read.items() if value is not MISSING}


def describe_image(picture: Any) -> dict[str, Any] | None:
    """An input picture as a PNG's request JSON records it: its size, never its pixels."""
    return None if picture is None else {"width": picture.width, "height": picture.height, "stored": False}
