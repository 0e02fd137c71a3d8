"""SD upscale (A1111's img2img script): the picture enlarged by an upscaler, then repainted tile by tile
at the request's width x height with image to image, the tiles' overlaps blended, so a picture larger
than one step can hold is detailed by the model. Tiles are laid out as A1111's `split_grid` does, each
tile runs with the request's seed, progress counts every tile's steps, and the preview shows the tile
being worked on. Reproducible from the infotext (its SD upscale keys and the picture)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .common import img2img_steps, whole_picture

if TYPE_CHECKING:
    from ..request import GenerationRequest


def target_size(request: GenerationRequest) -> tuple[int, int]:
    """The result's size: the picture's times the scale."""
    width, height = request.init_image.size
    return max(1, round(width * request.sd_upscale_scale)), max(1, round(height * request.sd_upscale_scale))


def grid(size: tuple[int, int], tile: tuple[int, int], overlap: int) -> list[tuple[int, int, int, int]]:
    """Tile boxes over `size` as A1111's split_grid places them: as few as cover it with at least
    `overlap` pixels shared between neighbours, spread evenly, the last flush with the edge."""
    boxes_by_axis = []
    for length, side in zip(size, tile):
        count = max(1, math.ceil((length - overlap) / (side - overlap))) if length > side else 1
        step = (length - side) / (count - 1) if count > 1 else 0
        boxes_by_axis.append([min(int(k * step), length - side) for k in range(count)])
    xs, ys = boxes_by_axis
    return [(x, y, x + tile[0], y + tile[1]) for y in ys for x in xs]


def tile_count(request: GenerationRequest) -> int:
    return len(grid(target_size(request), (request.width, request.height), request.sd_upscale_overlap))


def plan(request: GenerationRequest) -> list[int]:
    return [img2img_steps(request.steps, request.denoising_strength)[1]] * tile_count(request)


def _weights(box: tuple[int, int, int, int], size: tuple[int, int], overlap: int) -> np.ndarray:
    """A tile's blend weights: 1 inside, ramping down across the overlap on sides that meet a neighbour
    (never at the picture's own edges)."""
    x0, y0, x1, y1 = box
    ramp_x, ramp_y = np.ones(x1 - x0), np.ones(y1 - y0)
    if overlap > 0:
        fade = (np.arange(overlap) + 1) / (overlap + 1)
        if x0 > 0:
            ramp_x[:overlap] = np.minimum(ramp_x[:overlap], fade)
        if x1 < size[0]:
            ramp_x[-overlap:] = np.minimum(ramp_x[-overlap:], fade[::-1])
        if y0 > 0:
            ramp_y[:overlap] = np.minimum(ramp_y[:overlap], fade)
        if y1 < size[1]:
            ramp_y[-overlap:] = np.minimum(ramp_y[-overlap:], fade[::-1])
    return np.outer(ramp_y, ramp_x)[..., None]


def blend(size: tuple[int, int], boxes: list[tuple[int, int, int, int]], tiles: list[Image.Image],
          overlap: int) -> Image.Image:
    """The tiles put together, their overlaps blended by linear ramps."""
    total = np.zeros((size[1], size[0], 3))
    weight = np.zeros((size[1], size[0], 1))
    for box, tile in zip(boxes, tiles):
        w = _weights(box, size, overlap)
        x0, y0, x1, y1 = box
        total[y0:y1, x0:x1] += np.asarray(tile.convert("RGB"), dtype=np.float64) * w
        weight[y0:y1, x0:x1] += w
    return Image.fromarray(np.clip(np.round(total / np.maximum(weight, 1e-8)), 0, 255).astype(np.uint8), "RGB")


def run(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
    """Upscale the init image, then image to image each tile (the request's seed for every one)."""
    request = ctx.request
    tile = (request.width, request.height)
    size = target_size(request)
    start = ctx.upscale(request.init_image.convert("RGB"), size, request.sd_upscale_upscaler, "sd_upscale_upscaler")
    boxes = grid(size, tile, request.sd_upscale_overlap)
    asked, _ = img2img_steps(request.steps, request.denoising_strength)
    done = []
    for box, count in zip(boxes, steps):
        ctx.stop_here()  # between tiles as between steps
        piece = start.crop(box)
        if count == 0:  # strength 0: the upscaled picture as it is
            done.append(piece)
        elif ctx.loaded.inpainting:
            done.append(whole_picture(ctx, conditioning, count, piece, request.denoising_strength)[0])
        else:
            done.append(ctx.run(ctx.pipe_for("img2img"), count, tile, **conditioning, image=piece,
                                strength=request.denoising_strength, num_inference_steps=asked,
                                num_images_per_prompt=1, output_type="pil")[0])
    return [blend(size, boxes, done, request.sd_upscale_overlap)]
