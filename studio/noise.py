"""A1111's initial noise with variation seeds, bit for bit: its modules/rng.py (`ImageRNG.first`, `slerp`).

Pure torch, no pipeline: `first_noise` makes one noise tensor per image for a latent shape
(channels, h, w), as A1111 1.10 does for its "Variation seed", "Variation seed strength" and
"Resize seed from width/height":

- each image's noise is drawn from its own seeded generator (the one the pipeline then keeps using
  for a sampler's step noise, so it is handed in and advanced exactly as A1111 advances it);
- with a strength, the subseed's noise (a fresh generator per draw, as A1111's `randn(seed, shape)`
  reseeds the global one) is slerped in with A1111's slerp, quirks and all;
- with a resize, the noise is drawn at the old size and pasted, centred, into the seed's noise at
  the new size, so a picture keeps its composition at another size.

Everything is drawn in float32 on the generators' device, as A1111 draws it; the caller casts.
"""

from __future__ import annotations

from typing import Sequence

import torch

Shape = tuple[int, int, int]  # (channels, h, w) of one image's noise


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's slerp (from the PyTorch forum): normalised along dim 1, and when the two are nearly
    parallel it returns `low * val + high * (1 - val)` (val weighs the wrong end; kept as A1111 has it)."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


def seeded_randn(seed: int, shape: Sequence[int], device: torch.device | str) -> torch.Tensor:
    """A1111's `randn(seed, shape)` without a generator: the first draw after seeding. A local generator
    draws the same numbers as the reseeded global one, without touching the global state (threads)."""
    generator = torch.Generator(device).manual_seed(int(seed))
    return torch.randn(tuple(shape), device=device, generator=generator)


def resized_shape(shape: Shape, resize_from: tuple[int, int], cell: int = 8) -> Shape:
    """The shape the noise is drawn at: the old size's (width, height) in cells of `cell` pixels (A1111: 8),
    or `shape` itself when no resize is set (either side <= 0)."""
    width, height = resize_from
    if width <= 0 or height <= 0:
        return shape
    return (shape[0], height // cell, width // cell)


def paste_centred(noise: torch.Tensor, into: torch.Tensor) -> torch.Tensor:
    """`noise` laid over the middle of `into` (either may be the larger), as A1111's ImageRNG.first does."""
    dx = (into.shape[2] - noise.shape[2]) // 2
    dy = (into.shape[1] - noise.shape[1]) // 2
    w = noise.shape[2] if dx >= 0 else noise.shape[2] + 2 * dx
    h = noise.shape[1] if dy >= 0 else noise.shape[1] + 2 * dy
    tx, ty = max(dx, 0), max(dy, 0)
    dx, dy = max(-dx, 0), max(-dy, 0)
    into[:, ty:ty + h, tx:tx + w] = noise[:, dy:dy + h, dx:dx + w]
    return into


def image_noise(shape: Shape, seed: int, generator: torch.Generator, subseed: int | None = None,
                strength: float = 0.0, resize_from: tuple[int, int] = (0, 0), cell: int = 8) -> torch.Tensor:
    """One image's initial noise (channels, h, w). `generator` is the image's own, seeded with `seed`
    and not yet drawn from: it draws `shape` once, as the pipeline would have."""
    device = generator.device
    noise_shape = resized_shape(shape, resize_from, cell)
    subnoise = None
    if subseed is not None and strength != 0:
        subnoise = seeded_randn(subseed, noise_shape, device)
    if noise_shape != shape:
        noise = seeded_randn(seed, noise_shape, device)
    else:
        noise = torch.randn(shape, device=device, generator=generator)
    if subnoise is not None:
        noise = slerp(strength, noise, subnoise)
    if noise_shape != shape:
        noise = paste_centred(noise, torch.randn(shape, device=device, generator=generator))
    return noise


def first_noise(shape: Shape, seeds: Sequence[int], generators: Sequence[torch.Generator],
                subseeds: Sequence[int] | None = None, strength: float = 0.0,
                resize_from: tuple[int, int] = (0, 0), cell: int = 8) -> torch.Tensor:
    """The batch's initial noise (batch, channels, h, w): image i from seeds[i] (its generator) and
    subseeds[i] (0 past the list's end, as A1111)."""
    images = []
    for i, (seed, generator) in enumerate(zip(seeds, generators)):
        subseed = None if subseeds is None else (subseeds[i] if i < len(subseeds) else 0)
        images.append(image_noise(shape, seed, generator, subseed, strength, resize_from, cell))
    return torch.stack(images)
