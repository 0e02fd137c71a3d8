"""Hosting on Hugging Face Spaces: ZeroGPU through the optional `spaces` package.

On a ZeroGPU Space a GPU is attached only while a function decorated with `spaces.GPU` runs. The
decorator is applied when the package is installed and the Space says it is ZeroGPU
(`SPACES_ZERO_GPU`); everywhere else the function is returned unchanged.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def zero_gpu_active() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def on_gpu(fn: F, duration_s: int = 120) -> F:
    """`fn` wrapped for ZeroGPU (at most `duration_s` of GPU per call), or `fn` itself."""
    if not zero_gpu_active():
        return fn
    import spaces

    return spaces.GPU(duration=duration_s)(fn)
