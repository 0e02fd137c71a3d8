"""Image to image: the init image, resized, noised to the denoising strength and denoised; with SD
upscale, enlarged and repainted tile by tile (tiled.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import images
from ..upscalers import faces
from . import detail, tiled
from .common import img2img_steps, whole_picture

if TYPE_CHECKING:
    from ..request import GenerationRequest


@detail.planned
def plan(request: GenerationRequest) -> list[int]:
    if request.sd_upscale:
        return tiled.plan(request)
    return [img2img_steps(request.steps, request.denoising_strength)[1]]


@detail.post_pass  # the detailer after this task's passes
@faces.post_pass  # face restoration before it, as A1111 restores faces before ADetailer's pass
def run(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
    request = ctx.request
    if request.sd_upscale:
        return tiled.run(ctx, conditioning, steps)
    size = (request.width, request.height)
    init = images.resize(request.init_image.convert("RGB"), *size, request.resize_mode)
    if steps[0] == 0:  # strength 0: nothing to denoise; the (resized) input is the result
        return [init.copy() for _ in ctx.seeds]
    if ctx.loaded.inpainting:
        return whole_picture(ctx, conditioning, steps[0], init, request.denoising_strength)
    if request.denoising_strength >= 1:
        # Strength 1 starts from pure noise, exactly as text to image does (diffusers' img2img would
        # keep a trace of the input: its noise at the last timestep still weighs it by ~0.07).
        return list(ctx.run(
            ctx.pipe_for("txt2img"), steps[0], size, **conditioning, num_inference_steps=request.steps,
            width=size[0], height=size[1], num_images_per_prompt=request.batch_size, output_type="pil",
        ))
    asked, _ = img2img_steps(request.steps, request.denoising_strength)
    return list(ctx.run(
        ctx.pipe_for("img2img"), steps[0], size, **conditioning, image=init,
        strength=request.denoising_strength, num_inference_steps=asked,
        num_images_per_prompt=request.batch_size, output_type="pil",
    ))
