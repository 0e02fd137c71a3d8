"""One generation, as a numbered recipe: prompts, paths, seeds, model, then on the device:
LoRAs, conditioning, the task's passes, infotexts, the result."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from .. import conditioning as encoding, embeddings, loading, loras, prompts
from ..control import ip_adapter, steer
from ..devices import free_device_memory
from ..errors import StudioError
from ..fields import number_text
from ..events import Cancelled, Event, Result, Status, Timings
from ..infotext import format_infotext
from ..tasks import TASKS, plan_passes
from .partial import LatestX0, interrupted
from .passes import PassContext, Stop
from .paths import check_paths
from .prompt_plan import PromptPlan, plan_prompts

if TYPE_CHECKING:
    from ..request import GenerationRequest
    from .studio import Studio

log = logging.getLogger("studio")
Emit = Callable[[Event], None]


def run(studio: "Studio", request: GenerationRequest, emit: Emit, cancel: threading.Event,
        partial: bool = False) -> None:
    """One generation's events through `emit`. `partial`: a cancel mid-denoising ends with the images
    it had reached (partial.Interrupted), as A1111's API answers an interrupt."""
    start = time.perf_counter()
    config = studio.config
    # 1. Prompts: styles applied, LoRA tags found, both prompts parsed.
    plan = plan_prompts(request)
    # 2. A shared studio opens files only inside its folders: checked before anything is opened.
    check_paths(request, plan.loras, config.allowed_roots, config.loras_dir, config.controlnets_dir,
                config.allow_pickle)
    # 3. Seeds: -1 becomes a real seed here, so the result can report it.
    request = request.with_seed()
    seeds = request.seeds()
    if not TASKS[request.task].uses_model:  # an upscale: no model to load, the device thread all the same
        return on_device(studio, lambda: postprocess(studio, request, emit, cancel, seeds[0]), emit, cancel, 0)
    # 4. The model (cached after the first time).
    source = request.source
    was_loaded = studio.is_loaded(source)
    if not was_loaded:
        emit(Status(f"Loading model {source.name}"))
    loaded = studio.load(source, lambda message: emit(Status(message)))
    load_s = 0.0 if was_loaded else time.perf_counter() - start
    # 5. One job on the device at a time, on the device thread; a cancel while waiting ends the wait.
    if studio.busy:
        emit(Status("Waiting for the device"))
    on_device(studio, lambda: denoise(studio, request, plan, seeds, loaded, emit, cancel, start, load_s, partial),
              emit, cancel, request.steps)


def on_device(studio: "Studio", work: Callable[[], None], emit: Emit, cancel: threading.Event, steps: int) -> None:
    """The work on the device thread, waited for; a cancel while it waits in line ends the wait."""
    future = studio.device_thread.submit(work)
    while True:
        try:
            return future.result(timeout=0.05)
        except concurrent.futures.TimeoutError:
            if cancel.is_set() and future.cancel():  # still queued: it never touched the device
                emit(Cancelled(0, steps))
                return


def postprocess(studio: "Studio", request: GenerationRequest, emit: Emit, cancel: threading.Event, seed: int) -> None:
    """A task without a model (upscale), on the device thread; a Stop lands between tiles."""
    def stop() -> None:
        if cancel.is_set():
            raise Stop(0)

    try:
        emit(TASKS[request.task].run(studio.upscale_picture, request, emit, stop, seed))
    except Stop:
        emit(Cancelled(0, 0))


