"""studio/request_fields.py, the request's fields typed for type checkers, is what the field table
renders now (studio/request_types.py), and each annotation holds what a constructed request holds."""

from __future__ import annotations

import importlib
import types
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from support import ROOT, dummy_table
from studio import GenerationRequest
from studio.fields import TABLE
from studio.request_fields import RequestFields
from studio.request_types import KIND_TYPES, fields_source, field_type

GENERATED = ROOT / "studio" / "request_fields.py"


def test_the_checked_in_file_is_what_the_table_renders():
    assert GENERATED.read_text(encoding="utf-8") == fields_source(TABLE), \
        "studio/request_fields.py is out of date: python3 -m studio.docs --write"


def test_it_says_it_is_generated_and_keeps_to_the_line_length():
    text = fields_source(TABLE)
    assert "python3 -m studio.docs --write" in text and "do not edit by hand" in text
    assert all(len(line) <= 120 for line in text.splitlines())
    compile(text, str(GENERATED), "exec")


def test_every_request_field_is_annotated_in_the_tables_order():
    assert list(RequestFields.__annotations__) == [f.name for f in TABLE.request]
    assert "batch_count" not in RequestFields.__annotations__  # per click, not the request's


def hints() -> dict[str, typing.Any]:
    """The annotations evaluated, with the names the generated file imports when type checking."""
    namespace: dict[str, typing.Any] = {}
    for f in TABLE.request:
        for name, module in field_type(f)[1].items():
            namespace[name] = getattr(importlib.import_module(module), name)
    return typing.get_type_hints(RequestFields, globalns=namespace)


def holds(value: typing.Any, hint: typing.Any) -> bool:
    """Whether `value` is of type `hint` (the forms the generated annotations use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(holds(value, arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(holds(item, args[0]) for item in value)
        return len(value) == len(args) and all(holds(item, arg) for item, arg in zip(value, args))
    if hint is type(None):
        return value is None
    if hint in (int, float):  # as type checkers read them: an int is a float too; a bool is neither
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    return isinstance(value, hint)


def requests() -> list[typing.Any]:
    """Requests that between them give every field a value that is not empty (images, lists)."""
    picture = Image.new("RGB", (64, 64), (200, 30, 30))
    base = dict(model="tiny", prompt="x", steps=2)
    return [
        GenerationRequest(**base),
        GenerationRequest(**base, styles=["anime"], loras=[("a-lora", 0.5), "other"], hires=True,
                          controlnets=[{"model": "some/controlnet", "module": "none", "image": picture}],
                          image_prompts=[{"model": "ip-adapter_sd15", "image": picture}]),
        GenerationRequest(**base, init_image=picture, mask=Image.new("L", (64, 64), 255)),
        GenerationRequest(**{**base, "model": "tiny-klein"}, references=[{"image": picture}]),
        GenerationRequest(**base, upscale_image=picture, upscaler="Nearest"),
        GenerationRequest(**base, outpaint_image=picture, outpaint_right=8),
    ]


def test_each_annotation_holds_what_a_constructed_request_holds():
    typed = hints()
    made = requests()
    for request in made:
        for f in TABLE.request:
            value = getattr(request, f.name)
            assert holds(value, typed[f.name]), f"{f.name} ({f.kind}): {value!r} is no {typed[f.name]}"
    # Every field, so every kind, was seen with a real value: a picture, a list that is not empty.
    empty = [f.name for f in TABLE.request if all(getattr(r, f.name) in (None, ()) for r in made)]
    assert empty == []
    assert {f.kind for f in TABLE.request} <= set(KIND_TYPES) | {"records"}


def test_the_fields_filled_in_are_never_none():
    typed = hints()
    assert typed["task"] is str  # from the images when left out
    assert typed["seed"] is int
    for f in TABLE.from_model:  # the model's preset fills them in
        assert type(None) not in typing.get_args(typed[f.name]), f.name
    assert typed["init_image"] == Image.Image | None and typed["mask"] == Image.Image | None


def test_a_list_of_records_is_typed_by_its_items_class():
    from studio.control.units import ControlUnit

    field = SimpleNamespace(name="units", kind="records", default=(), label="Units",
                            items=SimpleNamespace(cls=ControlUnit))
    assert field_type(field) == ("tuple[ControlUnit, ...]", {"ControlUnit": "studio.control.units"})
    text = fields_source(SimpleNamespace(request=(field,)))
    assert "    from .control.units import ControlUnit" in text
    assert "    units: tuple[ControlUnit, ...]  # Units" in text


def test_an_added_field_is_typed_and_an_unknown_kind_is_refused():
    assert "    dummy_strength: float  # Dummy strength\n" in fields_source(dummy_table())
    with pytest.raises(ValueError, match="KIND_TYPES"):
        field_type(SimpleNamespace(name="odd", kind="odd", default=None, label="Odd", items=None))


def test_the_generated_file_imports_nothing_at_run_time():
    import ast

    tree = ast.parse(Path(GENERATED).read_text(encoding="utf-8"))
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(node) for node in top] == ["from __future__ import annotations",
                                                   "from typing import TYPE_CHECKING"]
