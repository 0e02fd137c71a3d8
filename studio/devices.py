"""Device and precision choice: CUDA (fp16 default, bf16 option), Apple MPS, CPU (bf16 where the CPU
computes it natively, else fp32)."""

from __future__ import annotations

import functools
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InvalidValue, UnknownName

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
DEVICES = ("auto", "cuda", "mps", "cpu")
# The precision each device runs at unless asked otherwise (a CPU: see cpu_default_dtype), and what it accepts.
DEFAULT_DTYPE = {"cuda": "fp16", "mps": "fp16"}
# CPU features that compute bf16 natively: x86 AVX512-BF16 or AMX (Linux /proc/cpuinfo flags), Arm's
# BF16 extension (Linux "Features"; macOS sysctl hw.optional.arm.FEAT_BF16). Without them torch emulates
# bf16 through fp32, slower than fp32 itself.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def bf16_in_cpuinfo(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a native bf16 feature (flags or Features lines)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and BF16_FLAGS & set(value.split()):
            return True
    return False


@functools.cache
def native_bf16() -> bool:
    """Does this CPU compute bf16 natively? Read from the OS, never guessed from the model name."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        return bf16_in_cpuinfo(cpuinfo.read_text(errors="replace"))
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return out.strip() == "1"
    return False


def cpu_default_dtype() -> str:
    return "bf16" if native_bf16() else "fp32"
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
    default = cpu_default_dtype() if kind == "cpu" else DEFAULT_DTYPE[kind]
    name = default if dtype in (None, "", "auto") else dtype
    if name not in ALLOWED_DTYPES[kind]:
        raise InvalidValue("dtype", dtype, f"on {kind}: auto, " + ", ".join(ALLOWED_DTYPES[kind]))
    return DeviceChoice(device, name)


def free_device_memory(choice: DeviceChoice) -> None:
    """Return cached allocator blocks to the device after a model is evicted or a run fails."""
    if choice.kind == "cuda":
        torch.cuda.empty_cache()
    elif choice.kind == "mps":
        torch.mps.empty_cache()