def denoise(studio: "Studio", request: GenerationRequest, plan: PromptPlan, seeds: list[int],
            loaded: loading.LoadedModel, emit: Emit, cancel: threading.Event, start: float, load_s: float,
            partial: bool = False) -> None:
    """On the device thread, with the device held."""
    passes = plan_passes(request)
    notices: tuple[str, ...] = ()
    if request.fast_decode and not studio.previews.taesd_ref(loaded):  # the CPU default, on a family without one
        request = dataclasses.replace(request, fast_decode=False)  # the infotext says what ran
        notices = (f"Fast decode is off for {loaded.name}: no TAESD is known for the {loaded.family_def.title} "
                   "family, so its VAE decoded the image.",)
    if cancel.is_set():
        emit(Cancelled(0, sum(passes)))
        return
    t0 = time.perf_counter()
    kept = LatestX0() if partial else None
    lora_hashes: tuple[tuple[str, str], ...] = ()

    def stop_here() -> None:  # a Stop during encoding or preprocessing ends the job as one in the steps does
        if cancel.is_set():
            raise Stop(0)

    try:
        # 6. LoRAs first: a text-encoder LoRA changes the prompt's embeddings.
        lora_hashes = apply_loras(loaded, plan.loras, studio.config.loras_dir)
        embeddings.attach(loaded.pipe, loaded.family, studio.config.embeddings_dir, studio.config.allow_pickle)
        # 7. Both prompts encoded as the model's family does (cached).
        with encoding.encoding(stop_here, ((plan.parsed, "prompt"), (plan.negative_parsed, "negative_prompt"))):
            conditioning = studio.prompt_cache.conditioning(loaded, studio.model_key(loaded.source), request, plan)
        # 8. ControlNet units: their models (loaded once) and control maps (made once).
        control = steer.prepare(request.controlnets, loaded, studio.controlnets, (request.width, request.height),
                                seeds[0], request.pass_tasks(), studio.config.controlnets_dir, stop_here)
        # 9. Image prompts: their IP-Adapters (loaded once) and pictures' embeddings.
        image_prompts = ip_adapter.prepare(request.image_prompts, loaded, studio.image_encoders,
                                           studio.config.controlnets_dir)
        # 10. The task's passes, with the image prompts' adapters in the UNet for them only.
        context = PassContext(request, seeds, loaded, emit, cancel, sum(passes), studio.previews,
                              studio.config.preview_interval_s, control, image_prompts, kept,
                              studio.upscale_picture)
        if image_prompts is not None:
            image_prompts.check_passes({task: context.pipe_for(task) for task in request.pass_tasks()}, loaded.name)
        denoiser = getattr(loaded.pipe, loaded.family_def.denoiser)
        with image_prompts.installed(denoiser) if image_prompts else contextlib.nullcontext():
            images = TASKS[request.task].run(context, conditioning, passes)
    except Stop as stop:
        log.info("Cancelled at step %d/%d", stop.step, sum(passes))
        emit(interrupted(kept, loaded, studio.previews, stop.step, sum(passes), seeds,
                         infotexts(request, plan, loaded, lora_hashes, len(seeds)) if kept is not None else ()))
        return
    except torch.OutOfMemoryError as exc:
        free_device_memory(loaded.device)
        raise StudioError(
            f"Out of memory on {loaded.device.describe()} at {request.width}x{request.height}, "
            f"batch {request.batch_size}: try a smaller size or batch."
        ) from exc
    generate_s = time.perf_counter() - t0
    # 11. The infotext of every image (its own seed), with what only the engine knows.
    texts = infotexts(request, plan, loaded, lora_hashes, len(seeds))
    notices += (loading.NOISE_NOTICE.format(name=loaded.name),) if loaded.source.is_noise else ()
    notices += encoder_warnings(loaded, plan)
    notices += embeddings.refused_notices(loaded.pipe, plan.every_parsed(request.prompt_syntax))
    emit(Result(
        request=request,
        images=tuple(images),
        seeds=tuple(seeds),
        infotexts=texts,
        timings=Timings(load_s=load_s, generate_s=generate_s, total_s=time.perf_counter() - start),
        model_name=loaded.name,
        notices=notices + context.notices + plan.warnings,
        prompt_warnings=plan.warnings,
        control_maps=tuple(zip(control.indices, control.maps)) if control else (),
    ))


def infotexts(request: GenerationRequest, plan: PromptPlan, loaded: loading.LoadedModel,
              lora_hashes: Sequence[tuple[str, str]], count: int) -> tuple[str, ...]:
    """The infotext of each image of the batch (its own seed), with what only the engine knows."""
    extras: dict[str, object] = {"Model hash": loaded.model_hash}
    if loaded.family_def.guidance(loaded.pipe) == "distilled":  # FLUX dev: what the CFG scale drove
        extras["Distilled CFG Scale"] = number_text(request.cfg_scale)
    if lora_hashes:
        extras["Lora hashes"] = ", ".join(f"{name}: {digest}" for name, digest in lora_hashes)
    extras.update(embeddings.ti_hashes(loaded.pipe, plan.every_parsed(request.prompt_syntax)))  # A1111's `TI hashes`
    return tuple(format_infotext(request, i, prompt=plan.prompt, negative_prompt=plan.negative_prompt,
                                 extras=extras) for i in range(count))


def encoder_notes(loaded: loading.LoadedModel, parsed: Any, counts: Any = None) -> list[str]:
    """What the model's text encoder does not read of one prompt: tokens past a fixed limit (FLUX's
    T5: 512) and weights an LLM encoder cannot take (Z-Image). `counts`: its token counts, if known."""
    fam = loaded.family_def
    notes = []
    if fam.token_limit is not None:
        count = sum(counts if counts is not None else fam.count_tokens(loaded.pipe, parsed))
        if count > fam.token_limit:
            notes.append(f"{count} tokens: {loaded.name} reads {fam.token_limit}, the rest is cut")
    if not fam.weighted and prompts.is_weighted(parsed):
        notes.append(f"weights are ignored by {loaded.name} (its text encoder is an LLM); the words are kept")
    return notes


def encoder_warnings(loaded: loading.LoadedModel, plan: PromptPlan) -> tuple[str, ...]:
    """Both prompts' encoder notes, for the result."""
    prompts_ = (("prompt", plan.parsed), ("negative prompt", plan.negative_parsed))
    return tuple(f"{label}: {note}" for label, parsed in prompts_ for note in encoder_notes(loaded, parsed))


def apply_loras(loaded: loading.LoadedModel, wanted: Sequence[tuple[str, float]],
                loras_dir: Path | None) -> tuple[tuple[str, str], ...]:
    """Activate exactly these LoRAs (loading files not yet loaded) and return their (name, hash)
    pairs; with none, every adapter is disabled so the base model is untouched."""
    if not wanted:
        loading.disable_loras(loaded)
        return ()
    names, weights, hashes = [], [], []
    for name, weight in wanted:
        adapter, digest = loading.load_lora(loaded, loras.find(name, loras_dir))
        names.append(adapter)
        weights.append(weight)
        hashes.append((name, digest))
    loading.activate_loras(loaded, names, weights)
    return tuple(hashes)
