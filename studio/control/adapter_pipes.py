"""T2I-Adapter units: the rules diffusers' adapter pipelines set them, the pipelines on a loaded model's own
weights, and each pass's arguments.

diffusers runs T2I-Adapters with `StableDiffusionAdapterPipeline` (SD 1.x) and
`StableDiffusionXLAdapterPipeline` (SDXL), for text to image only, and with no pipeline that also runs
ControlNets: a request whose units mix the two, or that makes another kind of pass with adapters (image to
image, inpainting, the hires pass), is refused by name before anything runs. The adapters run once per
pass, before the first step: they steer every step (SD 1.x), or the first part of the steps (SDXL's
`adapter_conditioning_factor`, one end for every unit); a unit that starts later is refused.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import diffusers
from diffusers.models.adapter import MultiAdapter
from PIL import Image

from ..errors import InvalidValue
from ..loading import LoadedModel
from .units import CONTROL_MODES, ControlUnit


def _engine_call(pipe: Any, step_end: Callable | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The engine's arguments as diffusers' adapter pipelines take them: they call back the old way
    (`callback(step, timestep, latents)`, once a user step), so `callback_on_step_end(pipe, index,
    timestep, tensors)` is called from that with the loop index the step ends on; and they take one map
    per image, so a batch of prompt rows gets each map once a row."""
    rows = len(kwargs["prompt_embeds"]) if kwargs.get("prompt_embeds") is not None else 1
    image = kwargs.get("image")
    if rows > 1 and image is not None:
        kwargs["image"] = [image] * rows if isinstance(image, Image.Image) else [[m] * rows for m in image]
    if step_end is not None:
        def callback(step: int, timestep: Any, latents: Any) -> None:
            order = getattr(pipe.scheduler, "order", 1)
            index = min(step * order + order - 1, len(pipe.scheduler.timesteps) - 1)
            step_end(pipe, index, timestep, {"latents": latents})

        kwargs.update(callback=callback, callback_steps=1)
    return kwargs


class SDAdapterPipeline(diffusers.StableDiffusionAdapterPipeline):
    """diffusers' SD 1.x adapter pipeline, called as the engine calls every pipeline."""

    @functools.wraps(diffusers.StableDiffusionAdapterPipeline.__call__)  # its parameters, for call_parameters
    def __call__(self, *args: Any, callback_on_step_end: Callable | None = None, **kwargs: Any) -> Any:
        return super().__call__(*args, **_engine_call(self, callback_on_step_end, kwargs))


class SDXLAdapterPipeline(diffusers.StableDiffusionXLAdapterPipeline):
    """diffusers' SDXL adapter pipeline, called as the engine calls every pipeline."""

    @functools.wraps(diffusers.StableDiffusionXLAdapterPipeline.__call__)
    def __call__(self, *args: Any, callback_on_step_end: Callable | None = None, **kwargs: Any) -> Any:
        return super().__call__(*args, **_engine_call(self, callback_on_step_end, kwargs))


PIPELINES = {"sd15": SDAdapterPipeline, "sdxl": SDXLAdapterPipeline}  # by family
TASKS = ("txt2img",)  # diffusers has no adapter pipeline for image to image or inpainting
ADAPTED = "T2IAdapter:txt2img"  # its key in the loaded model's task pipelines


