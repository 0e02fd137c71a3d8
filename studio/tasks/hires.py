"""Hires fix: the first pass's result enlarged, then repainted by an img2img pass at the larger size.

Latent upscalers resize the latents themselves (fast, adds detail but needs denoising strength
around 0.5 or more to clean up); image upscalers decode, resize the picture (a pixel filter, or a
model upscaler of the upscalers folder: studio/upscalers/) and encode it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..upscalers import builtin
from .common import img2img_steps, repeat_conditioning

if TYPE_CHECKING:
    import torch

    from ..request import GenerationRequest


def upscale_latents(latents: torch.Tensor, size: tuple[int, int], mode: str, vae_scale: int = 8) -> torch.Tensor:
    """Latents resized for a pixel size (width, height); latents are 1/vae_scale of it (8 for SD)."""
    import torch.nn.functional as F

    width, height = size
    target = (height // vae_scale, width // vae_scale)
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(latents, size=target, mode=mode, align_corners=False)
    return F.interpolate(latents, size=target, mode=mode)


def first_pass_output(request: GenerationRequest) -> str:
    """What the first pass hands over: latents for a latent upscaler, pictures otherwise."""
    found = builtin(request.hires_upscaler)
    return "latent" if request.hires and found is not None and found.space == "latent" else "pil"


def planned_steps(request: GenerationRequest) -> int:
    """User steps of the hires pass: its strength times its own steps (0 = the first pass's)."""
    return img2img_steps(request.hires_steps or request.steps, request.hires_strength)[1]


def second_pass(ctx: Any, conditioning: dict, first: Any, steps: int) -> list[Any]:
    """Enlarge the first pass's images (or latents) and repaint them at the hires size."""
    import torch

    request = ctx.request
    upscaler = builtin(request.hires_upscaler)
    size = request.hires_size
    pipe = ctx.loaded.pipe
    fam = ctx.loaded.family_def
    if upscaler is not None and upscaler.space == "latent":
        first = fam.latent.grid(first, pipe, (request.width, request.height))  # FLUX's packed tokens...: a grid
        start = upscale_latents(first, size, upscaler.mode, pipe.vae_scale_factor)
        takes_latents = fam.latent_img2img and (ctx.control is None or fam.control_latent_img2img)
        if not takes_latents and request.hires_strength > 0:
            start = decode_latents(ctx.loaded, start)  # its img2img takes pictures only (Z-Image; FLUX's with ControlNet)
    else:  # a pixel filter, or a model upscaler (in tiles, Stop between them)
        start = [ctx.upscale(image, size, request.hires_upscaler) for image in first]
    if request.hires_strength <= 0:
        return decode_latents(ctx.loaded, start) if isinstance(start, torch.Tensor) else start
    asked, _ = img2img_steps(request.hires_steps or request.steps, request.hires_strength)
    # The input already holds one picture per image of the batch: one embedding each, not n x n.
    return list(ctx.run(
        ctx.pipe_for("img2img"), steps, size, **repeat_conditioning(conditioning, len(ctx.seeds)),
        image=start, strength=request.hires_strength, num_inference_steps=asked, num_images_per_prompt=1,
        output_type="pil", prompt_pass="hires",  # prompt editing: the hires pass's own schedule
    ))


def decode_latents(loaded: Any, grid: torch.Tensor) -> list[Any]:
    """Latent grids as pictures, through the model's VAE as its pipeline decodes (its latent format)."""
    import torch

    pipe = loaded.pipe
    with torch.no_grad():
        decoded = loaded.family_def.latent.decode(grid, pipe)
    return pipe.image_processor.postprocess(decoded, output_type="pil")
