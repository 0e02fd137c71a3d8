"""Hosting on Hugging Face Spaces: ZeroGPU through the `spaces` package, and a Space's storage.

ZeroGPU: the process has no GPU of its own. Importing `spaces` *before torch* makes `torch.cuda` look
present, so the studio picks `cuda` and the starting model is placed there at start-up, in the main
thread (the emulation covers that thread only). A real GPU is attached only while a function
decorated with `spaces.GPU` runs: `spaces` forks a worker process for it, moves the start-up
weights onto the GPU there, and charges the visitor's quota the duration asked for, which
`GpuBudget` computes from the request. The worker is a copy of this process: what it changes in
memory stays there, so only data crosses (the plan in, views out).

This module imports neither torch nor gradio: `app.py` calls `import_spaces_first()` before
anything imports torch.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from .options import default  # (imports neither torch nor gradio)

F = TypeVar("F", bound=Callable)
ZERO_GPU_ENV = "SPACES_ZERO_GPU"
TRUE = ("1", "t", "true")  # what `spaces` itself reads as set
# Fixed cost of a GPU call (ZeroGPU attaches the GPU and moves the start-up weights onto it, a
# decode at the end), and the floor of what is asked for: asking too little aborts the run.
GPU_OVERHEAD_S = 10.0
GPU_MIN_S = 15
# A model other than the starting one loads inside the GPU call, from the Space's disk (the worker
# keeps it while it lives, but this process cannot see whether it still does).
MODEL_LOAD_S = 30.0
SPACE_DATA = Path("/data")  # a Space's persistent storage, when the Space has it
# A Space starts on the model its README front matter preloads (fast on ZeroGPU, usable on a free CPU).
SPACE_MODEL = "sd-turbo"


def zero_gpu_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Does this Space say it is ZeroGPU (the variable Spaces set on ZeroGPU hardware)?"""
    return environ.get(ZERO_GPU_ENV, "").strip().lower() in TRUE


def import_spaces_first() -> bool:
    """On ZeroGPU, import `spaces` now, before torch: afterwards it is too late for its CUDA
    emulation. True when it was imported; a clear exit when the Space says ZeroGPU and the package
    is missing (Spaces install it; elsewhere `pip install spaces`)."""
    if not zero_gpu_requested():
        return False
    if "torch" in sys.modules:  # torch may have initialized CUDA already: spaces refuses then
        print("warning: torch was imported before spaces; ZeroGPU may not attach the GPU", file=sys.stderr)
    if importlib.util.find_spec("spaces") is None:
        raise SystemExit(f"error: {ZERO_GPU_ENV} is set but the `spaces` package is not installed "
                         "(pip install spaces): ZeroGPU needs it")
    importlib.import_module("spaces")  # the import is the point: it patches torch.cuda
    return True


def zero_gpu_active() -> bool:
    return zero_gpu_requested() and importlib.util.find_spec("spaces") is not None


@dataclass(frozen=True)
class GpuBudget:
    """Seconds of GPU one Generate asks ZeroGPU for: the fixed overhead plus each request's cost
    (megapixel-steps, hires pass and batch included) at its family's estimated speed, plus a load
    for a model other than the starting one, at most `cap_s`
    (--gpu-duration). A visitor's quota is charged what is asked, so asking the cap for a 1-step
    Turbo image would spend it ten times faster than needed."""

    cap_s: int = default("gpu_duration")
    start_model: str = ""  # loaded at start-up: on the GPU at once; any other model loads in the call

    def seconds(self, plan: Sequence[Any]) -> int:
        from .families import FAMILIES

        slowest = max(f.gpu_s_per_mp_step for f in FAMILIES.values())  # a model not classified yet
        needed = GPU_OVERHEAD_S + sum(
            request.cost() * (FAMILIES[request.source.family].gpu_s_per_mp_step
                              if request.source.family in FAMILIES else slowest)
            for request in plan)
        needed += MODEL_LOAD_S * len({r.model for r in plan if getattr(r, "model", None) != self.start_model})
        return int(min(self.cap_s, max(GPU_MIN_S, math.ceil(needed))))

    def __call__(self, key: str, plan: Sequence[Any], *rest: Any) -> int:
        """`spaces.GPU(duration=...)` calls this with the GPU function's own arguments."""
        return self.seconds(plan)


def on_gpu(fn: F, duration: int | Callable[..., int] = default("gpu_duration")) -> F:
    """`fn` (a generator function) wrapped for ZeroGPU (a GPU for at most `duration` seconds, or what
    `duration(*args)` says), or `fn` itself anywhere else. The only exception `spaces` carries back
    from its worker with its message is gradio's Error, so a StudioError crosses as one and is a
    StudioError again on this side."""
    if not zero_gpu_active():
        return fn
    import functools

    import gradio as gr
    import spaces

    from .errors import StudioError

    @functools.wraps(fn)
    def in_worker(*args: Any, **kwargs: Any) -> Any:
        try:
            yield from fn(*args, **kwargs)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    on_worker = spaces.GPU(duration=duration)(in_worker)

    @functools.wraps(fn)
    def here(*args: Any, **kwargs: Any) -> Any:
        try:
            yield from on_worker(*args, **kwargs)
        except gr.Error as exc:
            raise StudioError(exc.message) from None

    return here  # type: ignore[return-value]


def space_defaults(environ: Mapping[str, str] = os.environ, data: Path = SPACE_DATA) -> dict[str, str]:
    """Environment defaults on a Space (it sets SPACE_ID): the preloaded model; with persistent storage, the model cache
    (HF_HOME) and the outputs live under /data and survive restarts; without it, the disk is wiped
    on every restart, so nothing is kept (images are served from a temporary folder). Variables the
    Space already sets win. Applied before huggingface_hub reads HF_HOME."""
    if not environ.get("SPACE_ID"):
        return {}
    defaults = {"STUDIO_MODEL": SPACE_MODEL}
    if data.is_dir() and os.access(data, os.W_OK):
        defaults |= {"HF_HOME": str(data / ".huggingface"), "STUDIO_OUTPUTS": str(data / "outputs"),
                     "STUDIO_OUTPUTS_MAX_GB": "5"}
    else:
        defaults |= {"STUDIO_NO_OUTPUTS": "1"}
    return {name: value for name, value in defaults.items() if name not in environ}


def hub_cache(environ: Mapping[str, str] = os.environ, home: Path | None = None) -> Path:
    """The Hub cache huggingface_hub uses with these variables (HF_HUB_CACHE, else HF_HOME/hub, else
    $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub)."""
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"]).expanduser()
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else (home or Path.home()) / ".cache"
    return cache / "huggingface" / "hub"


def link_preloaded(built: Path, used: Path) -> list[str]:
    """Make the repos a Space's build preloaded (`preload_from_hub` writes them to the default cache,
    `built`) visible in the cache the studio uses (`used`: /data's with persistent storage), so they
    are not downloaded again: each repo folder the used cache lacks is linked to the built one. Links
    left by an earlier build whose repos it no longer preloads are removed. Returns the repos linked."""
    if built.resolve() == used.resolve() or not built.is_dir():
        return []
    used.mkdir(parents=True, exist_ok=True)
    for entry in used.glob("models--*"):
        if entry.is_symlink() and not entry.exists():  # an older build's preload, gone
            entry.unlink()
    linked = []
    for repo in sorted(built.glob("models--*")):
        target = used / repo.name
        if repo.is_dir() and not target.exists() and not target.is_symlink():
            target.symlink_to(repo, target_is_directory=True)
            linked.append(repo.name.removeprefix("models--").replace("--", "/"))
    return linked
