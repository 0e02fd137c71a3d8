"""A1111's variation seeds in a pipeline pass: the batch's initial noise (studio/noise.py) drawn in the
shape the family's pipeline draws its own, and handed over as its `latents` argument in its layout.

Each layout (studio/families/layouts.py) says how its pipeline draws the first noise of an image
(`NoiseShape`: channels and pixels per cell of the tensor `randn_tensor` fills) and how a batch of
those becomes `latents` (FLUX and Qwen pack 2x2 cells into tokens; FLUX.2 Klein and the grid families
take the unpacked tensor). So with no strength and no resize the noise is exactly the pipeline's own,
cell for cell, and a seed gives the picture it always gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .. import noise, variation_fields


@dataclass(frozen=True)
class NoiseShape:
    """How a layout's pipeline draws an image's first noise: `channels` per cell of `cell` pixels, and
    `pack(pipe, noise)` from (batch, channels, h, w) to its `latents`. The cell is read from the pipeline
    (its VAE's `vae_scale_factor`: 8 for SD, 16 for Qwen-Image 2.1, other for a tiny test model)."""

    channels: Callable[[Any], int]  # (latent format) -> channels of the drawn noise
    cell: Callable[[int], int]  # (the pipeline's vae_scale_factor) -> pixels a side per cell
    pack: Callable[[Any, torch.Tensor], torch.Tensor] = lambda pipe, x: x


def _pipeline_pack(pipe: Any, x: torch.Tensor) -> torch.Tensor:
    """The pipeline's own `_pack_latents` (FLUX, Qwen-Image: 2x2 cells a token; Qwen-Image 2.1: a cell a token)."""
    batch, channels, height, width = x.shape
    return type(pipe)._pack_latents(x, batch, channels, height, width)


NOISE_SHAPES: dict[str, NoiseShape] = {
    "grid": NoiseShape(lambda fmt: fmt.channels, lambda scale: scale),  # SD, SDXL, SD3, Z-Image
    "flux": NoiseShape(lambda fmt: fmt.channels, lambda scale: scale, _pipeline_pack),  # packed by the caller
    # FLUX.2 draws its noise patchified (4x the channels at twice the cell) and packs it itself.
    "klein": NoiseShape(lambda fmt: 4 * fmt.channels, lambda scale: 2 * scale),
    "qwen": NoiseShape(lambda fmt: fmt.channels, lambda scale: scale, _pipeline_pack),
    "qwen21": NoiseShape(lambda fmt: fmt.channels, lambda scale: scale, _pipeline_pack),
}


def subseeds(request: Any) -> list[int]:
    """Image i's variation seed: subseed + i (A1111's all_subseeds)."""
    return [variation_fields.image_subseed(request, i) for i in range(request.batch_size)]


def batch_noise(request: Any, latent_format: Any, vae_scale: int, size: tuple[int, int], seeds: list[int],
                generators: list[torch.Generator]) -> torch.Tensor:
    """The batch's first noise (batch, channels, h, w) as the family's pipeline would draw it, with the
    request's variation seed and seed resize; float32 on the generators' device."""
    spec = NOISE_SHAPES[latent_format.layout]
    cell = spec.cell(vae_scale)
    width, height = size
    shape = (spec.channels(latent_format), height // cell, width // cell)
    resize = (request.seed_resize_from_w, request.seed_resize_from_h)
    return noise.first_noise(shape, seeds, generators, subseeds(request), request.subseed_strength, resize, cell)


def initial_latents(request: Any, loaded: Any, pipe: Any, size: tuple[int, int], seeds: list[int],
                    generators: list[torch.Generator]) -> dict[str, torch.Tensor]:
    """The pass's `latents` argument when the request asks for variation noise, else nothing (the
    pipeline draws its own). The generators are advanced as the pipeline would have advanced them."""
    if not variation_fields.active(request):
        return {}
    latent_format = loaded.family_def.latent
    batch = batch_noise(request, latent_format, int(pipe.vae_scale_factor), size, seeds, generators)
    dtype = getattr(pipe, "dtype", torch.float32)
    packed = NOISE_SHAPES[latent_format.layout].pack(pipe, batch)
    return {"latents": packed.to(loaded.device.device, dtype)}
