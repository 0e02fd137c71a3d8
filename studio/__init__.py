"""studio: a browser-based image studio for text-to-image diffusion (engine + Gradio UI).

The names below load on first use (PEP 562), so that `studio.hosting` can run before anything
imports torch: on ZeroGPU, `spaces` must be imported first.
"""

from importlib import import_module
from typing import Any

from .version import __version__

_WHERE = {
    "StudioConfig": ".config", "Job": ".engine", "Studio": ".engine", "GenerationRequest": ".request",
    "FIELDS": ".fields", "TABLE": ".fields",
    "Status": ".events", "Progress": ".events", "Preview": ".events", "Result": ".events", "Cancelled": ".events",
    "StudioError": ".errors", "InvalidValue": ".errors", "UnknownName": ".errors", "ModelLoadError": ".errors",
    "ModelUnavailable": ".errors",
}

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'studio' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name], __name__), name)
