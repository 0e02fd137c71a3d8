"""Control pipelines on a loaded model's own weights, and ControlNets that cost nothing when idle.

diffusers runs every ControlNet on every step, multiplying its output by zero when its weight is 0
or the step is outside its start..end range. `SkippingMultiControlNet` does not run those at all,
and when no unit is active on a step it hands the UNet no residuals: that step is the plain model's
step, so a unit of weight 0 gives the image without ControlNet, bit for bit.
"""

from __future__ import annotations

from typing import Any, Sequence

import diffusers
import torch
from diffusers.models.controlnets.controlnet_flux import FluxMultiControlNetModel
from diffusers.models.controlnets.controlnet_sd3 import SD3MultiControlNetModel
from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel
from diffusers.models.controlnets.multicontrolnet_union import MultiControlNetUnionModel

from ..errors import InvalidValue
from ..loading import LoadedModel
from .units import CONTROL_MODES


def _add(before: Any, now: Any) -> Any:
    """Two ControlNets' residuals summed: tensors, lists of tensors, or None (none for those blocks)."""
    if before is None or now is None:
        return now if before is None else before
    if isinstance(before, (list, tuple)):
        return [a + b for a, b in zip(before, now)]
    return before + now


SOFT = 0.825  # A1111's per-layer factor away from the middle block, for the modes other than Balanced


def in_mode(down: Sequence[Any], mid: Any, mode: str, guided: bool) -> tuple[list[Any], Any]:
    """One SD ControlNet's residuals as its unit's control mode wants them (A1111's soft and CFG
    injection): Balanced as they are; otherwise layer i of n weighed by 0.825 ** (n - 1 - i) (the
    middle block keeps its weight), and for "ControlNet is more important" none on the negative half
    of a CFG batch (the first half, as diffusers builds it)."""
    if mode == CONTROL_MODES[0]:
        return list(down), mid
    layers = [*down, mid]
    layers = [r * SOFT ** (len(layers) - 1 - i) for i, r in enumerate(layers)]
    if mode == CONTROL_MODES[2] and guided:
        keep = torch.ones(layers[0].shape[0], 1, 1, 1, dtype=layers[0].dtype, device=layers[0].device)
        keep[: len(keep) // 2] = 0
        layers = [r * keep for r in layers]
    return layers[:-1], layers[-1]


class Skipping:
    """What both multi-ControlNets below add to diffusers' own: only the units whose scale on this step
    is not zero run, their outputs summed; with none, no residuals at all. `runs` counts the ControlNet
    calls made (the benchmark and tests read it). `modes`: each unit's control mode; `guided`: whether
    the pass's batch holds CFG's negative half (set by each pass)."""

    def __init__(self, controlnets: Sequence[Any], modes: Sequence[str] = ()):
        super().__init__(list(controlnets))
        self.runs = 0
        self.modes = list(modes) or [CONTROL_MODES[0]] * len(controlnets)
        self.guided = False

    def run_active(self, inputs: list, scales: list[float], call: Any) -> tuple[Any, Any]:
        total: tuple[Any, Any] = (None, None)
        for given, scale, net, mode in zip(inputs, scales, self.nets, self.modes):
            if float(scale) == 0.0:
                continue
            self.runs += 1
            total = tuple(_add(a, b) for a, b in zip(total, call(net, given, scale, mode)))  # type: ignore[assignment]
        return total


class SkippingMultiControlNet(Skipping, MultiControlNetModel):
    """diffusers' multi-ControlNet for SD's ControlNets (one unit or several): (down, mid) residuals."""

    def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, controlnet_cond: list,
                conditioning_scale: list[float], **kwargs: Any) -> tuple[Any, Any]:
        return self.run_active(controlnet_cond, conditioning_scale, lambda net, image, scale, mode: in_mode(*net(
            sample=sample, timestep=timestep, encoder_hidden_states=encoder_hidden_states, controlnet_cond=image,
            conditioning_scale=scale, **kwargs), mode, self.guided))


