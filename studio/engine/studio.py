"""Studio: owns the device, the model cache, the prompt cache and the preview decoders.

    studio = Studio()                      # StudioConfig() defaults: device / precision automatic
    job = studio.generate(GenerationRequest(prompt="a cat", model="tiny", steps=8))
    for event in job:                      # Status, Progress, (Preview), then Result or Cancelled
        ...
    job.cancel()                           # from any thread: stops within one denoising step

One job runs on the device at a time; models stay in an LRU cache, so the next job with the same
model starts at once and changing the sampler rebuilds only the scheduler. A Studio is safe to
share between sessions: it holds caches and a device lock, never a user's settings.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from .. import embeddings, hardware, loading, loras, prompt_schedule, prompts, validation
from ..cache import LRUCache
from ..config import StudioConfig
from ..devices import DeviceChoice, free_device_memory, pick_device
from ..errors import InvalidValue, StudioError
from ..families import Family, family as family_of
from ..events import Cancelled, PromptView, Result
from ..models import ModelSource, resolve_model
from ..previews import PreviewDecoders
from ..request import GenerationRequest, RequestBase
from . import generation
from ..control.models import ControlNets
from ..control.ip_adapter import ImageEncoders
from ..upscalers.models import UpscalerInfo, Upscalers
from ..upscalers.run import tile_size, upscale
from .device import DeviceThread
from .jobs import Job
from .prompt_plan import PromptCache

DEFAULT_STEPS = 20  # the steps a prompt's schedule is shown over when no one says (the page sends its own)
MAX_STEPS = 150  # the steps field's top

log = logging.getLogger("studio")


def _as_source(model: str | ModelSource) -> ModelSource:
    return resolve_model(model) if isinstance(model, str) else model


def model_key(model: str | ModelSource) -> tuple:
    """A model's key in a cache of models (a name is resolved first; raises StudioError for a bad one)."""
    source = _as_source(model)
    return (source.kind, source.ref)


def peek_named(cache: LRUCache, model: str | None) -> Any:
    """What `cache` holds for a model name, without loading; None while it holds nothing for it, or for
    no name or a half-typed one (describing a prompt still shows fragments and warnings then)."""
    try:
        return cache.peek(model_key(model)) if model else None
    except StudioError:
        return None


TOKENIZERS = ("tokenizer", "tokenizer_2", "tokenizer_3")  # a pipeline's tokenizers, as diffusers names them


@dataclass(frozen=True)
class PromptReader:
    """A model's tokenizers and family without its weights: enough to count a prompt's tokens."""

    name: str
    family: str
    tokenizers: Mapping[str, Any]

    @property
    def family_def(self) -> Family:
        return family_of(self.family)

    @property
    def pipe(self) -> SimpleNamespace:  # what the family's token counter reads
        return SimpleNamespace(**self.tokenizers)


def describe_prompt(prompt: str, syntax: str, loaded: "loading.LoadedModel | PromptReader | None",
                    steps: int = DEFAULT_STEPS) -> PromptView:
    """A prompt's view: fragments and weights (of its first step's text, where it is edited between
    steps: `schedule` says which text runs at which of `steps` steps); token counts and encoder notes when
    the model's tokenizers are at hand (`loaded`), else None."""
    prompt = validation.text("prompt", prompt)  # the request's caps, before any parsing
    steps = validation.int_in_range("steps", steps, 1, MAX_STEPS)
    text = loras.extract(prompt)[0]
    found = prompt_schedule.check_schedule("prompt", text, steps) if prompts.canonical_syntax(syntax) == prompts.A1111 \
        else prompt_schedule.Schedule(((steps, text),))
    parsed = prompts.parse(found.at(0), syntax)
    counts, warnings, limit = None, tuple(parsed.warnings), None
    if loaded is not None:
        counts = tuple(loaded.family_def.count_tokens(loaded.pipe, parsed))
        limit = loaded.family_def.token_limit
        warnings += tuple(generation.encoder_notes(loaded, parsed, counts))
    rows = tuple((r["first"], r["last"], r["text"]) for r in prompt_schedule.describe(found)) if found.edited else ()
    return PromptView(tuple(prompts.fragments(parsed)), counts, warnings, limit, rows)