def check_units(active: Sequence[tuple[int, ControlUnit]], loaded: LoadedModel, tasks: Sequence[str]) -> None:
    """Refuse, before any adapter loads, what diffusers' adapter pipelines cannot run: another family,
    another kind of pass, a control mode, a late start, an end SD 1.x cannot make or that differs
    between SDXL's units."""
    first, unit = active[0]
    family = loaded.family_def.name
    if family not in PIPELINES:
        raise InvalidValue(f"controlnets[{first}].model", unit.model, f"a ControlNet on {loaded.name}: T2I-Adapters "
                                                                      "run on SD 1.x and SDXL models only")
    other = next((t for t in tasks if t not in TASKS), None)
    if other is not None:
        task = "the hires pass (image to image)" if "txt2img" in tasks else other
        raise InvalidValue(f"controlnets[{first}].model", unit.model, f"a ControlNet for {task}: T2I-Adapters steer "
                           "text to image only (diffusers has no adapter pipeline for image to image or inpainting)")
    for i, unit in active:
        where = f"controlnets[{i}]"
        if unit.control_mode != CONTROL_MODES[0]:
            raise InvalidValue(f"{where}.control_mode", unit.control_mode, f"{CONTROL_MODES[0]} with a T2I-Adapter "
                               "(the other modes weigh a ControlNet's layers)")
        if unit.union_type:
            raise InvalidValue(f"{where}.union_type", unit.union_type, "'' with a T2I-Adapter (it has no control "
                                                                       "types)")
        if unit.guidance_start > 0:
            raise InvalidValue(f"{where}.guidance_start", unit.guidance_start, "0 with a T2I-Adapter (diffusers' "
                               "adapter pipelines steer from the first step)")
        if family == "sd15" and unit.guidance_end < 1:
            raise InvalidValue(f"{where}.guidance_end", unit.guidance_end, "1 with a T2I-Adapter on SD 1.x "
                               "(diffusers' adapter pipeline steers every step; SDXL's can stop early)")
        if unit.guidance_end != active[0][1].guidance_end:
            raise InvalidValue(f"{where}.guidance_end", unit.guidance_end, f"unit {first}'s "
                               f"({active[0][1].guidance_end:g}) with T2I-Adapters: diffusers stops every adapter "
                               "at one step")


def check_size(adapter: Any, size: tuple[int, int], model: str, field: str) -> None:
    """A picture the adapter can unshuffle: its sides a multiple of the adapter's first downscale (SDXL's: 16)."""
    factor = adapter.downscale_factor
    for name, side in zip(("width", "height"), size):
        if side % factor:
            raise InvalidValue(name, side, f"a multiple of {factor} with the T2I-Adapter {model} ({field})")


def adapter_pipe(loaded: LoadedModel, adapters: Sequence[Any]) -> Any:
    """The model's adapter pipeline steered by `adapters` (in unit order; several: diffusers'
    MultiAdapter, which sums their weighted features). Built once with `from_pipe` (every component
    shared with the loaded model, at its dtype); later calls only swap the adapters in."""
    adapter = adapters[0] if len(adapters) == 1 else MultiAdapter(list(adapters))
    pipe = loaded.task_pipes.get(ADAPTED)
    if pipe is None:
        # The base's dtype, always: without it from_pipe casts the shared modules to fp32 in place.
        pipe = PIPELINES[loaded.family_def.name].from_pipe(loaded.pipe, adapter=adapter, torch_dtype=loaded.pipe.dtype)
        pipe.set_progress_bar_config(disable=True)
        loaded.task_pipes[ADAPTED] = pipe
    else:
        pipe.register_modules(adapter=adapter)
    return pipe


def adapter_arguments(pipe: Any, units: Sequence[ControlUnit], adapters: Sequence[Any],
                      maps: Sequence[Image.Image], size: tuple[int, int]) -> dict[str, Any]:
    """An adapter pass's arguments: each unit's map (grey for a one-channel adapter: the sketch ones),
    its weight, and SDXL's end."""
    maps = [m if m.size == size else m.resize(size, Image.Resampling.LANCZOS) for m in maps]
    maps = [m.convert("L") if a.config.in_channels == 1 else m.convert("RGB") for m, a in zip(maps, adapters)]
    weights = [u.weight for u in units]
    args: dict[str, Any] = ({"image": maps[0], "adapter_conditioning_scale": weights[0]} if len(maps) == 1
                            else {"image": maps, "adapter_conditioning_scale": weights})
    if isinstance(pipe, SDXLAdapterPipeline) and units[0].guidance_end < 1:
        args["adapter_conditioning_factor"] = units[0].guidance_end
    return args
