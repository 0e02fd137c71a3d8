"""Device and precision choice: CUDA (fp16 default, bf16 option), Apple MPS, CPU (fp32; bf16 option)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InvalidValue, UnknownName

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
DEVICES = ("auto", "cuda", "mps", "cpu")
# The precision each device runs at unless asked otherwise, and what it accepts.
DEFAULT_DTYPE = {"cuda": "fp16", "mps": "fp16", "cpu": "fp32"}
ALLOWED_DTYPES = {"cuda": ("fp16", "bf16", "fp32"), "mps": ("fp16", "fp32"), "cpu": ("fp32", "bf16")}


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "cuda:1", "mps" or "cpu"
    dtype_name: str  # key of DTYPES

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.dtype_name]

    @property
    def kind(self) -> str:
        return self.device.split(":")[0]

    def describe(self) -> str:
        return f"{self.device} ({self.dtype_name})"


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return kind == "cpu"


def pick_device(device: str = "auto", dtype: str = "auto") -> DeviceChoice:
    """Resolve 'auto' to the best device here; refuse a device that is absent or a bad precision."""
    kind = (device or "auto").split(":")[0]
    if kind not in DEVICES:
        raise UnknownName("device", device, DEVICES)
    if kind == "auto":
        kind = next(k for k in ("cuda", "mps", "cpu") if _available(k))
        device = kind
    elif not _available(kind):
        raise InvalidValue("device", device, "a device present on this machine: "
                           + ", ".join(k for k in ("cuda", "mps", "cpu") if _available(k)))
    name = DEFAULT_DTYPE[kind] if dtype in (None, "", "auto") else dtype
    if name not in ALLOWED_DTYPES[kind]:
        raise InvalidValue("dtype", dtype, f"on {kind}: auto, " + ", ".join(ALLOWED_DTYPES[kind]))
    return DeviceChoice(device, name)


def free_device_memory(choice: DeviceChoice) -> None:
    """Return cached allocator blocks to the device after a model is evicted or a run fails."""
    if choice.kind == "cuda":
        torch.cuda.empty_cache()
    elif choice.kind == "mps":
        torch.mps.empty_cache()
