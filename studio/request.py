"""The generation request: one frozen, self-validating dataclass that every door maps onto."""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass
from typing import Any

from . import previews, prompts, samplers
from .errors import InvalidValue, UnknownName
from .models import ModelSource, resolve_model

MAX_SEED = 2**32 - 1
STEPS_RANGE = (1, 150)
CFG_RANGE = (0.0, 30.0)
BATCH_RANGE = (1, 8)
BATCH_COUNT_RANGE = (1, 32)  # batches run one after another per click (A1111's "Batch count")
MAX_PROMPT_CHARS = 50_000
CLIP_SKIP_RANGE = (1, 2)
RNG_SOURCES = ("cpu", "device")
DEFAULT_MODEL = "sd15"


def _as_int(field: str, value: Any, allowed: str) -> int:
    """Accept ints and integral floats (Gradio sliders send 20.0); refuse bools, NaN, 20.5, '20'."""
    if isinstance(value, bool):
        raise InvalidValue(field, value, allowed)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise InvalidValue(field, value, allowed)


def _as_float(field: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidValue(field, value, allowed)
    return float(value)


def _in_range(field: str, value: Any, low: int, high: int, extra: str = "") -> int:
    allowed = f"an integer from {low} to {high}{extra}"
    number = _as_int(field, value, allowed)
    if not low <= number <= high:
        raise InvalidValue(field, value, allowed)
    return number


def _text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidValue(field, value, "text")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidValue(field, f"<{len(value)} characters>", f"at most {MAX_PROMPT_CHARS} characters")
    return value


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one text-to-image generation needs. Construction validates and normalises.

    Sampler names are normalised to A1111's canonical spelling, and an old combined name such as
    "DPM++ 2M Karras" is split into sampler "DPM++ 2M" and schedule "Karras".
    """

    prompt: str = ""
    negative_prompt: str = ""
    model: str = DEFAULT_MODEL
    sampler: str = "DPM++ 2M"
    schedule: str = samplers.AUTOMATIC
    steps: int = 20
    cfg_scale: float = 7.0
    seed: int = -1
    width: int = 512
    height: int = 512
    batch_size: int = 1
    rng: str = "cpu"  # where initial and ancestral noise is drawn: "cpu" = same image on any device
    prompt_syntax: str = prompts.A1111  # "A1111" or "compel": which parser reads both prompts
    clip_skip: int = 1  # 2 = condition on CLIP's penultimate layer (SD 1.x; SDXL always does)
    preview: str = "auto"  # live preview method; changes nothing in the result, recorded nowhere

    def __post_init__(self) -> None:
        # 1. Text fields.
        self._set("prompt", _text("prompt", self.prompt))
        self._set("negative_prompt", _text("negative_prompt", self.negative_prompt))
        # 2. Numbers.
        self._set("steps", _in_range("steps", self.steps, *STEPS_RANGE))
        cfg_allowed = f"a number from {CFG_RANGE[0]:g} to {CFG_RANGE[1]:g}"
        cfg = _as_float("cfg_scale", self.cfg_scale, cfg_allowed)
        if not CFG_RANGE[0] <= cfg <= CFG_RANGE[1]:
            raise InvalidValue("cfg_scale", self.cfg_scale, cfg_allowed)
        self._set("cfg_scale", cfg)
        self._set("seed", _in_range("seed", self.seed, -1, MAX_SEED, " (-1 = random)"))
        self._set("batch_size", _in_range("batch_size", self.batch_size, *BATCH_RANGE))
        if self.rng not in RNG_SOURCES:
            raise UnknownName("rng", self.rng, RNG_SOURCES)
        self._set("prompt_syntax", prompts.canonical_syntax(self.prompt_syntax))
        self._set("clip_skip", _in_range("clip_skip", self.clip_skip, *CLIP_SKIP_RANGE))
        self._set("preview", previews.canonical_method(self.preview))
        # 3. Names: sampler + schedule (combined names split), then the model and its size range.
        choice = samplers.resolve(self.sampler, self.schedule)
        self._set("sampler", choice.sampler.name)
        self._set("schedule", choice.schedule.name)
        source = resolve_model(self.model)
        self._set("model", source.name if source.preset else self.model.strip())
        low, high = source.size_range
        for name in ("width", "height"):
            allowed = f"a multiple of 8 from {low} to {high} for model {source.name}"
            value = _as_int(name, getattr(self, name), allowed)
            if value % 8 or not low <= value <= high:
                raise InvalidValue(name, getattr(self, name), allowed)
            self._set(name, value)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising inside __post_init__ of a frozen class

    @classmethod
    def for_model(cls, model: str = DEFAULT_MODEL, **fields: Any) -> "GenerationRequest":
        """A request that takes steps, CFG, size and sampler from the model preset unless given."""
        defaults = dataclasses.asdict(resolve_model(model).defaults)
        return cls(model=model, **{**defaults, **fields})

    @property
    def source(self) -> ModelSource:
        return resolve_model(self.model)

    @property
    def sampler_choice(self) -> samplers.SamplerChoice:
        return samplers.resolve(self.sampler, self.schedule)

    def with_seed(self) -> "GenerationRequest":
        """This request with -1 replaced by a freshly drawn seed (the one reported back)."""
        if self.seed != -1:
            return self
        return dataclasses.replace(self, seed=secrets.randbelow(MAX_SEED + 1))

    def seeds(self) -> list[int]:
        """One seed per batch image: seed + i, as A1111 does."""
        if self.seed == -1:
            raise ValueError("draw the seed first (with_seed)")
        return [self.seed + i for i in range(self.batch_size)]

    def batches(self, count: int) -> list["GenerationRequest"]:
        """`count` requests run one after another, as A1111's batch count: batch n starts at
        seed + n * batch_size, so every image of every batch has its own seed (wrapping past 2**32-1).
        A seed of -1 is drawn once, for the first batch."""
        count = _in_range("batch_count", count, *BATCH_COUNT_RANGE)
        first = self.with_seed()
        return [
            dataclasses.replace(first, seed=(first.seed + n * self.batch_size) % (MAX_SEED + 1))
            for n in range(count)
        ]
