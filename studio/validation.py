"""Checks that turn a value from any door (Python, the page, HTTP, a PNG) into a setting's value,
or raise an error naming the field, the value and what is allowed. Pure functions."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

from . import naming
from .errors import InvalidValue, UnknownName

MAX_PROMPT_CHARS = 10_000  # about 35 chunks of 75 tokens: far past any prompt, and bounded work
MAX_INPUT_PIXELS = 4096 * 4096  # an init image or mask larger than this is refused before any work
MAX_NAMES = 32  # e.g. styles in one request: more is no prompt anyone writes
_CONTROL = frozenset(chr(c) for c in [*range(32), 127]) - {"\t", "\n", "\r"}


def as_int(field: str, value: Any, allowed: str) -> int:
    """Accept ints and integral floats (Gradio sliders send 20.0); refuse bools, NaN, 20.5, '20'."""
    if isinstance(value, bool):
        raise InvalidValue(field, value, allowed)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise InvalidValue(field, value, allowed)


def as_float(field: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidValue(field, value, allowed)
    return float(value)


def _in_range(convert: Any, field: str, value: Any, low: float, high: float, allowed: str) -> Any:
    number = convert(field, value, allowed)
    if not low <= number <= high:
        raise InvalidValue(field, value, allowed)
    return number


def int_in_range(field: str, value: Any, low: int, high: int, extra: str = "") -> int:
    return _in_range(as_int, field, value, low, high, f"an integer from {low} to {high}{extra}")


def float_in_range(field: str, value: Any, low: float, high: float, extra: str = "") -> float:
    return _in_range(as_float, field, value, low, high, f"a number from {low:g} to {high:g}{extra}")


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(field, value, "true or false")
    return value


def choice(field: str, value: Any, choices: Sequence[str]) -> str:
    """The canonical spelling of one of `choices` (case and spacing ignored)."""
    found = naming.find(value, choices)
    if found is None:
        raise UnknownName(field, value, list(choices))
    return found


def names(field: str, value: Any, choices: Sequence[str], limit: int = MAX_NAMES) -> tuple[str, ...]:
    """A list of names from `choices`, in the order given (a style may be applied twice)."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise InvalidValue(field, value, "a list of names: " + ", ".join(choices))
    items = value
    if len(items) > limit:
        raise InvalidValue(field, f"<{len(items)} names>", f"at most {limit} names")
    return tuple(choice(field, item, choices) for item in items)


def text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidValue(field, value, "text")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidValue(field, f"<{len(value)} characters>", f"at most {MAX_PROMPT_CHARS} characters")
    bad = next((c for c in value if c in _CONTROL or "\ud800" <= c <= "\udfff"), None)
    if bad is not None:
        # They cannot be stored in a PNG text chunk (nor encoded as UTF-8, for a lone surrogate), and
        # no tokenizer gives them a meaning.
        raise InvalidValue(field, f"<text with control character U+{ord(bad):04X}>",
                           "text without control characters or lone surrogates (tab and newlines are fine)")
    return value


def image(field: str, value: Any) -> Any:
    """A PIL image of a sane size (checked on the header: nothing is decoded here)."""
    from PIL import Image

    if value is None:
        return None
    if not isinstance(value, Image.Image):
        raise InvalidValue(field, type(value).__name__, "a PIL image (the HTTP API takes an image file)")
    if value.width < 8 or value.height < 8 or value.width * value.height > MAX_INPUT_PIXELS:
        raise InvalidValue(field, f"{value.width}x{value.height}", f"8x8 to {MAX_INPUT_PIXELS} pixels")
    return value


def items(field: str, value: Any, limit: int, noun: str, parse: Callable[[Any, int], T]) -> tuple[T, ...]:
    """A list of up to `limit` things (a request's ControlNet units, its image prompts), each parsed
    with its place in the list, so that its messages name `field[i]`; None is none."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise InvalidValue(field, type(value).__name__, f"a list of up to {limit} {noun}")
    if len(value) > limit:
        raise InvalidValue(field, f"{len(value)} {noun}", f"at most {limit}")
    return tuple(parse(item, i) for i, item in enumerate(value))
