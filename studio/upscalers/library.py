"""spandrel, imported once: the library ComfyUI, Forge and InvokeAI use to read upscaler and face
restoration files (it detects the architecture and its sizes from the weights alone).

spandrel imports torchvision for two architectures only (LaMa, RestoreFormer). A CPU build of torch
often has no torchvision that loads beside it (PyPI's wheels are built for CUDA torch: "operator
torchvision::nms does not exist"), and a broken torchvision breaks diffusers' import too, so the
studio installs spandrel without it (requirements-upscale.txt). Then those two names are given to
spandrel's import as stand-ins that refuse to run, and taken out of `sys.modules` at once, so nothing
else ever sees a torchvision; the architectures that need it are refused by name (NEEDS_TORCHVISION).
"""

from __future__ import annotations

import enum
import importlib.util
import sys
import threading
import types
from typing import Any

from ..errors import StudioError

INSTALL = "pip install --no-deps -r requirements-upscale.txt"
NEEDS_TORCHVISION = frozenset({"LaMa", "RestoreFormer"})  # spandrel architecture ids

_lock = threading.Lock()


def _has_torchvision() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision")  # a CUDA wheel beside CPU torch raises RuntimeError here
    except Exception:
        return False
    return True


def _refuse(*_: Any, **__: Any) -> Any:
    raise StudioError("This model's architecture needs torchvision, which is not installed beside this torch.")


def _stand_ins() -> dict[str, types.ModuleType]:
    root, transforms, functional = (types.ModuleType(name) for name in
                                    ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
    functional.InterpolationMode = enum.Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC")  # type: ignore[attr-defined]
    functional.rotate = functional.normalize = _refuse  # type: ignore[attr-defined]
    root.transforms, transforms.functional = transforms, functional  # type: ignore[attr-defined]
    return {m.__name__: m for m in (root, transforms, functional)}


def spandrel() -> Any:
    """The spandrel module; a StudioError saying how to install it when it is missing."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if importlib.util.find_spec("spandrel") is None:
        raise StudioError(f"Model upscalers need spandrel: {INSTALL}")
    with _lock:
        if "spandrel" in sys.modules:
            return sys.modules["spandrel"]
        if _has_torchvision():
            import spandrel as module
            return module
        stand_ins = _stand_ins()
        sys.modules.update(stand_ins)
        try:
            import spandrel as module
        finally:
            for name in stand_ins:
                sys.modules.pop(name, None)
        return module


def available() -> bool:
    """Whether spandrel is installed (model upscalers can run)."""
    return "spandrel" in sys.modules or importlib.util.find_spec("spandrel") is not None


def runnable(arch_id: str) -> bool:
    """Whether this architecture runs here (LaMa and RestoreFormer need a working torchvision)."""
    return arch_id not in NEEDS_TORCHVISION or _has_torchvision()
