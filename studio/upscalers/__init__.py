"""Upscalers: the built-in ones (latent and pixel filters) and model upscalers from a folder
(ESRGAN / Real-ESRGAN / 4x-UltraSharp / SwinIR / DAT / HAT-class files read by spandrel).

One registry for every place an upscaler is named: hires fix, the Upscale tab, A1111's Extras and
`/sdapi/v1/upscalers`. A built-in is declared once here; a model upscaler is a file of the upscalers
folder (`--upscalers-dir`, A1111's models/ESRGAN), named by its file name or by A1111's name for it
(`R-ESRGAN 4x+` is `RealESRGAN_x4plus`). Nothing here imports torch: a request checks names with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValue


@dataclass(frozen=True)
class Upscaler:
    """A built-in upscaler: `space` latent (resizes the latents: hires fix only) or image."""

    name: str
    space: str  # "latent" | "image"
    mode: str  # torch interpolate mode for latents, PIL filter name for images


BUILTIN: dict[str, Upscaler] = {u.name: u for u in (
    Upscaler("Latent", "latent", "bilinear"),
    Upscaler("Latent (bicubic)", "latent", "bicubic"),
    Upscaler("Latent (nearest-exact)", "latent", "nearest-exact"),
    Upscaler("Lanczos", "image", "LANCZOS"),
    Upscaler("Nearest", "image", "NEAREST"),
)}
PIXEL_FILTERS = tuple(name for name, u in BUILTIN.items() if u.space == "image")
MAX_NAME_CHARS = 200
# A model upscaler is named by its file's name: never a path (the folder is the only place it comes from).
_NAME = re.compile(r"[^/\\\x00-\x1f]+")
MODEL_NAME = "a model upscaler's name (a file of the upscalers folder, or A1111's name for one)"


def builtin(name: str) -> Upscaler | None:
    """The built-in upscaler of this name (any case), or None: a model upscaler's name."""
    return BUILTIN.get(name) or next((u for key, u in BUILTIN.items() if key.casefold() == name.casefold()), None)


def check_name(field: str, value: Any, pictures: bool = False, none: bool = False) -> str:
    """An upscaler as a request may name it: a built-in (its own spelling; `pictures`: pixel filters
    only, the latent ones are hires fix's; `none`: "None" too) or a model upscaler's name, checked
    against the folder where the studio's folders are known (folder.find)."""
    allowed = (("None",) if none else ()) + (PIXEL_FILTERS if pictures else tuple(BUILTIN))
    choices = f"{', '.join(allowed)} or {MODEL_NAME}"
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, value, choices)
    name = value.strip()
    if none and name.casefold() == "none":
        return "None"
    found = builtin(name)
    if found is not None and found.name in allowed:
        return found.name
    if found is not None or len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidValue(field, name[:80], choices)
    return name


def is_model(name: str) -> bool:
    """Whether this (checked) upscaler name is a model upscaler's."""
    return builtin(name) is None


def __getattr__(name: str) -> Any:
    """`face_fields` (the Restore faces fields) on first use: it reads the field spec, which reads the tasks,
    which import this package (studio/fields.py reads it once they are all loaded)."""
    if name == "face_fields":
        import importlib
        return importlib.import_module(f"{__name__}.face_fields")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
