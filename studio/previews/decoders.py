"""Preview decoders: latent (x0) -> a PIL image, by a linear projection or an autoencoder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PIL import Image

from ..families import PreviewData

if TYPE_CHECKING:
    import torch

Decoder = Callable[["torch.Tensor"], Image.Image]


def to_image(rgb: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """(h, w, 3) in [0, 1] -> a PIL image of `size` (width, height). Round: truncation darkens."""
    array = np.rint(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(array))
    return image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)


def latent2rgb_decoder(preview: PreviewData, size: tuple[int, int]) -> Decoder:
    factors = np.asarray(preview.latent_rgb_factors, dtype=np.float32)  # (channels, 3)
    bias = np.asarray(preview.latent_rgb_bias, dtype=np.float32)

    def decode(x0: torch.Tensor) -> Image.Image:
        # numpy, single-threaded: torch ops here would start a second OpenMP team that competes
        # with the denoising loop for the CPU cores.
        latent = x0[0].detach().float().cpu().numpy()
        rgb = np.einsum("chw,cr->hwr", latent, factors) + bias
        return to_image((rgb + 1) / 2, size)

    return decode


def vae_decoder(loaded: Any, size: tuple[int, int]) -> Decoder:
    """The model's own VAE, fed as its pipeline feeds it (the family's latent format says how)."""
    import torch

    latent, pipe = loaded.family_def.latent, loaded.pipe

    @torch.no_grad()
    def decode(x0: torch.Tensor) -> Image.Image:
        image = latent.decode(latent.grid(x0[:1], pipe, size), pipe)[0].float().permute(1, 2, 0).cpu().numpy()
        return to_image((image + 1) / 2, size)

    return decode


def autoencoder_decoder(vae: Any, size: tuple[int, int]) -> Decoder:
    """A TAESD on latent grids: latents / scaling_factor + shift_factor, as its config says (SD's and
    FLUX's TAESDs: 1 and 0, they read the denoiser's latents as they are)."""
    import torch

    scale = float(vae.config.get("scaling_factor") or 1.0)
    shift = float(vae.config.get("shift_factor") or 0.0)

    @torch.no_grad()
    def decode(x0: torch.Tensor) -> Image.Image:
        latent = x0[:1].to(vae.device, vae.dtype) / scale + shift
        image = vae.decode(latent, return_dict=False)[0][0].float().permute(1, 2, 0).cpu().numpy()
        return to_image((image + 1) / 2, size)

    return decode
