"""Registry entries that name heavy code instead of importing it.

The registries (fields, families, samplers, tasks) import without torch, so a setting can be
declared, listed and checked quickly; what needs torch, diffusers or compel is named here as
"module:attr" and imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


def resolve(target: str) -> Any:
    """The object a "module:attr" string names, e.g. "studio.tiny:build_tiny_sd15"."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{target!r} is not a 'module:attr' name")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Lazy:
    """A function named "module:attr": its module is imported when it is first called."""

    target: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return resolve(self.target)(*args, **kwargs)
