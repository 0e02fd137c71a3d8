"""Text to image, with the optional hires fix pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import InvalidValue
from ..upscalers import faces
from . import detail, hires
from .common import whole_picture

if TYPE_CHECKING:
    from ..request import GenerationRequest


@detail.planned
def plan(request: GenerationRequest) -> list[int]:
    return [request.steps] + ([hires.planned_steps(request)] if request.hires else [])


@detail.post_pass  # the detailer after this task's passes
@faces.post_pass  # face restoration before it, as A1111 restores faces before ADetailer's pass
def run(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
    request = ctx.request
    if ctx.loaded.inpainting:
        if request.subseed_strength > 0 or request.seed_resize_from_w > 0:  # variation_fields.active
            raise InvalidValue("subseed_strength" if request.subseed_strength > 0 else "seed_resize_from_w",
                               request.subseed_strength or request.seed_resize_from_w,
                               f"0 for {ctx.loaded.name}: an inpainting model paints a grey picture, which takes "
                               "no variation noise")
        if request.hires:
            raise InvalidValue("hires", True, f"a regular model: {ctx.loaded.name} is an inpainting model")
        grey = Image.new("RGB", (request.width, request.height), (127, 127, 127))
        return whole_picture(ctx, conditioning, steps[0], grey, 1.0)
    first = ctx.run(
        ctx.pipe_for("txt2img"), request.steps, (request.width, request.height), **conditioning,
        num_inference_steps=request.steps, width=request.width, height=request.height,
        num_images_per_prompt=request.batch_size, output_type=hires.first_pass_output(request),
        variation_noise=True,  # A1111's variation seeds, when asked: studio/engine/variation.py
    )
    if not request.hires:
        return list(first)
    return hires.second_pass(ctx, conditioning, first, steps[-1])
