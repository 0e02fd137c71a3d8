"""How each family's denoiser holds its latents, and the way back to a grid and to the VAE.

A latent format (studio/families/base.py) names its layout; everything that reads latents (previews,
Fast decode, hires fix, the partial images of a Stop) asks the layout, never `vae.config` or a
4-D assumption:

- `grid(x, pipe, size)`: the latents a step or a pipeline hands over -> (batch, channels, h, w) in the
  denoiser's own (normalised) space at the VAE's scale: what latent2rgb, TAESD and hires read.
- `raw(grid, pipe)`: a grid as the pipeline hands it to `vae.decode` (4-D or 5-D).
- `image(decoded)`: the VAE's output as (batch, 3, H, W) (a video VAE adds a frame axis).

Layouts: `grid` (SD, SD3, Z-Image: already a grid), `flux` (FLUX.1: 2x2 patches as tokens), `klein`
(FLUX.2: tokens of 2x2-patchified latents normalised by the VAE's batch-norm statistics; its pipeline's
`output_type="latent"` hands the raw latents instead), `qwen` (Qwen-Image: 2x2 tokens of a one-frame
video latent, normalised per channel by the VAE's mean and std), `qwen21` (Qwen-Image 2.1: the same
normalisation, one token per latent cell, 64 channels, and an RGBA VAE whose alpha a preview lays over
white). torch is imported by the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Size = tuple[int, int]  # (width, height) of the image


@dataclass(frozen=True)
class Layout:
    name: str
    grid: Callable[[Any, Any, Size], Any]  # (latents handed over, pipe, size) -> the grid
    raw: Callable[[Any, Any], Any]  # (grid, pipe) -> what the VAE decodes
    image: Callable[[Any], Any] = lambda decoded: decoded


def _unscaled(grid: Any, pipe: Any) -> Any:
    config = pipe.vae.config
    return grid / float(config.get("scaling_factor") or 1.0) + float(config.get("shift_factor") or 0.0)


def _flux_grid(x: Any, pipe: Any, size: Size) -> Any:
    if x.dim() == 4:  # already a grid
        return x
    width, height = size
    return type(pipe)._unpack_latents(x, height, width, pipe.vae_scale_factor)


# -- FLUX.2 (Klein) ----------------------------------------------------------------------------------

def _klein_stats(pipe: Any, like: Any) -> tuple[Any, Any]:
    import torch

    bn = pipe.vae.bn
    mean = bn.running_mean.view(1, -1, 1, 1).to(like.device, like.dtype)
    std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(like.device, like.dtype)
    return mean, std


def _klein_grid(x: Any, pipe: Any, size: Size) -> Any:
    """Tokens (batch, h/16 * w/16, 128) -> (batch, 32, h/8, w/8), still normalised. The pipeline's own
    latent output is raw (un-normalised, 4-D): normalised here, so every grid is in one space."""
    pipeline = type(pipe)
    if x.dim() == 4:
        mean, std = _klein_stats(pipe, x)
        return pipeline._unpatchify_latents((pipeline._patchify_latents(x) - mean) / std)
    width, height = size
    batch, _, channels = x.shape
    return pipeline._unpatchify_latents(x.reshape(batch, height // 16, width // 16, channels).permute(0, 3, 1, 2))


def _klein_raw(grid: Any, pipe: Any) -> Any:
    pipeline = type(pipe)
    patches = pipeline._patchify_latents(grid)
    mean, std = _klein_stats(pipe, patches)
    return pipeline._unpatchify_latents(patches * std + mean)


# -- Qwen-Image --------------------------------------------------------------------------------------

def _qwen_grid(x: Any, pipe: Any, size: Size) -> Any:
    if x.dim() == 3:  # tokens, unpacked as the pipeline does: (batch, 16, 1, h, w)
        width, height = size
        x = type(pipe)._unpack_latents(x, height, width, pipe.vae_scale_factor)
    return x[:, :, 0] if x.dim() == 5 else x


def _qwen_raw(grid: Any, pipe: Any) -> Any:
    import torch

    config = pipe.vae.config
    mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1).to(grid.device, grid.dtype)
    std = torch.tensor(config.latents_std).view(1, -1, 1, 1, 1).to(grid.device, grid.dtype)
    return grid.unsqueeze(2) * std + mean


def _qwen_frame(decoded: Any) -> Any:
    return decoded[:, :, 0] if decoded.dim() == 5 else decoded


def _over_white(decoded: Any) -> Any:
    """Qwen-Image 2.1's VAE decodes RGBA: the colours laid over white by their alpha (in [-1, 1], white is 1),
    as its pipeline shows a picture's alpha to the VL encoder. The pipeline's own images keep the alpha."""
    frame = _qwen_frame(decoded)
    if frame.shape[1] != 4:
        return frame
    alpha = ((frame[:, 3:] + 1) / 2).clamp(0, 1)
    return frame[:, :3] * alpha + (1 - alpha)


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (
    Layout("grid", lambda x, pipe, size: x, _unscaled),
    Layout("flux", _flux_grid, _unscaled),
    Layout("klein", _klein_grid, _klein_raw),
    Layout("qwen", _qwen_grid, _qwen_raw, image=_qwen_frame),
    # 2.1's tokens are its latent cells (no 2x2 packing): its pipeline's `_unpack_latents` reads them all the same.
    Layout("qwen21", _qwen_grid, _qwen_raw, image=_over_white),
)}
