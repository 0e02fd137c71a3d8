"""The engine: `Studio(...).generate(request)` returns a cancellable Job that yields events.

    studio = Studio()                      # device / precision chosen automatically
    job = studio.generate(GenerationRequest(prompt="a cat", model="tiny", steps=8, width=64, height=64))
    for event in job:                      # Status, Progress, (Preview), then Result or Cancelled
        ...
    job.cancel()                           # from any thread: stops within one denoising step

One job runs on the device at a time (a per-Studio lock); models stay in an LRU cache, so the next
job with the same model starts at once and changing the sampler rebuilds only the scheduler.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import math
import os
from pathlib import Path
import queue
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from PIL import Image

from . import hires, images, loading, loras, previews, prompts, samplers
from .cache import LRUCache
from .conditioning import Conditioning, PromptEncoder, chunk_token_counts, pad_to_same_length
from .devices import DeviceChoice, free_device_memory, pick_device
from .errors import InvalidValue, StudioError
from .events import Cancelled, Event, Preview, Progress, PromptView, Result, Status, Timings
from .infotext import format_infotext
from .models import ModelSource, resolve_model
from .models import family as model_family
from .request import GenerationRequest
from .x0 import X0Tap

log = logging.getLogger("studio")
PROMPT_CACHE_SIZE = 32  # encoded prompts kept (a few KB to a few MB each)

_END = object()  # queue sentinel: the worker has finished


class _Stop(Exception):
    """Raised inside the step callback to abandon a pipeline call before it decodes anything."""

    def __init__(self, step: int = 0):
        super().__init__(step)
        self.step = step


def user_step(callback_index: int, callback_total: int, steps: int) -> int:
    """Map a pipeline loop index to the user's step k of n.

    Second-order samplers (Heun, DPM2) run about two loop iterations per user step, so progress is
    the fraction of the pipeline's own timesteps done, scaled to the steps the user asked for.
    """
    if callback_total <= 0:
        return steps
    return max(1, min(steps, math.ceil((callback_index + 1) * steps / callback_total)))


def pipeline_timestep_count(pipe: Any) -> int:
    """How many loop iterations the running pipeline call makes (diffusers' `num_timesteps`)."""
    count = getattr(pipe, "num_timesteps", None)
    if isinstance(count, int) and count > 0:
        return count
    return len(pipe.scheduler.timesteps)


def _as_source(model: str | ModelSource) -> ModelSource:
    return resolve_model(model) if isinstance(model, str) else model


def coalesce(batch: list[Event]) -> list[Event]:
    """Events waiting together, minus stale previews and progress: a slow reader gets the newest.

    This is where frames are dropped for a slow consumer: the denoising loop never waits for one.
    """
    newest = {type(e): i for i, e in enumerate(batch) if isinstance(e, (Preview, Progress))}
    return [e for i, e in enumerate(batch) if newest.get(type(e), i) == i]


class Job:
    """One generation. Iterate it for events; `cancel()` from any thread stops it."""

    def __init__(self, studio: "Studio", request: GenerationRequest):
        self.studio = studio
        self.request = request
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._started = False

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        """True once the work is over, whether or not its events have been read yet."""
        return self._finished.is_set()

    def __iter__(self) -> Iterator[Event]:
        if self._started:
            raise RuntimeError("a Job can be iterated once")
        self._started = True
        events: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self.studio._run(self.request, events.put, self._cancel)
            except BaseException as exc:  # handed to the consumer's thread below
                failure.append(exc)
            finally:
                self._finished.set()
                events.put(_END)

        worker = threading.Thread(target=work, name="studio-job", daemon=True)
        worker.start()
        try:
            done = False
            while not done:
                batch = [events.get()]
                while True:  # take whatever else is already waiting
                    try:
                        batch.append(events.get_nowait())
                    except queue.Empty:
                        break
                if _END in batch:
                    done = True
                    batch = batch[: batch.index(_END)]
                yield from coalesce(batch)
            if failure:
                raise failure[0]
        finally:
            # The consumer stopped early (closed generator, client gone): stop the work too.
            self._cancel.set()
            worker.join()

    def result(self) -> Result | Cancelled:
        """Run to the end and return the final event."""
        final: Result | Cancelled | None = None
        for event in self:
            if isinstance(event, (Result, Cancelled)):
                final = event
        assert final is not None
        return final


class Studio:
    """Owns the device, the pipeline cache and the device lock. Safe to share between sessions."""

    def __init__(
        self,
        *,
        device: str = "auto",
        dtype: str = "auto",
        cache_size: int = 2,
        allow_pickle: bool = False,
        single_file_configs: Mapping[str, str] | None = None,
        preview_interval_s: float = previews.DEFAULT_INTERVAL_S,
        taesd_sources: Mapping[str, str] | None = None,
        loras_dir: str | Path | None = None,
        allowed_roots: "Sequence[str | Path] | None" = None,
    ):
        self.device: DeviceChoice = pick_device(device, dtype)
        self.options = loading.LoadOptions(self.device, allow_pickle, dict(single_file_configs or {}))
        self._cache: LRUCache[loading.LoadedModel] = LRUCache(cache_size, on_evict=self._release)
        # One long-lived thread runs every pipeline call (see on_device); `_busy` says it is working.
        self._device_thread: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
        self._device_lock = threading.Lock()
        self._busy = threading.Lock()
        # Encoded prompts by (model, syntax, clip skip, text): an unchanged prompt is not encoded again.
        self._prompts: LRUCache[Conditioning] = LRUCache(PROMPT_CACHE_SIZE)
        if not (isinstance(preview_interval_s, (int, float)) and 0 <= preview_interval_s <= 60):
            from .errors import InvalidValue

            raise InvalidValue("preview_interval_s", preview_interval_s, "seconds from 0 to 60")
        self.preview_interval_s = float(preview_interval_s)
        # family -> TAESD repo or folder, overriding the presets' (e.g. a local copy when offline)
        self.taesd_sources = dict(taesd_sources or {})
        self._taesd: LRUCache[Any] = LRUCache(2)  # small decoders, one per family in use
        self.loras_dir = Path(loras_dir).expanduser() if loras_dir is not None else None
        # Folders that requests may name files in (None: any path, as a local Python user expects).
        # A shared studio sets them, so a visitor cannot make it open arbitrary files of the host.
        self.allowed_roots = None if allowed_roots is None else tuple(
            Path(root).expanduser().resolve() for root in allowed_roots)
        log.info("Studio on %s, keeping up to %d model(s) loaded", self.device.describe(), cache_size)

    # -- models -----------------------------------------------------------------------------

    def _release(self, loaded: loading.LoadedModel) -> None:
        log.info("Unloading %s to make room", loaded.name)
        del loaded
        gc.collect()
        free_device_memory(self.device)

    def _key(self, source: ModelSource) -> tuple:
        return (source.kind, source.ref)

    def load(self, model: str | ModelSource, report: Callable[[str], None] = log.info) -> loading.LoadedModel:
        """The model from the cache, loading it (once) if needed."""
        source = _as_source(model)
        loaded, _ = self._cache.get_or_load(self._key(source), lambda: loading.load(source, self.options, report))
        return loaded

    def is_loaded(self, model: str | ModelSource) -> bool:
        return self._cache.peek(self._key(_as_source(model))) is not None

    def loaded_models(self) -> list[str]:
        return [ref for _, ref in self._cache.keys()]

    @property
    def load_count(self) -> int:
        return self._cache.loads

    @property
    def prompt_encodes(self) -> int:
        """How many prompts have actually been run through a text encoder (tests read it)."""
        return self._prompts.loads

    # -- prompts ----------------------------------------------------------------------------

    def describe_prompt(self, prompt: str, model: str | None = None, syntax: str = prompts.A1111) -> PromptView:
        """The parsed view: fragments and final weights, tokens per 75-token chunk, warnings.

        Token counts need the model's tokenizer; they are None while that model is not loaded
        (describing a prompt never starts a load).
        """
        parsed = prompts.parse(loras.extract(prompt)[0], syntax)
        counts = None
        try:
            loaded = self._cache.peek(self._key(_as_source(model))) if model else None
        except StudioError:  # a half-typed model name: the view still shows fragments and warnings
            loaded = None
        if loaded is not None:
            counts = tuple(chunk_token_counts(parsed, loaded.pipe.tokenizer))
        return PromptView(tuple(prompts.fragments(parsed)), counts, parsed.warnings)

    def _conditioning(self, loaded: loading.LoadedModel, request: GenerationRequest) -> tuple[dict, tuple[str, ...]]:
        """Pipeline keyword arguments for both prompts (cached), and the prompts' warnings."""
        encoder: PromptEncoder | None = None

        # Active LoRAs are part of the key: one on the text encoder changes the embeddings.
        active = loras.combined(request.loras, request.prompt)

        def encode(text: str) -> Conditioning:
            text = loras.extract(text)[0]  # <lora:...> tags pick LoRAs; they are not words

            def build() -> Conditioning:
                nonlocal encoder
                encoder = encoder or PromptEncoder(loaded.pipe, loaded.family, request.clip_skip)
                return encoder.encode(prompts.parse(text, request.prompt_syntax))

            key = (self._key(loaded.source), request.prompt_syntax, request.clip_skip, active, text)
            return self._prompts.get_or_load(key, build)[0]

        warnings = tuple(
            f"{label}: {w}"
            for label, text in (("prompt", request.prompt), ("negative prompt", request.negative_prompt))
            for w in prompts.parse(loras.extract(text)[0], request.prompt_syntax).warnings
        )
        positive = encode(request.prompt)
        if loaded.family == "sdxl" and not request.negative_prompt and loaded.pipe.config.get(
            "force_zeros_for_empty_prompt", False
        ):
            # As diffusers' SDXL pipeline does: an empty negative prompt is all zeros.
            negative = Conditioning(torch.zeros_like(positive.embeds), torch.zeros_like(positive.pooled))
        else:
            negative = encode(request.negative_prompt)
            if positive.chunks != negative.chunks:
                positive, negative = pad_to_same_length([positive, negative], encode(""))
        kwargs = {"prompt_embeds": positive.embeds, "negative_prompt_embeds": negative.embeds}
        if loaded.family == "sdxl":
            kwargs.update(pooled_prompt_embeds=positive.pooled, negative_pooled_prompt_embeds=negative.pooled)
        return kwargs, warnings

    # -- previews ---------------------------------------------------------------------------

    def _load_taesd(self, ref: str) -> Any:
        from diffusers import AutoencoderTiny

        from .tiny import build_tiny_taesd

        if ref == "builtin:tiny":
            taesd = build_tiny_taesd().to(self.device.device)
            return taesd if self.device.dtype_name == "fp32" else taesd.to(dtype=self.device.dtype)
        if Path(ref).is_dir():
            return AutoencoderTiny.from_pretrained(ref, torch_dtype=self.device.dtype).to(self.device.device)
        return loading.hub_or_cache(
            f"TAESD {ref}",
            lambda local: AutoencoderTiny.from_pretrained(ref, torch_dtype=self.device.dtype, local_files_only=local),
        ).to(self.device.device)

    def _preview_decoder(self, loaded: loading.LoadedModel, request: GenerationRequest,
                         size: tuple[int, int] | None = None) -> tuple[previews.Decoder | None, str | None]:
        """The decoder for this request's preview method, and a notice if it had to fall back."""
        method = previews.resolve_method(request.preview, loaded.device.kind)
        size = size or (request.width, request.height)
        data = loaded.source.preview or model_family(loaded.family).preview
        if method == "none":
            return None, None
        if method == "vae":
            return previews.autoencoder_decoder(loaded.pipe.vae, size, loaded.pipe.vae.config.scaling_factor), None
        if method == "taesd":
            ref = self.taesd_sources.get(loaded.family) or data.taesd
            try:
                if not ref:
                    raise StudioError(f"no TAESD is known for the {loaded.family} family")
                taesd, _ = self._taesd.get_or_load((ref, self.device), lambda: self._load_taesd(ref))
                return previews.autoencoder_decoder(taesd, size, 1.0), None
            except Exception as exc:  # a missing TAESD is never an error: latent2rgb instead
                notice = f"TAESD previews are unavailable ({exc}); showing latent2rgb previews instead."
                log.warning(notice)
                return previews.latent2rgb_decoder(data, size), notice
        return previews.latent2rgb_decoder(data, size), None

    # -- generation -------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> Job:
        """A job for this request; nothing runs until it is iterated."""
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"generate() takes a GenerationRequest, got {type(request).__name__}")
        return Job(self, request)

    def run(self, request: GenerationRequest) -> Result:
        """Generate and return the result (raises StudioError on failure)."""
        final = self.generate(request).result()
        if isinstance(final, Cancelled):
            raise StudioError("the generation was cancelled")
        return final

    def _run(self, request: GenerationRequest, emit: Callable[[Event], None], cancel: threading.Event) -> None:
        start = time.perf_counter()
        self.check_paths(request)
        # 1. Seeds: -1 becomes a real seed here, so the result can report it.
        request = request.with_seed()
        seeds = request.seeds()
        # 2. The model (cached after the first time).
        source = request.source
        was_loaded = self.is_loaded(source)
        if not was_loaded:
            emit(Status(f"Loading model {source.name}"))
        loaded = self.load(source, lambda message: emit(Status(message)))
        load_s = 0.0 if was_loaded else time.perf_counter() - start
        # 3. One job on the device at a time, on the device thread; a cancel while waiting ends the wait.
        if self._busy.locked():
            emit(Status("Waiting for the device"))
        future = self._device().submit(self._denoise, request, seeds, loaded, emit, cancel, start, load_s)
        while True:
            try:
                return future.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                if cancel.is_set() and future.cancel():  # still queued: it never touched the device
                    emit(Cancelled(0, request.steps))
                    return

    def _device(self) -> concurrent.futures.ThreadPoolExecutor:
        """The device thread, made again in a forked child (ZeroGPU runs handlers in one), where the
        parent's threads do not exist."""
        pid = os.getpid()
        with self._device_lock:
            if self._device_thread is None or self._device_thread[0] != pid:
                executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-device")
                self._device_thread = (pid, executor)
            return self._device_thread[1]

    def check_paths(self, request: GenerationRequest) -> None:
        """Refuse local files outside the allowed folders: the model and every LoRA of a request."""
        if self.allowed_roots is None:
            return
        named = []
        if request.source.kind in ("folder", "single_file"):
            named.append(("model", request.model, request.source.ref))
        for name, _ in loras.combined(request.loras, request.prompt):
            file = loras.find(name, self.loras_dir)
            if not file.is_hub:
                named.append(("lora", name, file.ref))
        for field, value, path in named:
            resolved = Path(path).resolve()  # symlinks and .. resolved: no way out of a root
            if not any(resolved.is_relative_to(root) for root in self.allowed_roots):
                raise InvalidValue(field, value, "a file inside " + " or ".join(map(str, self.allowed_roots))
                                   + " (this studio is shared: other paths are refused)")

    def on_device(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn` on the studio's device thread, after any job already there, and return its result.

        All model compute runs on this one long-lived thread. On CPUs that matters: every thread that
        runs torch ops gets an OpenMP team of its own, and two teams on few cores spin against each
        other (measured here: a pipeline call 10-20% slower in a fresh thread than in a reused one).
        """
        return self._device().submit(fn, *args, **kwargs).result()

    def _denoise(self, request, seeds, loaded, emit, cancel, start, load_s) -> None:
        with self._busy:
            self._denoise_locked(request, seeds, loaded, emit, cancel, start, load_s)

    def _denoise_locked(self, request, seeds, loaded, emit, cancel, start, load_s) -> None:
        if cancel.is_set():
            emit(Cancelled(0, request.steps))
            return
        plan = plan_passes(request)
        t0 = time.perf_counter()
        try:
            # LoRAs first: a text-encoder LoRA changes the prompt's embeddings.
            lora_hashes = self._apply_loras(loaded, request)
            conditioning, prompt_warnings = self._conditioning(loaded, request)
            context = _PassContext(self, request, seeds, loaded, emit, cancel, sum(plan))
            images = TASKS[request.task](context, conditioning, plan)
        except _Stop as stop:
            log.info("Cancelled at step %d/%d", stop.step, sum(plan))
            emit(Cancelled(stop.step, sum(plan)))
            return
        except torch.OutOfMemoryError as exc:
            free_device_memory(loaded.device)
            raise StudioError(
                f"Out of memory on {loaded.device.describe()} at {request.width}x{request.height}, "
                f"batch {request.batch_size}: try a smaller size or batch."
            ) from exc
        generate_s = time.perf_counter() - t0
        effective = request.sampler_choice.effective_schedule.name
        extras = _infotext_extras(request, lora_hashes)
        infotexts = tuple(
            format_infotext(
                prompt=request.prompt, negative_prompt=request.negative_prompt, steps=request.steps,
                sampler=request.sampler, schedule=effective, cfg_scale=request.cfg_scale, seed=seed,
                width=request.width, height=request.height, model=loaded.name, model_hash=loaded.model_hash,
                extras=extras,
            )
            for seed in seeds
        )
        notices = (loading.NOISE_NOTICE.format(name=loaded.name),) if loaded.source.is_noise else ()
        notices += context.notices
        emit(Result(
            request=request,
            images=tuple(images),
            seeds=tuple(seeds),
            infotexts=infotexts,
            timings=Timings(load_s=load_s, generate_s=generate_s, total_s=time.perf_counter() - start),
            model_name=loaded.name,
            notices=notices + prompt_warnings,
            prompt_warnings=prompt_warnings,
        ))

    # -- LoRAs ------------------------------------------------------------------------------

    def _apply_loras(self, loaded: loading.LoadedModel, request: GenerationRequest) -> tuple[tuple[str, str], ...]:
        """Activate exactly this request's LoRAs (loading files not yet loaded) and return their
        (name, hash) pairs; with none, every adapter is disabled so the base model is untouched."""
        wanted = loras.combined(request.loras, request.prompt)
        if not wanted:
            loading.disable_loras(loaded)
            return ()
        names, weights, hashes = [], [], []
        for name, weight in wanted:
            file = loras.find(name, self.loras_dir)
            adapter, digest = loading.load_lora(loaded, file)
            names.append(adapter)
            weights.append(weight)
            hashes.append((name, digest))
        loading.activate_loras(loaded, names, weights)
        return tuple(hashes)


class _PassContext:
    """What every pipeline pass of one generation shares; `run` makes one pass."""

    def __init__(self, studio: "Studio", request: GenerationRequest, seeds: list[int], loaded: loading.LoadedModel,
                 emit: Callable[[Event], None], cancel: threading.Event, total: int):
        self.studio, self.request, self.seeds, self.loaded = studio, request, seeds, loaded
        self.emit, self.cancel, self.total = emit, cancel, total
        self.done = 0  # user steps finished by earlier passes
        self.notices: tuple[str, ...] = ()

    def generators(self) -> list[torch.Generator]:
        # One generator per image: item i is seed + i, drawn on the CPU unless asked otherwise.
        device = "cpu" if self.request.rng == "cpu" else self.loaded.device.device
        return [torch.Generator(device).manual_seed(s) for s in self.seeds]

    def run(self, pipe: Any, steps: int, size: tuple[int, int], **kwargs: Any) -> Any:
        """One pipeline call of `steps` user steps: a fresh scheduler from the model's own config,
        seeded generators, live previews of the x0 and progress counted on from earlier passes."""
        request, loaded = self.request, self.loaded
        pipe.scheduler = samplers.make_scheduler(loaded.scheduler_config, request.sampler_choice, self.seeds)
        decoder, notice = self.studio._preview_decoder(loaded, request, size)
        if notice and notice not in self.notices:
            self.notices += (notice,)
            self.emit(Status(notice))
        done, total = self.done, self.total
        worker = None
        if decoder is not None:
            worker = previews.PreviewWorker(
                decoder, lambda step, image: self.emit(Preview(done + step, total, image)),
                self.studio.preview_interval_s, loaded.device.device,
            )
            tap = X0Tap(pipe.scheduler, lambda x0: worker.offer(
                user_step(tap.calls - 1, pipeline_timestep_count(pipe), steps), x0))
        progress = _ProgressReporter(steps, self.emit, self.cancel, on_last_step=worker.close if worker else None,
                                     offset=done, total=total)
        try:
            output = pipe(
                **kwargs, guidance_scale=request.cfg_scale, generator=self.generators(),
                callback_on_step_end=progress,
            )
        finally:
            if worker:
                worker.close()  # idempotent; normally already closed at the last step
        self.done += steps
        return output.images


def img2img_steps(steps: int, strength: float) -> tuple[int, int]:
    """(num_inference_steps to ask the pipeline for, steps it will run) for a denoising strength.

    As A1111 by default: strength s runs about s x steps of a steps-long schedule. A strength too
    small for even one step gets a longer schedule so exactly one step runs.
    """
    if strength <= 0:
        return steps, 0
    asked = steps
    while min(int(asked * strength), asked) < 1:
        asked += 1
    return asked, min(int(asked * strength), asked)


def plan_passes(request: GenerationRequest) -> list[int]:
    """User steps of each pass: what progress counts (k of their sum)."""
    if request.task == "txt2img":
        first = [request.steps]
    else:
        first = [img2img_steps(request.steps, request.denoising_strength)[1]]
    if request.hires:
        first.append(img2img_steps(request.hires_steps or request.steps, request.hires_strength)[1])
    return first


def _whole_picture(ctx: _PassContext, conditioning: dict, steps: int, picture: Any, strength: float) -> list[Any]:
    """Text to image or image to image on a dedicated inpainting model, as A1111 does: inpaint
    the whole picture (an all-white mask), from a grey picture at strength 1 for text to image."""
    request = ctx.request
    size = (request.width, request.height)
    asked, _ = img2img_steps(request.steps, strength)
    return list(ctx.run(
        ctx.loaded.pipe, steps, size, **conditioning, image=picture, mask_image=Image.new("L", size, 255),
        width=size[0], height=size[1], strength=strength, num_inference_steps=asked,
        num_images_per_prompt=request.batch_size, output_type="pil",
    ))


def _txt2img(ctx: _PassContext, conditioning: dict, plan: list[int]) -> list[Any]:
    request = ctx.request
    if ctx.loaded.inpainting:
        if request.hires:
            raise InvalidValue("hires", True, f"a regular model: {ctx.loaded.name} is an inpainting model")
        grey = Image.new("RGB", (request.width, request.height), (127, 127, 127))
        return _whole_picture(ctx, conditioning, plan[0], grey, 1.0)
    upscaler = hires.UPSCALERS[request.hires_upscaler]
    latent_out = request.hires and upscaler.space == "latent"
    first_pass = ctx.run(
        ctx.loaded.pipe, request.steps, (request.width, request.height), **conditioning,
        num_inference_steps=request.steps, width=request.width, height=request.height,
        num_images_per_prompt=request.batch_size, output_type="latent" if latent_out else "pil",
    )
    if not request.hires:
        return list(first_pass)
    # Hires fix: enlarge, then an img2img pass at the new size with its own steps and strength.
    size = request.hires_size
    if latent_out:
        start = hires.upscale_latents(first_pass, size, upscaler.mode, ctx.loaded.pipe.vae_scale_factor)
    else:
        start = [hires.upscale_image(image, size, upscaler.mode) for image in first_pass]
    if request.hires_strength <= 0:
        return start if not latent_out else _decode_latents(ctx.loaded.pipe, start)
    asked, _ = img2img_steps(request.hires_steps or request.steps, request.hires_strength)
    return list(ctx.run(
        loading.task_pipe(ctx.loaded, "img2img"), plan[-1], size, **conditioning, image=start,
        strength=request.hires_strength, num_inference_steps=asked, num_images_per_prompt=1,
        output_type="pil",
    ))


def _decode_latents(pipe: Any, latents: torch.Tensor) -> list[Any]:
    with torch.no_grad():
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    return pipe.image_processor.postprocess(decoded, output_type="pil")


def _img2img(ctx: _PassContext, conditioning: dict, plan: list[int]) -> list[Any]:
    request = ctx.request
    size = (request.width, request.height)
    init = images.resize(request.init_image.convert("RGB"), *size, request.resize_mode)
    if plan[0] == 0:  # strength 0: nothing to denoise; the (resized) input is the result
        return [init.copy() for _ in ctx.seeds]
    if ctx.loaded.inpainting:
        return _whole_picture(ctx, conditioning, plan[0], init, request.denoising_strength)
    if request.denoising_strength >= 1:
        # Strength 1 starts from pure noise, exactly as text to image does (diffusers' img2img would
        # keep a trace of the input: its noise at the last timestep still weighs it by ~0.07).
        return list(ctx.run(
            ctx.loaded.pipe, plan[0], size, **conditioning, num_inference_steps=request.steps,
            width=size[0], height=size[1], num_images_per_prompt=request.batch_size, output_type="pil",
        ))
    asked, _ = img2img_steps(request.steps, request.denoising_strength)
    return list(ctx.run(
        loading.task_pipe(ctx.loaded, "img2img"), plan[0], size, **conditioning, image=init,
        strength=request.denoising_strength, num_inference_steps=asked,
        num_images_per_prompt=request.batch_size, output_type="pil",
    ))


def _inpaint(ctx: _PassContext, conditioning: dict, plan: list[int]) -> list[Any]:
    request = ctx.request
    size = (request.width, request.height)
    original = images.resize(request.init_image.convert("RGB"), *size, request.resize_mode)
    mask = images.prepare_mask(request.mask, size, request.resize_mode,
                               request.inpaint_mode == "Inpaint not masked", request.mask_blur)
    if plan[0] == 0 or mask.getbbox() is None:  # nothing to repaint
        return [original.copy() for _ in ctx.seeds]
    # "Only masked": repaint the masked region (plus padding) at the full generation size.
    box = images.masked_box(mask, request.masked_padding, size[0] / size[1]) \
        if request.inpaint_area == "Only masked" else None
    work, work_mask = original, mask
    if box is not None:
        work, work_mask = original.crop(box).resize(size, images.LANCZOS), mask.crop(box).resize(size, images.LANCZOS)
    if request.masked_content == "fill":
        work = images.fill_masked(work, work_mask)
    pipe = loading.task_pipe(ctx.loaded, "inpaint")
    extra: dict[str, Any] = {}
    image: Any = work
    if request.masked_content == "latent noise":
        image, extra["masked_image_latents"] = _latent_noise(pipe, work, work_mask, ctx)
    asked, _ = img2img_steps(request.steps, request.denoising_strength)
    generated = ctx.run(
        pipe, plan[0], size, **conditioning, image=image, mask_image=work_mask, width=size[0], height=size[1],
        strength=request.denoising_strength, num_inference_steps=asked,
        num_images_per_prompt=request.batch_size, output_type="pil", **extra,
    )
    results = []
    for picture in generated:
        if box is not None:  # back into the full picture at the region's own size
            full = original.copy()
            full.paste(picture.resize((box[2] - box[0], box[3] - box[1]), images.LANCZOS), box[:2])
            picture = full
        # Outside the mask the original pixels stay, as A1111 does: no VAE round trip there.
        results.append(images.composite(original, picture, mask))
    return results


def _latent_noise(pipe: Any, picture: Any, mask: Any, ctx: _PassContext) -> tuple[torch.Tensor, torch.Tensor]:
    """A1111's "latent noise": the picture's latents with seeded noise where the mask is."""
    device, dtype = ctx.loaded.device.device, pipe.vae.dtype
    pixels = pipe.image_processor.preprocess(picture).to(device=device, dtype=dtype)
    with torch.no_grad():
        latents = pipe._encode_vae_image(pixels, generator=ctx.generators()[0])
    hole = pipe.mask_processor.preprocess(mask).to(device=device, dtype=latents.dtype)
    hole = torch.nn.functional.interpolate(hole, size=latents.shape[-2:])
    noise = torch.randn(latents.shape, generator=torch.Generator("cpu").manual_seed(ctx.seeds[0])).to(latents)
    noised = latents * (1 - hole) + noise * hole
    return noised, noised * (hole < 0.5)


TASKS: dict[str, Callable[[_PassContext, dict, list[int]], list[Any]]] = {
    "txt2img": _txt2img,
    "img2img": _img2img,
    "inpaint": _inpaint,
}


def _infotext_extras(request: GenerationRequest, lora_hashes: tuple[tuple[str, str], ...] = ()) -> dict[str, object]:
    """Our settings beyond A1111's core line, under the keys A1111 uses where it has them."""
    extras: dict[str, object] = {}
    if request.task != "txt2img":
        extras["Denoising strength"] = f"{request.denoising_strength:g}"
        if request.resize_mode != "Just resize":
            extras["Resize mode"] = request.resize_mode
    if request.task == "inpaint":
        extras["Mask blur"] = request.mask_blur
        if request.inpaint_mode != "Inpaint masked":
            extras["Mask mode"] = request.inpaint_mode
        extras["Masked content"] = request.masked_content
        if request.inpaint_area == "Only masked":
            extras["Inpaint area"] = request.inpaint_area
            extras["Masked area padding"] = request.masked_padding
    if request.hires:
        extras["Denoising strength"] = f"{request.hires_strength:g}"
        extras["Hires upscale"] = f"{request.hires_scale:g}"
        if request.hires_steps:
            extras["Hires steps"] = request.hires_steps
        extras["Hires upscaler"] = request.hires_upscaler
    if lora_hashes:
        extras["Lora hashes"] = ", ".join(f"{name}: {digest}" for name, digest in lora_hashes)
    if request.clip_skip != 1:
        extras["Clip skip"] = request.clip_skip
    if request.rng == "cpu":
        extras["RNG"] = "CPU"
    extras["Prompt syntax"] = request.prompt_syntax
    return extras


class _ProgressReporter:
    """diffusers' `callback_on_step_end`: reports step k of n, and aborts when cancelled."""

    def __init__(self, steps: int, emit: Callable[[Event], None], cancel: threading.Event,
                 on_last_step: Callable[[], None] | None = None, offset: int = 0, total: int | None = None):
        self.steps = steps
        self.offset = offset  # user steps done by earlier passes (hires fix)
        self.total = total if total is not None else steps
        self.emit = emit
        self.cancel = cancel
        self.on_last_step = on_last_step  # e.g. stop previews before the pipeline decodes
        self.step = 0
        self.t0 = time.perf_counter()

    def __call__(self, pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
        if self.cancel.is_set():
            raise _Stop(self.offset + self.step)  # before decoding: a half-denoised image is never returned
        total = pipeline_timestep_count(pipe)
        if index == total - 1 and self.on_last_step:
            self.on_last_step()
        step = user_step(index, total, self.steps)
        if step != self.step:
            self.step = step
            elapsed = time.perf_counter() - self.t0
            rate = step / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.offset - step) / rate if rate > 0 else 0.0
            self.emit(Progress(self.offset + step, self.total, elapsed, rate, eta))
        return tensors
