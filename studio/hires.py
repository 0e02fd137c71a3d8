"""Hires fix upscalers: how the first pass's result is enlarged before the second pass.

Latent upscalers resize the latents themselves (fast, adds detail but needs denoising strength
around 0.5 or more to clean up); image upscalers decode, resize the picture and encode it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image


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
    width, height = size
    target = (height // vae_scale, width // vae_scale)
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(latents, size=target, mode=mode, align_corners=False)
    return F.interpolate(latents, size=target, mode=mode)


def upscale_image(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    return image.resize(size, getattr(Image.Resampling, mode))
