"""The generation request: one frozen, self-validating dataclass that every door maps onto."""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass
from typing import Any

from . import hires as hires_fix
from . import images, loras, previews, prompts, samplers
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
MAX_INPUT_PIXELS = 4096 * 4096  # an init image or mask larger than this is refused before any work
MASK_BLUR_RANGE = (0, 64)
PADDING_RANGE = (0, 256)
HIRES_SCALE_RANGE = (1.0, 4.0)
INPAINT_MODES = ("Inpaint masked", "Inpaint not masked")
MASKED_CONTENT = ("original", "fill", "latent noise")
INPAINT_AREAS = ("Whole picture", "Only masked")
TASKS = ("txt2img", "img2img", "inpaint")


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


def _fraction(field: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    allowed = f"a number from {low:g} to {high:g}"
    number = _as_float(field, value, allowed)
    if not low <= number <= high:
        raise InvalidValue(field, value, allowed)
    return number


def _choice(field: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    for choice in choices:
        if isinstance(value, str) and value.strip().casefold() == choice.casefold():
            return choice
    raise UnknownName(field, value, list(choices))


def _image(field: str, value: Any) -> Any:
    from PIL import Image

    if value is None:
        return None
    if not isinstance(value, Image.Image):
        raise InvalidValue(field, type(value).__name__, "a PIL image (the HTTP API takes an image file)")
    if value.width < 8 or value.height < 8 or value.width * value.height > MAX_INPUT_PIXELS:
        raise InvalidValue(field, f"{value.width}x{value.height}", f"8x8 to {MAX_INPUT_PIXELS} pixels")
    return value


_CONTROL = frozenset(chr(c) for c in [*range(32), 127]) - {"\t", "\n", "\r"}


def _text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidValue(field, value, "text")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidValue(field, f"<{len(value)} characters>", f"at most {MAX_PROMPT_CHARS} characters")
    bad = next((c for c in value if c in _CONTROL), None)
    if bad is not None:
        # They cannot be stored in a PNG text chunk, and no tokenizer gives them a meaning.
        raise InvalidValue(field, f"<text with control character U+{ord(bad):04X}>",
                           "text without control characters (tab and newlines are fine)")
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
    # Image to image: an init image makes this img2img; a mask as well makes it inpainting.
    init_image: Any = None  # PIL image, resized to width x height by resize_mode
    mask: Any = None  # PIL image, white (or painted alpha) = repaint
    denoising_strength: float = 0.75  # 0 keeps the init image, 1 ignores it
    resize_mode: str = "Just resize"
    mask_blur: int = 4  # pixels of Gaussian blur on the mask's edge
    inpaint_mode: str = "Inpaint masked"  # or "Inpaint not masked" (the mask inverted)
    masked_content: str = "original"  # what the masked area starts from: original, fill, latent noise
    inpaint_area: str = "Whole picture"  # or "Only masked": repaint the masked region at full size
    masked_padding: int = 32  # pixels around the mask for "Only masked"
    # Hires fix (text to image): generate, upscale, then a second img2img pass at the larger size.
    hires: bool = False
    hires_scale: float = 2.0
    hires_upscaler: str = "Latent"
    hires_steps: int = 0  # 0 = as many as the first pass
    hires_strength: float = 0.7
    # LoRAs as ((name, weight), ...); <lora:name:weight> in the prompt adds to these.
    loras: tuple = ()

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
        # 4. Image to image, inpainting, hires fix, LoRAs.
        self._set("init_image", _image("init_image", self.init_image))
        self._set("mask", _image("mask", self.mask))
        if self.mask is not None and self.init_image is None:
            raise InvalidValue("mask", "a mask without an init image", "a mask together with init_image")
        self._set("denoising_strength", _fraction("denoising_strength", self.denoising_strength))
        self._set("resize_mode", _choice("resize_mode", self.resize_mode, list(images.RESIZE_MODES)))
        self._set("mask_blur", _in_range("mask_blur", self.mask_blur, *MASK_BLUR_RANGE))
        self._set("inpaint_mode", _choice("inpaint_mode", self.inpaint_mode, INPAINT_MODES))
        self._set("masked_content", _choice("masked_content", self.masked_content, MASKED_CONTENT))
        self._set("inpaint_area", _choice("inpaint_area", self.inpaint_area, INPAINT_AREAS))
        self._set("masked_padding", _in_range("masked_padding", self.masked_padding, *PADDING_RANGE))
        if not isinstance(self.hires, bool):
            raise InvalidValue("hires", self.hires, "true or false")
        if self.hires and self.init_image is not None:
            raise InvalidValue("hires", True, "hires fix is for text to image (no init image)")
        self._set("hires_scale", _fraction("hires_scale", self.hires_scale, *HIRES_SCALE_RANGE))
        self._set("hires_upscaler", _choice("hires_upscaler", self.hires_upscaler, list(hires_fix.UPSCALERS)))
        self._set("hires_steps", _in_range("hires_steps", self.hires_steps, 0, STEPS_RANGE[1], " (0 = as the first pass)"))
        self._set("hires_strength", _fraction("hires_strength", self.hires_strength))
        if self.hires:
            for name, value in zip(("width", "height"), self.hires_size):
                if value > high:
                    raise InvalidValue("hires_scale", self.hires_scale,
                                       f"a scale keeping the {name} within {high} for model {source.name} "
                                       f"({getattr(self, name)} x {self.hires_scale:g} = {value})")
        self._set("loras", loras.parse_refs(self.loras))
        loras.extract(self.prompt)  # a <lora:name:weight> tag with a bad weight is refused here

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

    @property
    def task(self) -> str:
        if self.mask is not None:
            return "inpaint"
        return "img2img" if self.init_image is not None else "txt2img"

    @property
    def hires_size(self) -> tuple[int, int]:
        """The hires pass's size: the first pass's times the scale, in multiples of 8."""
        return tuple(8 * round(v * self.hires_scale / 8) for v in (self.width, self.height))  # type: ignore[return-value]

    def record(self) -> dict[str, Any]:
        """The request as JSON-safe data (saved in the PNG): input images are described, not stored."""
        data = dataclasses.asdict(dataclasses.replace(self, init_image=None, mask=None))
        for name in ("init_image", "mask"):
            image = getattr(self, name)
            data[name] = None if image is None else {"width": image.width, "height": image.height, "stored": False}
        data["loras"] = [list(ref) for ref in self.loras]
        return data

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