class Studio:
    """The engine. `Studio(config)` or `Studio(device="cpu", cache_size=4, ...)` (StudioConfig's fields)."""

    def __init__(self, config: StudioConfig | None = None, **settings: Any):
        config = config or StudioConfig()
        self.config: StudioConfig = dataclasses.replace(config, **settings) if settings else config
        self.device: DeviceChoice = pick_device(self.config.device, self.config.dtype)
        if self.config.offload != "none" and self.device.kind != "cuda":
            raise InvalidValue("offload", self.config.offload,
                               f"none on {self.device.describe()}: offloading moves weights between the CPU and a "
                               "CUDA GPU")
        if self.config.quantize == "fp8" and self.device.kind != "cuda":
            raise InvalidValue("quantize", "fp8", f"none or int8 on {self.device.describe()}: fp8 weights need a "
                                                  "CUDA GPU with fp8 support")
        self.options = loading.LoadOptions(self.device, self.config.allow_pickle,
                                           dict(self.config.single_file_configs), self.config.offload,
                                           self.config.drop_t5, self.config.quantize)
        self._cache: LRUCache[loading.LoadedModel] = LRUCache(self.config.cache_size, on_evict=self._release)
        self.device_thread = DeviceThread()
        self.prompt_cache = PromptCache()
        self.previews = PreviewDecoders(self.device, self.config.taesd_sources)
        self.controlnets = ControlNets(self.device, allow_pickle=self.config.allow_pickle)  # ControlNet models, loaded once each
        self.image_encoders = ImageEncoders(self.device)  # the IP-Adapters' CLIP vision models
        self.upscalers = Upscalers(self.device.device, self.device.dtype)  # model upscalers, loaded once each
        log.info("Studio on %s, keeping up to %d model(s) loaded", self.device.describe(),
                 self.config.cache_size)

    # -- models -----------------------------------------------------------------------------

    def _release(self, loaded: loading.LoadedModel) -> None:
        log.info("Unloading %s to make room", loaded.name)
        del loaded
        gc.collect()
        free_device_memory(self.device)

    model_key = staticmethod(model_key)

    def load(self, model: str | ModelSource, report: Callable[[str], None] = log.info) -> loading.LoadedModel:
        """The model from the cache, loading it (once) if needed."""
        source = _as_source(model)
        loaded, _ = self._cache.get_or_load(self.model_key(source), lambda: loading.load(source, self.options, report),
                                            prepare=lambda: loading.preflight(source, self.options, report))
        return loaded

    def is_loaded(self, model: str | ModelSource) -> bool:
        return self._cache.peek(model_key(model)) is not None

    def loaded_models(self) -> list[str]:
        return [ref for _, ref in self._cache.keys()]

    def devices(self) -> list[hardware.DeviceCard]:
        return [hardware.card(self.device.describe())]

    @property
    def load_count(self) -> int:
        return self._cache.loads

    @property
    def prompt_encodes(self) -> int:
        """How many prompts have actually been run through a text encoder (tests read it)."""
        return self.prompt_cache.encodes

    # -- prompts ----------------------------------------------------------------------------

    def describe_prompt(self, prompt: str, model: str | None = None, syntax: str = prompts.A1111,
                        steps: int = DEFAULT_STEPS) -> PromptView:
        """The parsed view: fragments and final weights, tokens per 75-token chunk, warnings.

        Token counts need the model's tokenizer; they are None while that model is not loaded
        (describing a prompt never starts a load).
        """
        loaded = peek_named(self._cache, model)
        if loaded is not None:  # its textual-inversion embeddings, so their vectors are counted
            embeddings.attach(loaded.pipe, loaded.family, self.config.embeddings_dir, self.config.allow_pickle)
        return describe_prompt(prompt, syntax, loaded, steps)

    def prompt_reader(self, model: str) -> "PromptReader | None":
        """What counting a prompt's tokens for a loaded model needs, small enough to send elsewhere
        (a replica's front door counts tokens with it); None while the model is not loaded."""
        loaded = self._cache.peek(model_key(model))
        if loaded is None:
            return None
        return PromptReader(loaded.name, loaded.family, {name: getattr(loaded.pipe, name) for name in TOKENIZERS
                                                         if hasattr(loaded.pipe, name)})

    @property
    def slots(self) -> int:
        """How many generations run at once: one device, one at a time."""
        return 1

    # -- generation -------------------------------------------------------------------------

    def generate(self, request: GenerationRequest, partial: bool = False) -> Job:
        """A job for this request; nothing runs until it is iterated. `partial`: cancelled mid-denoising,
        it ends with the images it had reached (partial.Interrupted) instead of a bare Cancelled."""
        if not isinstance(request, RequestBase):
            raise TypeError(f"generate() takes a GenerationRequest, got {type(request).__name__}")
        return Job(request, lambda emit, cancel: generation.run(self, request, emit, cancel, partial))

    def run(self, request: GenerationRequest) -> Result:
        """Generate and return the result (raises StudioError on failure)."""
        final = self.generate(request).result()
        if isinstance(final, Cancelled):
            raise StudioError("the generation was cancelled")
        return final

    def on_device(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn` on the studio's device thread, after any job already there, and return its result."""
        return self.device_thread.run(fn, *args, **kwargs)

    def upscale_picture(self, picture: Any, size: tuple[int, int], name: str, stop: Callable[[], None],
                        on_tile: Callable[[int, int], None] | None = None,
                        field: str = "upscaler") -> tuple[Any, UpscalerInfo | None]:
        """A picture at `size` through the upscaler of this name (a built-in filter, or a model of the
        upscalers folder run in tiles on this device), on the calling thread: the device thread's jobs
        call it. `stop` raises to end it between tiles."""
        return upscale(picture, size, name, self.upscalers, self.config.upscalers_dir, self.config.allow_pickle,
                       stop, tile_size(self.device.kind), on_tile, field)

    @property
    def busy(self) -> bool:
        """Whether a job holds the device now."""
        return self.device_thread.busy.locked()
