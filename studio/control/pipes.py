"""Control pipelines on a loaded model's own weights, and ControlNets that cost nothing when idle.

diffusers runs every ControlNet on every step, multiplying its output by zero when its weight is 0
or the step is outside its start..end range. `SkippingMultiControlNet` does not run those at all,
and when no unit is active on a step it hands the UNet no residuals: that step is the plain model's
step, so a unit of weight 0 gives the image without ControlNet, bit for bit.
"""

from __future__ import annotations

from typing import Any, Sequence

import diffusers
from diffusers.models.controlnets.controlnet_flux import FluxMultiControlNetModel
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

from ..errors import InvalidValue
from ..loading import LoadedModel


class SkippingMultiControlNet(MultiControlNetModel):
    """diffusers' multi-ControlNet for SD's ControlNets (one unit or several), running only the units whose scale on this
    step is not zero. `runs` counts the ControlNet calls made (the benchmark and tests read it)."""

    def __init__(self, controlnets: Sequence[Any]):
        super().__init__(list(controlnets))
        self.runs = 0

    def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, controlnet_cond: list,
                conditioning_scale: list[float], **kwargs: Any) -> tuple[Any, Any]:
        down, mid = None, None
        for image, scale, net in zip(controlnet_cond, conditioning_scale, self.nets):
            if float(scale) == 0.0:
                continue
            self.runs += 1
            down_samples, mid_sample = net(sample=sample, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                                           controlnet_cond=image, conditioning_scale=scale, **kwargs)
            if down is None:
                down, mid = list(down_samples), mid_sample
            else:
                down = [before + now for before, now in zip(down, down_samples)]
                mid = mid + mid_sample
        return down, mid


class SkippingFluxMultiControlNet(FluxMultiControlNetModel):
    """The same for FLUX's ControlNets (their outputs go to the transformer's blocks)."""

    def __init__(self, controlnets: Sequence[Any]):
        super().__init__(list(controlnets))
        self.runs = 0

    def forward(self, hidden_states: Any, controlnet_cond: list, controlnet_mode: list, conditioning_scale: list[float],
                **kwargs: Any) -> tuple[Any, Any]:
        kwargs.pop("return_dict", None)
        blocks, singles = None, None
        for image, mode, scale, net in zip(controlnet_cond, controlnet_mode, conditioning_scale, self.nets):
            if float(scale) == 0.0:
                continue
            self.runs += 1
            block, single = net(hidden_states=hidden_states, controlnet_cond=image, conditioning_scale=scale,
                                controlnet_mode=mode[:, None] if net.union else None, return_dict=False, **kwargs)
            if blocks is None:
                blocks, singles = block, single
            else:
                blocks = [a + b for a, b in zip(blocks, block)] if block is not None else blocks
                singles = [a + b for a, b in zip(singles, single)] if single is not None else singles
        return blocks, singles


# The multi-ControlNet wrapper for each kind of ControlNet (Family.controlnet_class).
MULTI = {"ControlNetModel": SkippingMultiControlNet, "FluxControlNetModel": SkippingFluxMultiControlNet}


def check_supported(loaded: LoadedModel) -> Any:
    """The family's control pipelines by task, or a clear refusal for a family without them."""
    names = loaded.family_def.control_pipelines
    if not names:
        raise InvalidValue("controlnets", loaded.name, "a model of a family with ControlNet support (SD 1.x, SDXL, "
                                                       "FLUX)")
    return names


def control_pipe(loaded: LoadedModel, task: str, nets: Sequence[Any]) -> Any:
    """The model's ControlNet pipeline for a task, steered by `nets` (in unit order). Built once per
    task with `from_pipe` (every component shared with the loaded model, at its dtype); later calls
    only swap the ControlNets in."""
    names = check_supported(loaded)
    if task not in names or loaded.inpainting:
        raise InvalidValue("task", task, f"with ControlNet on {loaded.name}: {', '.join(names)}"
                                         + (" (not on a dedicated inpainting model)" if loaded.inpainting else ""))
    multi = MULTI[loaded.family_def.controlnet_class](nets)
    key = f"controlnet:{task}"
    pipe = loaded.task_pipes.get(key)
    if pipe is None:
        # The base's dtype, always: without it from_pipe casts the shared modules to fp32 in place.
        pipe = getattr(diffusers, names[task]).from_pipe(loaded.pipe, controlnet=multi, torch_dtype=loaded.pipe.dtype)
        pipe.set_progress_bar_config(disable=True)
        loaded.task_pipes[key] = pipe
    else:
        pipe.register_modules(controlnet=multi)
    return pipe
