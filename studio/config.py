"""StudioConfig: how one Studio runs, fixed for its lifetime. app.py builds it from the flags
once; the engine and the page read what they need from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .errors import InvalidValue
from .options import OFFLOAD_MODES, QUANTIZE_MODES, default

DEFAULT_PREVIEW_INTERVAL_S = 1.0 / default("preview_fps")  # about 10 previews a second: more is wasted on the browser


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


@dataclass(frozen=True)
class StudioConfig:
    """Device, caches, folders and what requests may open. Frozen: shared by every session."""

    # The defaults are the flags' (studio/options.py), declared there once.
    device: str = default("device")  # auto, cuda, cuda:N, mps, cpu
    dtype: str = default("dtype")  # auto, fp16, bf16, fp32
    cache_size: int = default("cache_size")  # models kept loaded (LRU)
    allow_pickle: bool = default("allow_pickle")  # .ckpt/.pt/.bin checkpoints can run code: off unless asked
    preview_interval_s: float = DEFAULT_PREVIEW_INTERVAL_S
    # family -> TAESD repo or folder, overriding the presets' (e.g. a local copy when offline)
    taesd_sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    # family -> hub id or local diffusers folder describing single-file checkpoints of that family
    single_file_configs: Mapping[str, str] = field(default_factory=dict, hash=False)
    models_dir: Path | None = None  # checkpoints listed in the page and matched by PNG Info
    loras_dir: Path | None = None  # LoRAs named by file name: <lora:name:0.8>
    controlnets_dir: Path | None = None  # ControlNets and IP-Adapters named by file name (A1111's models/ControlNet)
    upscalers_dir: Path | None = None  # upscaler models named by file name (A1111's models/ESRGAN)
    embeddings_dir: Path | None = None  # textual-inversion embeddings, used by name in prompts (A1111's embeddings)
    wildcards_dir: Path | None = None  # __name__ wildcards: name.txt files (studio/dynamic/folder.py)
    # Folders requests may name files in; None: any path, as a local Python user expects. A shared
    # studio sets them, so a visitor cannot make it open arbitrary files of the host.
    allowed_roots: tuple[Path, ...] | None = None
    # Most megapixel-steps one Generate may ask for (all its batches; see GenerationRequest.cost);
    # None: no cap (the Python API). app.py sets a generous cap locally and a tight one when shared.
    max_cost: float | None = None
    # Fitting big models (FLUX 12B, SD3.5 Large 8B) on smaller GPUs: "model" keeps each component on
    # the CPU until it runs (diffusers' model CPU offload), "sequential" streams layer by layer
    # (slowest, least memory); both need a CUDA GPU. drop_t5 loads SD3 without its T5 encoder.
    offload: str = default("offload")
    drop_t5: bool = default("drop_t5")
    # The denoiser's weights quantized at load (torchao, requirements-quant.txt): int8 weight-only
    # (any device; about half of bf16), fp8 weight-only (CUDA GPUs with fp8: Ada, Hopper).
    quantize: str = default("quantize")

    def __post_init__(self) -> None:
        if isinstance(self.cache_size, bool) or not isinstance(self.cache_size, int) or self.cache_size < 1:
            raise InvalidValue("cache_size", self.cache_size, "a whole number >= 1")
        interval = self.preview_interval_s
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 <= interval <= 60:
            raise InvalidValue("preview_interval_s", interval, "seconds from 0 to 60")
        cap = self.max_cost
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or not cap > 0):
            raise InvalidValue("max_cost", cap, "megapixel-steps above 0, or None for no cap")
        if self.offload not in OFFLOAD_MODES:
            raise InvalidValue("offload", self.offload, ", ".join(OFFLOAD_MODES))
        if self.quantize not in QUANTIZE_MODES:
            raise InvalidValue("quantize", self.quantize, ", ".join(QUANTIZE_MODES))
        set_ = object.__setattr__  # normalising inside __post_init__ of a frozen class
        set_(self, "preview_interval_s", float(interval))
        set_(self, "taesd_sources", dict(self.taesd_sources or {}))
        set_(self, "single_file_configs", dict(self.single_file_configs or {}))
        set_(self, "models_dir", _path(self.models_dir))
        set_(self, "loras_dir", _path(self.loras_dir))
        set_(self, "controlnets_dir", _path(self.controlnets_dir))
        set_(self, "upscalers_dir", _path(self.upscalers_dir))
        set_(self, "embeddings_dir", _path(self.embeddings_dir))
        set_(self, "wildcards_dir", _path(self.wildcards_dir))
        if self.allowed_roots is not None:
            roots: Sequence[str | Path] = self.allowed_roots
            set_(self, "allowed_roots", tuple(Path(root).expanduser().resolve() for root in roots))