class SkippingFluxMultiControlNet(Skipping, FluxMultiControlNetModel):
    """The same for FLUX's ControlNets: residuals for the transformer's double and single blocks."""

    def forward(self, hidden_states: Any, controlnet_cond: list, controlnet_mode: list, conditioning_scale: list[float],
                **kwargs: Any) -> tuple[Any, Any]:
        kwargs.pop("return_dict", None)
        return self.run_active(list(zip(controlnet_cond, controlnet_mode)), conditioning_scale,
                               lambda net, given, scale, mode: net(
                                   hidden_states=hidden_states, controlnet_cond=given[0], conditioning_scale=scale,
                                   controlnet_mode=given[1][:, None] if net.union else None, return_dict=False,
                                   **kwargs))


class SkippingMultiControlNetUnion(Skipping, MultiControlNetUnionModel):
    """The same for SDXL's union ControlNets: each unit runs its ControlNet with its one control type."""

    def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, controlnet_cond: list,
                control_type: list, control_type_idx: list, conditioning_scale: list[float],
                **kwargs: Any) -> tuple[Any, Any]:
        return self.run_active(list(zip(controlnet_cond, control_type, control_type_idx)), conditioning_scale,
                               lambda net, given, scale, mode: in_mode(*net(
                                   sample=sample, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                                   controlnet_cond=given[0], control_type=given[1], control_type_idx=given[2],
                                   conditioning_scale=scale, **kwargs), mode, self.guided))


class SkippingSD3MultiControlNet(Skipping, SD3MultiControlNetModel):
    """The same for SD3's ControlNets: one residual per transformer block it steers."""

    def forward(self, hidden_states: Any, controlnet_cond: list, conditioning_scale: list[float],
                **kwargs: Any) -> tuple[Any]:
        kwargs.pop("return_dict", None)
        samples, _ = self.run_active(controlnet_cond, conditioning_scale, lambda net, image, scale, mode: (net(
            hidden_states=hidden_states, controlnet_cond=image, conditioning_scale=scale, return_dict=False,
            **kwargs)[0], None))
        return (samples,)  # the pipeline reads [0]; None: no residuals on this step


# The multi-ControlNet wrapper for each kind of ControlNet (the keys of Family.control_pipelines).
MULTI = {"ControlNetModel": SkippingMultiControlNet, "ControlNetUnionModel": SkippingMultiControlNetUnion,
         "FluxControlNetModel": SkippingFluxMultiControlNet, "SD3ControlNetModel": SkippingSD3MultiControlNet}


def check_supported(loaded: LoadedModel) -> Any:
    """The family's control pipelines by kind of ControlNet, or a clear refusal for a family without them."""
    kinds = loaded.family_def.control_pipelines
    if not kinds:
        raise InvalidValue("controlnets", loaded.name, "a model of a family with ControlNet support (SD 1.x, SDXL, "
                                                       "SD3, FLUX)")
    return kinds


def control_pipe(loaded: LoadedModel, task: str, nets: Sequence[Any], modes: Sequence[str] = ()) -> Any:
    """The model's ControlNet pipeline for a task, steered by `nets` (in unit order, each in its control
    mode, all of one kind). Built once per task and kind with `from_pipe` (every component shared with
    the loaded model, at its dtype); later calls only swap the ControlNets in."""
    kind = type(nets[0]).__name__ if nets else loaded.family_def.controlnet_class
    names = check_supported(loaded).get(kind, {})
    if task not in names or loaded.inpainting:
        raise InvalidValue("task", task, f"with ControlNet on {loaded.name}: {', '.join(names)}"
                                         + (" (not on a dedicated inpainting model)" if loaded.inpainting else ""))
    multi = MULTI[kind](nets, modes)
    key = f"{kind}:{task}"
    pipe = loaded.task_pipes.get(key)
    if pipe is None:
        # The base's dtype, always: without it from_pipe casts the shared modules to fp32 in place.
        pipe = getattr(diffusers, names[task]).from_pipe(loaded.pipe, controlnet=multi, torch_dtype=loaded.pipe.dtype)
        pipe.set_progress_bar_config(disable=True)
        loaded.task_pipes[key] = pipe
    else:
        pipe.register_modules(controlnet=multi)
    return pipe
