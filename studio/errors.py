"""The errors the studio raises on purpose. Each one carries a message written for the artist.

They cross processes (a Ray replica's error reaches the page and the A1111 API as the local engine
raises it), so each pickles with its message and its fields, whatever its `__init__` takes:

>>> import pickle
>>> again = pickle.loads(pickle.dumps(UnknownName("lora", "nosuch", ["a", "b"])))
>>> type(again).__name__, again.field, again.choices, str(again)
('UnknownName', 'lora', ('a', 'b'), "lora: 'nosuch' is not valid; allowed: one of a, b")
"""

from __future__ import annotations

import pickle
from typing import Any


class StudioError(Exception):
    """Base class: any error whose message is safe and useful to show in the page."""

    def __reduce__(self) -> tuple:
        # Exception's own pickling calls `cls(*self.args)`: InvalidValue(message) fails to unpickle
        # (Ray shows "Failed to deserialize exception"). Rebuild from args and fields instead.
        return _rebuild, (type(self), self.args, {k: _portable(v) for k, v in vars(self).items()})


def _portable(value: Any) -> Any:
    """`value` if it pickles, else its repr (an error's field must never make the error unpicklable)."""
    try:
        pickle.dumps(value)
    except Exception:
        return repr(value)
    return value


def _rebuild(cls: type, args: tuple, fields: dict) -> StudioError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    vars(error).update(fields)
    return error


class InvalidValue(StudioError, ValueError):
    """A request field (or flag, or preset value) is out of range or of the wrong kind."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}: {shown} is not valid; allowed: {allowed}")


class UnknownName(InvalidValue):
    """A name (sampler, schedule, model preset) that is not in its registry."""

    def __init__(self, field: str, value: object, choices: list[str] | tuple[str, ...]):
        self.choices = tuple(choices)
        super().__init__(field, value, "one of " + ", ".join(self.choices))


class ModelLoadError(StudioError):
    """A model could not be loaded; the message says why and what to do instead."""


class ModelUnavailable(ModelLoadError):
    """The model is not on this machine and the Hugging Face Hub cannot be reached."""


class PickleRefused(ModelLoadError):
    """A pickle checkpoint (.ckpt/.pt/.bin) was asked for without opting in: such files can run code."""
