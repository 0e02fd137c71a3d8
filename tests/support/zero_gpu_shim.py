"""Stand-in for ZeroGPU's main process on this CPU-only machine, for tests/app/test_zero_gpu.py.

A ZeroGPU Space runs a CUDA build of torch on a machine whose main process sees no GPU. The CPU build
installed here differs in three attributes that the real `spaces` package reads when it is imported
(`torch.version.cuda`, `torch._C._cuda_init`, `torch.cuda._is_in_bad_fork`): this import hook sets
them as a CUDA build without a GPU has them, right after torch is imported, and records the order in
which `spaces` and `torch` are first imported (one name per line in $ZERO_GPU_ORDER_FILE). Nothing
else is changed: the `spaces` package, its CUDA emulation and its GPU scheduling client are real.

The app's subprocess imports it as a top-level module, with this folder on sys.path, before anything
else (never as `support.zero_gpu_shim`: the package's own imports would come first).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

WATCHED = ("spaces", "torch")


def _is_in_bad_fork() -> bool:  # module level: spaces pickles it into a forked process
    return False


def _no_driver() -> None:
    raise RuntimeError("Found no NVIDIA driver on your system.")


def _as_cuda_build(torch) -> None:
    if torch.version.cuda is None:
        torch.version.cuda = "12.8"
    torch._C._cuda_init = _no_driver
    torch.cuda._is_in_bad_fork = _is_in_bad_fork


class _Hook(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def find_spec(self, name, path, target=None):
        if name in WATCHED and name not in self.seen:
            self.seen.append(name)
            if os.environ.get("ZERO_GPU_ORDER_FILE"):
                with open(os.environ["ZERO_GPU_ORDER_FILE"], "a") as log:
                    log.write(name + "\n")
        if name != "torch":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            _as_cuda_build(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Hook())
