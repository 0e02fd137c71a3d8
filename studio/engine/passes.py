"""One pipeline pass: a fresh scheduler, seeded generators, progress, live previews and cancel.

A task (studio/tasks/) makes one or more passes through `PassContext.run`; progress counts user
steps across all of them (hires fix: k of first + second pass).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import torch

from .. import loading, samplers
from ..events import Event, Preview, Progress, Status
from ..control.ip_adapter import ImagePrompts
from ..control.steer import Control
from ..loading import LoadedModel
from ..previews import PreviewDecoders, PreviewWorker
from ..previews.x0 import X0Tap
from ..tasks.common import repeat_conditioning
from . import prompt_steps, variation
from .partial import LatestX0

if TYPE_CHECKING:
    from ..request import GenerationRequest


class Stop(Exception):
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


class ProgressReporter:
    """diffusers' `callback_on_step_end`: reports step k of n, and aborts when cancelled."""

    def __init__(self, steps: int, emit: Callable[[Event], None], cancel: threading.Event,
                 on_last_step: Callable[[], None] | None = None, offset: int = 0, total: int | None = None,
                 started: float | None = None, work: tuple[float, float, float] | None = None):
        self.steps = steps
        self.offset = offset  # user steps done by earlier passes (hires fix)
        self.total = total if total is not None else steps
        self.emit = emit
        self.cancel = cancel
        self.on_last_step = on_last_step  # e.g. stop previews before the pipeline decodes
        self.step = 0
        # The generation's start: elapsed, rate and ETA run on through later passes (hires fix).
        self.t0 = started if started is not None else time.perf_counter()
        # (work done by earlier passes, work of one step of this pass, all the work): the ETA weighs
        # steps by their pixels, so a hires step counts as the larger step it is. None: steps alike.
        self.work = work

    def __call__(self, pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
        if self.cancel.is_set():
            raise Stop(self.offset + self.step)  # before decoding: no half-denoised image, unless asked (partial.py)
        total = pipeline_timestep_count(pipe)
        if index == total - 1 and self.on_last_step:
            self.on_last_step()
        step = user_step(index, total, self.steps)
        if step != self.step:
            self.step = step
            elapsed = time.perf_counter() - self.t0
            rate = (self.offset + step) / elapsed if elapsed > 0 else 0.0
            before, per_step, whole = self.work or (self.offset, 1.0, self.total)
            done = before + step * per_step
            eta = (whole - done) * elapsed / done if done > 0 and elapsed > 0 else 0.0
            self.emit(Progress(self.offset + step, self.total, elapsed, rate, max(0.0, eta)))
        return tensors


# Pictures larger than this go through the VAE in tiles (diffusers' enable_tiling), as Forge's tiled VAE
# does: a 2048 px SDXL decode in one piece needs about 10 GB of activations in fp16.
VAE_TILING_PIXELS = 1536 * 1536


def vae_tiling(pipe: Any, size: tuple[int, int]) -> bool:
    """Turn the pass's VAE tiling on for a large size (off otherwise, the VAE being shared by every
    pass); whether it is on. A VAE that cannot tile runs whole."""
    vae = getattr(pipe, "vae", None)
    big = size[0] * size[1] > VAE_TILING_PIXELS
    if vae is None or not hasattr(vae, "enable_tiling"):
        return False
    vae.enable_tiling() if big else vae.disable_tiling()
    return big


def cfg_batch(pipe: Any, cfg_scale: float) -> bool:
    """Whether a pass's batch holds CFG's negative half, as diffusers' UNet pipelines decide."""
    unet = getattr(pipe, "unet", None)
    return unet is not None and cfg_scale > 1 and unet.config.time_cond_proj_dim is None


def seed_step_noise(scheduler: Any, generators: list[torch.Generator]) -> None:
    """Samplers that draw fresh noise in step() get the run's generators there too, whatever the
    pipeline passes (FluxPipeline passes none): the same seed gives the same image."""
    original = scheduler.step

    @functools.wraps(original)
    def step(*args: Any, **kwargs: Any) -> Any:
        kwargs["generator"] = generators if len(generators) > 1 else generators[0]
        return original(*args, **kwargs)

    scheduler.step = step


class PassContext:
    """What every pipeline pass of one generation shares; `run` makes one pass."""

    def __init__(self, request: GenerationRequest, seeds: list[int], loaded: LoadedModel, emit: Callable[[Event], None],
                 cancel: threading.Event, total: int, previews: PreviewDecoders, preview_interval_s: float,
                 control: Control | None = None, image_prompts: ImagePrompts | None = None,
                 partial: LatestX0 | None = None, upscaler: Callable[..., Any] | None = None):
        self.request, self.seeds, self.loaded = request, seeds, loaded
        self.upscaler = upscaler  # the engine's Studio.upscale_picture (model upscalers on this device)
        self.partial = partial  # keeps each step's x0 for a partial result at a cancel; None: not asked
        self.control = control  # the request's active ControlNet units, or None
        self.image_prompts = image_prompts  # its active image prompts (IP-Adapter), or None
        self.emit, self.cancel, self.total = emit, cancel, total
        self.previews, self.preview_interval_s = previews, preview_interval_s
        self.done = 0  # user steps finished by earlier passes
        self.pass_costs = request.pass_costs()  # each pass's share of the work, for the ETA
        self.passes_run = 0
        self.started = time.perf_counter()  # progress counts time from here, through every pass
        self.notices: tuple[str, ...] = ()

    def notice(self, text: str) -> None:
        """Tell the user now (a status line) and with the result (its notices), once."""
        if text not in self.notices:
            self.notices += (text,)
            self.emit(Status(text))

    def stop_here(self) -> None:
        """End the job here if Stop was pressed: between a task's pieces of work (tiles, regions), as the
        step callback does between steps."""
        if self.cancel.is_set():
            raise Stop(self.done)

    def upscale(self, picture: Any, size: tuple[int, int], name: str, field: str = "hires_upscaler") -> Any:
        """A picture at `size` through the named upscaler (a pixel filter or a model, in tiles): a Stop
        lands between tiles, as between steps."""
        def on_tile(done: int, total: int) -> None:
            self.emit(Status(f"Upscaling with {name}: tile {done} of {total}"))

        if self.upscaler is None:
            raise ValueError("this engine runs no upscalers")
        return self.upscaler(picture, size, name, self.stop_here, on_tile, field)[0]

    def pipe_for(self, task: str) -> Any:
        """The model's pipeline for a pass of this task: its ControlNet twin when units steer (the same
        weights either way)."""
        if self.control is not None:
            return self.control.pipe(self.loaded, task)
        return loading.task_pipe(self.loaded, task)

    def generators(self) -> list[torch.Generator]:
        # One generator per image: item i is seed + i, drawn on the CPU unless asked otherwise.
        device = "cpu" if self.request.rng == "cpu" else self.loaded.device.device
        return [torch.Generator(device).manual_seed(s) for s in self.seeds]

    def run(self, pipe: Any, steps: int, size: tuple[int, int], **kwargs: Any) -> Any:
        """One pipeline call of `steps` user steps: a fresh scheduler from the model's own config,
        seeded generators, live previews of the x0 and progress counted on from earlier passes."""
        request, loaded = self.request, self.loaded
        # The loaded model's family picks the registry (a hub id's family is known only now).
        choice = samplers.resolve(request.sampler, request.schedule, loaded.family_def.sampler_kind)
        pipe.scheduler = samplers.make_scheduler(loaded.scheduler_config, choice, self.seeds)
        generators = self.generators()
        timeline = kwargs.pop(prompt_steps.KEY, None)  # prompt editing: another prompt at some steps
        pass_name = kwargs.pop("prompt_pass", None)
        if kwargs.pop("variation_noise", False):  # a text-to-image pass: A1111's variation seeds, if asked
            kwargs.update(variation.initial_latents(request, loaded, pipe, size, self.seeds, generators))
        if choice.sampler.step_seeded:
            seed_step_noise(pipe.scheduler, generators)
        decoder, fallback = self.previews.decoder(loaded, request.preview, size)
        if fallback:
            self.notice(fallback)
        done, total = self.done, self.total
        # Fast decode: a pass that would decode with the VAE hands back latents, and TAESD decodes them
        # (on a CPU the full VAE costs several steps of a Turbo model).
        fast = request.fast_decode and kwargs.get("output_type", "pil") == "pil"
        worker = None
        if decoder is not None:
            worker = PreviewWorker(
                decoder, lambda step, image: self.emit(Preview(done + step, total, image)),
                self.preview_interval_s, loaded.device.device,
                on_error=lambda exc: self.notice(
                    f"Live previews stopped: the {request.preview} preview decoder failed "
                    f"({type(exc).__name__}: {exc}). The image itself is not affected."),
            )
        kept = self.partial
        if worker is not None or kept is not None:
            def on_x0(x0: torch.Tensor) -> None:
                step = user_step(tap.calls - 1, pipeline_timestep_count(pipe), steps)
                if kept is not None:
                    kept.keep(done + step, x0, size, fast)
                if worker is not None:
                    worker.offer(step, x0)

            tap = X0Tap(pipe.scheduler, on_x0)
        progress = ProgressReporter(steps, self.emit, self.cancel, on_last_step=worker.close if worker else None,
                                    offset=done, total=total, started=self.started, work=self.work(steps))
        count = kwargs.get("num_images_per_prompt") or 1
        if count > 1 and not loaded.family_def.repeats_embeds:  # SD3 uses given embeddings as they are
            kwargs = {**repeat_conditioning(kwargs, count), "num_images_per_prompt": 1}
        guided = cfg_batch(pipe, request.cfg_scale)
        if self.control is not None:
            kwargs.update(self.control.arguments(pipe, size, guided))
        if self.image_prompts is not None:  # as many as the prompt's embeddings (the pipeline repeats both)
            embeds = kwargs.get("prompt_embeds")
            kwargs.update(self.image_prompts.arguments(pipe, 1 if embeds is None else len(embeds), guided))
        kwargs[loaded.family_def.cfg_argument] = request.cfg_scale  # guidance_scale; Qwen's real CFG: true_cfg_scale
        kwargs.update(loaded.family_def.call_arguments.get(type(pipe).__name__, {}))
        if "true_cfg_scale" in loading.call_parameters(pipe):  # FLUX: real CFG, only with a negative prompt
            kwargs.setdefault("true_cfg_scale", request.true_cfg_scale)
        if "height" in loading.call_parameters(pipe):  # FLUX's image pipelines default to 1024 px otherwise
            kwargs.setdefault("width", size[0])
            kwargs.setdefault("height", size[1])
        if "max_area" in loading.call_parameters(pipe):  # Kontext scales any size to this area (1 MP by default)
            kwargs.setdefault("max_area", size[0] * size[1])
        if fast:
            kwargs["output_type"] = "latent"
        if vae_tiling(pipe, size):
            self.notice(f"VAE tiling is on at {size[0]}x{size[1]}: the VAE encodes and decodes it in tiles, so it "
                        "fits in memory.")
        swap = None if timeline is None else prompt_steps.install(
            timeline, pass_name, pipe, loaded.family_def, len(self.seeds),
            lambda index: user_step(index, pipeline_timestep_count(pipe), steps) - 1)
        try:
            output = pipe(
                **kwargs, generator=generators,
                callback_on_step_end=progress if swap is None else swap.chain(progress),
            )
        finally:
            if swap is not None:
                swap.remove()
            if worker:
                worker.close()  # idempotent; normally already closed at the last step
        self.done += steps
        self.passes_run += 1
        return self.previews.final_images(loaded, output.images, size) if fast else output.images

    def work(self, steps: int) -> tuple[float, float, float] | None:
        """This pass's place in the request's work (see ProgressReporter); None when the passes run
        are not the ones planned."""
        costs, index = self.pass_costs, self.passes_run
        if index >= len(costs) or steps <= 0:
            return None
        return sum(costs[:index]), costs[index] / steps, sum(costs)
