"""The errors the studio raises on purpose. Each one carries a message written for the artist."""

from __future__ import annotations


class StudioError(Exception):
    """Base class: any error whose message is safe and useful to show in the page."""


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
