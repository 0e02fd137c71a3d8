"""Hires fix: the first pass's result enlarged, then repainted by an img2img pass at the larger size.

Latent upscalers resize the latents themselves (fast, adds detail but needs denoising strength
around 0.5 or more to clean up); image upscalers decode, resize the picture and encode it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from .common import img2img_steps, repeat_conditioning

if TYPE_CHECKING:
    import torch

    from ..request import GenerationRequest


@dataclass(frozen=True)
class Upscaler:
    name: str
    space: str  # "latent" | "image"
    mode: str  # torch interpolate mode for latents, PIL filter name for images


UPSCALERS: dict[str, Upscaler] = {u.name: u for u in (
    Upscaler("Latent", "latent", "bilinear"),
    Upscaler("Latent (bicubic)", "latent", "bicubic"),
    Upscaler("Latent (nearest-exact)", "latent", "nearest-exact"),
    Upscaler("Lanczos", "image", "LANCZOS"),
    Upscaler("Nearest", "image", "NEAREST"),
)}


def upscale_latents(latents: torch.Tensor, size: tuple[int, int], mode: str, vae_scale: int = 8) -> torch.Tensor:
    """Latents resized for a pixel size (width, height); latents are 1/vae_scale of it (8 for SD)."""
    import torch.nn.functional as F

    width, height = size
    target = (height // vae_scale, width // vae_scale)
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(latents, size=target, mode=mode, align_corners=False)
    return F.interpolate(latents, size=target, mode=mode)


def upscale_image(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    return image.resize(size, getattr(Image.Resampling, mode))


def first_pass_output(request: GenerationRequest) -> str:
    """What the first pass hands over: latents for a latent upscaler, pictures otherwise."""
    return "latent" if request.hires and UPSCALERS[request.hires_upscaler].space == "latent" else "pil"


def planned_steps(request: GenerationRequest) -> int:
    """User steps of the hires pass: its strength times its own steps (0 = the first pass's)."""
    return img2img_steps(request.hires_steps or request.steps, request.hires_strength)[1]


def second_pass(ctx: Any, conditioning: dict, first: Any, steps: int) -> list[Any]:
    """Enlarge the first pass's images (or latents) and repaint them at the hires size."""
    import torch

    request = ctx.request
    upscaler = UPSCALERS[request.hires_upscaler]
    size = request.hires_size
    pipe = ctx.loaded.pipe
    fam = ctx.loaded.family_def
    if upscaler.space == "latent":
        first = fam.latent.grid(first, pipe, (request.width, request.height))  # FLUX's packed tokens...: a grid
        start = upscale_latents(first, size, upscaler.mode, pipe.vae_scale_factor)
        takes_latents = fam.latent_img2img and (ctx.control is None or fam.control_latent_img2img)
        if not takes_latents and request.hires_strength > 0:
            start = decode_latents(ctx.loaded, start)  # its img2img takes pictures only (Z-Image; FLUX's with ControlNet)
    else:
        start = [upscale_image(image, size, upscaler.mode) for image in first]
    if request.hires_strength <= 0:
        return decode_latents(ctx.loaded, start) if isinstance(start, torch.Tensor) else start
    asked, _ = img2img_steps(request.hires_steps or request.steps, request.hires_strength)
    # The input already holds one picture per image of the batch: one embedding each, not n x n.
    return list(ctx.run(
        ctx.pipe_for("img2img"), steps, size, **repeat_conditioning(conditioning, len(ctx.seeds)),
        image=start, strength=request.hires_strength, num_inference_steps=asked, num_images_per_prompt=1,
        output_type="pil",
    ))


def decode_latents(loaded: Any, grid: torch.Tensor) -> list[Any]:
    """Latent grids as pictures, through the model's VAE as its pipeline decodes (its latent format)."""
    import torch

    pipe = loaded.pipe
    with torch.no_grad():
        decoded = loaded.family_def.latent.decode(grid, pipe)
    return pipe.image_processor.postprocess(decoded, output_type="pil")
