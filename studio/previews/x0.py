"""Capturing the predicted clean latent (x0) at every denoising step, for every scheduler.

diffusers' step callback only sees the noisy latent of the *next* step; previews want x0, which is
much sharper. Schedulers expose x0 in different places, so each mechanism is one small function,
and `MECHANISMS` says (as data) which one a scheduler class uses. `X0Tap` wraps the `step` of one
per-generation scheduler instance (never the class) to hand each x0 to a callback.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch

X0 = Callable[[Any, Any, torch.Tensor, Any, torch.Tensor], torch.Tensor]


def from_output(field: str) -> X0:
    """x0 returned by step() itself, e.g. `pred_original_sample` (Euler, DDIM...) or `denoised` (LCM)."""

    def x0(scheduler, output, model_output, timestep, sample):
        return getattr(output, field)

    x0.__name__ = f"output.{field}"
    return x0


def from_model_outputs(scheduler, output, model_output, timestep, sample) -> torch.Tensor:
    """Multistep data-prediction solvers (DPM-Solver++, UniPC) keep x0 as their last model output."""
    return scheduler.model_outputs[-1]


def from_alphas(scheduler, output, model_output, timestep, sample) -> torch.Tensor:
    """Computed from the cumulative alphas at `timestep` (PNDM, DEIS, TCD), per prediction type."""
    alpha = scheduler.alphas_cumprod.to(sample.device)[int(timestep)].to(sample.dtype)
    sqrt_alpha, sqrt_one_minus = alpha.sqrt(), (1 - alpha).sqrt()
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return (sample - sqrt_one_minus * model_output) / sqrt_alpha
    if kind == "v_prediction":
        return sqrt_alpha * sample - sqrt_one_minus * model_output
    return model_output  # "sample": the model predicts x0 itself


def from_flow(scheduler, output, model_output, timestep, sample) -> torch.Tensor:
    """Flow matching (SD3, Flux): the model predicts the velocity; x0 = x_t - sigma_t * v."""
    index = scheduler.step_index - 1 if scheduler.step_index else 0  # step() has advanced it
    sigma = scheduler.sigmas[index].to(sample.device, sample.dtype)
    return sample - sigma * model_output


# Scheduler class -> mechanism. Anything not listed falls back to the first that applies in
# `mechanism_for` (a returned pred_original_sample, then the alphas).
MECHANISMS: dict[str, X0] = {
    "EulerDiscreteScheduler": from_output("pred_original_sample"),
    "EulerAncestralDiscreteScheduler": from_output("pred_original_sample"),
    "HeunDiscreteScheduler": from_output("pred_original_sample"),
    "LMSDiscreteScheduler": from_output("pred_original_sample"),
    "KDPM2DiscreteScheduler": from_output("pred_original_sample"),
    "KDPM2AncestralDiscreteScheduler": from_output("pred_original_sample"),
    "DPMSolverSDEScheduler": from_output("pred_original_sample"),
    "DDIMScheduler": from_output("pred_original_sample"),
    "DDPMScheduler": from_output("pred_original_sample"),
    "LCMScheduler": from_output("denoised"),
    "DPMSolverMultistepScheduler": from_model_outputs,
    "DPMSolverSinglestepScheduler": from_model_outputs,
    "UniPCMultistepScheduler": from_model_outputs,
    "DEISMultistepScheduler": from_alphas,  # its model_outputs hold epsilon for algorithm "deis"
    "PNDMScheduler": from_alphas,
    "TCDScheduler": from_alphas,  # returns pred_noised_sample, which is not x0
    "FlowMatchEulerDiscreteScheduler": from_flow,
    "FlowMatchLCMScheduler": from_flow,
}


def mechanism_for(scheduler: Any) -> X0:
    """The x0 mechanism for this scheduler instance (its config can rule a listed one out)."""
    name = type(scheduler).__name__
    mechanism = MECHANISMS.get(name)
    config = scheduler.config
    if mechanism is from_model_outputs and (
        not str(config.get("algorithm_type", "dpmsolver++")).endswith("++") or not config.get("predict_x0", True)
    ):
        mechanism = from_alphas  # noise-prediction variants keep epsilon in model_outputs
    if mechanism is None:
        mechanism = from_alphas if hasattr(scheduler, "alphas_cumprod") else from_output("pred_original_sample")
    return mechanism


class X0Tap:
    """Wraps one scheduler instance's step() and passes every predicted x0 to `on_x0`."""

    def __init__(self, scheduler: Any, on_x0: Callable[[torch.Tensor], None]):
        self.mechanism = mechanism_for(scheduler)
        self.calls = 0
        original = scheduler.step

        # wraps() keeps step's signature visible: pipelines pass `generator` and `eta` only to a
        # step() whose signature names them, and without the generator ancestral noise is unseeded.
        @functools.wraps(original)
        def step(model_output, timestep, sample, *args, return_dict: bool = True, **kwargs):
            output = original(model_output, timestep, sample, *args, return_dict=True, **kwargs)
            self.calls += 1
            on_x0(self.mechanism(scheduler, output, model_output, timestep, sample))
            return output if return_dict else output.to_tuple()

        scheduler.step = step  # an instance attribute: this one scheduler, created for one generation
