"""Model upscalers loaded: a file read into spandrel's descriptor (architecture and scale detected
from the weights), kept on the device for the next picture, a few at a time."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkpoints import PICKLE_SUFFIXES, file_hash
from ..errors import InvalidValue, StudioError
from .library import runnable, spandrel

FACE = "FaceSR"  # spandrel's purpose of a face restoration model (GFPGAN)
KEPT = 2  # loaded upscalers kept on the device (ESRGAN is 64 MB; transformer ones a few hundred)


@dataclass(frozen=True)
class UpscalerInfo:
    """What the studio tells of a model upscaler: its file, detected architecture, scale and hash."""

    name: str
    path: Path
    architecture: str
    scale: int
    purpose: str  # spandrel's: SR (upscale), FaceSR (face restoration), Restoration, ...
    digest: str  # A1111's short hash of the file (10 hex digits)


def read_state(path: Path, allow_pickle: bool) -> dict[str, Any]:
    """The file's tensors: safetensors always; a pickled file only where pickles are allowed, and then
    through torch's weights-only unpickler (no code runs)."""
    import torch
    from safetensors.torch import load_file

    if path.suffix.lower() == ".safetensors":
        return load_file(str(path))
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise InvalidValue("upscaler", path.name, "a .safetensors file (pickled files need --allow-pickle)")
        return torch.load(str(path), map_location="cpu", weights_only=True)
    raise InvalidValue("upscaler", path.name, "a .safetensors file, or .pth with --allow-pickle")


def describe(name: str, path: Path, allow_pickle: bool) -> tuple[UpscalerInfo, Any]:
    """The file read and detected: (its info, spandrel's model descriptor on the CPU)."""
    library = spandrel()
    try:
        state = read_state(path, allow_pickle)  # a pickle without --allow-pickle is refused by name here
    except InvalidValue:
        raise
    except Exception as exc:  # a damaged file: safetensors' and pickle's own errors
        raise StudioError(f"Upscaler {name}: its file could not be read ({type(exc).__name__})") from None
    try:
        model = library.ModelLoader("cpu").load_from_state_dict(library.canonicalize_state_dict(state))
    except library.UnsupportedModelError:
        raise StudioError(f"Upscaler {name}: spandrel does not know this file's architecture "
                          "(ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT, ... are known)") from None
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise StudioError(f"Upscaler {name}: its weights do not fit a known architecture ({type(exc).__name__})") from None
    arch = model.architecture.id
    if not runnable(arch):
        raise StudioError(f"Upscaler {name}: its architecture {arch} needs torchvision, which is not installed here")
    info = UpscalerInfo(name, path, arch, int(model.scale), str(model.purpose), file_hash(path))
    return info, model


def info(name: str, path: Path, allow_pickle: bool) -> UpscalerInfo | None:
    """A folder file's info (read once per file version), or None where it cannot be read or run."""
    stat = path.stat()
    return _info(name, str(path.resolve()), stat.st_size, stat.st_mtime_ns, allow_pickle)


@functools.lru_cache(maxsize=64)
def _info(name: str, path: str, size: int, mtime_ns: int, allow_pickle: bool) -> UpscalerInfo | None:
    try:
        return describe(name, Path(path), allow_pickle)[0]
    except StudioError:
        return None


def listed(folder: Path | None, allow_pickle: bool, purpose: str = "upscale") -> list[tuple[str, UpscalerInfo]]:
    """The folder's models that read and run here: (the name A1111 lists it by, its info); `purpose`
    "upscale": the upscalers (every purpose but face restoration), "face": the face restorers."""
    from .folder import a1111_name, folder_upscalers

    found = []
    for name, path in folder_upscalers(folder, allow_pickle).items():
        if "/" in name:  # a sub-folder's file is listed once, by its plain name
            continue
        read = info(name, path, allow_pickle)
        if read is not None and (read.purpose == FACE) == (purpose == "face"):
            found.append((a1111_name(name), read))
    return found


def face_restorers(folder: Path | None, allow_pickle: bool) -> list[str]:
    """The folder's face restoration models by name (each file read once), in the folder's name order."""
    return sorted((name for name, _ in listed(folder, allow_pickle, "face")), key=str.casefold)


def a1111_list(config: Any) -> list[str]:
    """The upscalers as GET /sdapi/v1/upscalers lists them, in order: None, the pixel filters, the folder's
    models (A1111's SD upscale script names one by its index here)."""
    from . import PIXEL_FILTERS

    return ["None", *PIXEL_FILTERS, *(name for name, _ in listed(config.upscalers_dir, config.allow_pickle))]


class Upscalers:
    """The model upscalers on one device (held by the engine): loaded once, the last KEPT kept."""

    def __init__(self, device: Any, dtype: Any):
        # On a CPU they run in fp32: its bf16 kernels are slower without AMX, and these nets are small.
        self.device, self.dtype = device, (None if str(device).startswith("cpu") else dtype)
        self._kept: OrderedDict[tuple, tuple[UpscalerInfo, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, path: Path, allow_pickle: bool) -> tuple[UpscalerInfo, Any]:
        """(info, descriptor on this device, in eval mode), loading the file once."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        info, model = describe(name, path, allow_pickle)
        dtype = self.dtype if self.dtype is not None and _supports(model, self.dtype) else None
        model = model.to(self.device) if dtype is None else model.to(self.device).to(dtype)
        model.eval()
        with self._lock:
            self._kept[key] = (info, model)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return info, model


def _supports(model: Any, dtype: Any) -> bool:
    import torch

    if dtype == torch.float16:
        return bool(model.supports_half)
    if dtype == torch.bfloat16:
        return bool(model.supports_bfloat16)
    return True
