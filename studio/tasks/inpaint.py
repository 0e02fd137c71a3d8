"""Inpainting: repaint where the mask is white, keep the original pixels everywhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import images
from .common import img2img_steps, repeat_conditioning

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..request import GenerationRequest


def plan(request: GenerationRequest) -> list[int]:
    return [img2img_steps(request.steps, request.denoising_strength)[1]]


def run(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
    request = ctx.request
    size = (request.width, request.height)
    original = images.resize(request.init_image.convert("RGB"), *size, request.resize_mode)
    mask = images.prepare_mask(request.mask, size, request.resize_mode,
                               request.inpaint_mode == "Inpaint not masked", request.mask_blur)
    padding = request.masked_padding if request.inpaint_area == "Only masked" else None
    return repaint(ctx, conditioning, steps[0], original, mask, request.masked_content, padding)


def repaint(ctx: Any, conditioning: dict, steps: int, original: Image.Image, mask: Image.Image, content: str,
            padding: int | None = None, size: tuple[int, int] | None = None,
            strength: float | None = None) -> list[Any]:
    """`original` (at the generation size) repainted where `mask` is white, through the family's inpaint
    pipeline. `content`: what the masked area starts as (original, fill, latent noise, latent nothing);
    `padding`: "Only masked"'s, None for the whole picture. Outpainting runs this too (outpaint.py), and the
    detailer for each region it finds (detail.py: its own `size` for the region, its own `strength`)."""
    request = ctx.request
    size = size or original.size
    strength = request.denoising_strength if strength is None else strength
    if steps == 0 or mask.getbbox() is None:  # nothing to repaint
        return [original.copy() for _ in ctx.seeds]
    # "Only masked": repaint the masked region (plus padding) at the full generation size.
    box = images.masked_box(mask, padding, size[0] / size[1]) if padding is not None else None
    work, work_mask = original, mask
    if box is not None:
        work, work_mask = original.crop(box).resize(size, images.LANCZOS), mask.crop(box).resize(size, images.LANCZOS)
    if content == "fill":
        work = images.fill_masked(work, work_mask)
    pipe = ctx.pipe_for("inpaint")
    extra: dict[str, Any] = {"num_images_per_prompt": len(ctx.seeds)}  # the batch (the detailer's: one)
    image: Any = work
    if content in ("latent noise", "latent nothing"):
        # One noised latent per image (each from its own seed): the input already holds the batch.
        image, extra["masked_image_latents"] = latent_noise(pipe, work, work_mask, ctx, content == "latent noise")
        extra["num_images_per_prompt"] = 1
        conditioning = repeat_conditioning(conditioning, len(ctx.seeds))
    asked, _ = img2img_steps(request.steps, strength)
    generated = ctx.run(
        pipe, steps, size, **conditioning, image=image, mask_image=work_mask, width=size[0], height=size[1],
        strength=strength, num_inference_steps=asked, output_type="pil", **extra,
    )
    results = []
    for picture in generated:
        if box is not None:  # back into the full picture at the region's own size
            full = original.copy()
            full.paste(picture.resize((box[2] - box[0], box[3] - box[1]), images.LANCZOS), box[:2])
            picture = full
        # Outside the mask the original pixels stay, as A1111 does: no VAE round trip there.
        results.append(images.composite(original, picture, mask))
    return results


def latent_noise(pipe: Any, picture: Any, mask: Any, ctx: Any,
                 noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A1111's "latent noise": the picture's latents with seeded noise where the mask is, one per
    image of the batch (image i from seed + i, as a batch of one with that seed would have); with
    `noise` False its "latent nothing": zeros there."""
    import torch

    device, dtype = ctx.loaded.device.device, pipe.vae.dtype
    pixels = pipe.image_processor.preprocess(picture).to(device=device, dtype=dtype)
    hole = pipe.mask_processor.preprocess(mask).to(device=device, dtype=dtype)
    noised = []
    for seed, generator in zip(ctx.seeds, ctx.generators()):
        with torch.no_grad():
            latents = pipe._encode_vae_image(pixels, generator=generator)
        cell = torch.nn.functional.interpolate(hole, size=latents.shape[-2:])
        fill = torch.randn(latents.shape, generator=torch.Generator("cpu").manual_seed(seed)).to(latents) \
            if noise else torch.zeros_like(latents)
        noised.append(latents * (1 - cell) + fill * cell)
    latents = torch.cat(noised)
    cell = torch.nn.functional.interpolate(hole, size=latents.shape[-2:]).to(latents.dtype)
    return latents, latents * (cell < 0.5)
