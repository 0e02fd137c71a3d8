"""Upscaling a picture: a built-in filter, or a model upscaler run as A1111 runs it (passes of the
model until the picture is as large as asked, at most three, then a Lanczos resize to the exact size),
each pass in tiles so a big picture fits in memory. Stop is checked before every layer of the network
(a forward pre-hook on each leaf module): a full ESRGAN tile takes seconds on a CPU, one layer of it
tens of milliseconds, so a Stop lands within a second there too."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator

from PIL import Image

from . import builtin
from ..errors import InvalidValue
from .folder import find
from .models import FACE, UpscalerInfo, Upscalers, face_restorers
from .work import MAX_PASSES

FACE_FIELD = "face_restorer"  # the field an upscale-door call for a face restoration model comes from
OVERLAP = 16  # input pixels of context around each tile: the seams vanish under it (its result is cropped)


def tile_size(device_kind: str) -> int:
    """Input pixels a tile's side: bounded on a CPU so a tile's activations stay small (an ESRGAN x4
    tile of 128 px is ~0.5 TFLOP, seconds there), larger on a GPU where fewer, larger tiles run faster.
    Stop does not wait for a tile: it is checked before every layer (`stopping`)."""
    return 512 if device_kind in ("cuda", "mps") else 128


def model_pass(model: Any, picture: Image.Image, tile: int, stop: Callable[[], None],
               on_tile: Callable[[int, int], None] | None = None) -> Image.Image:
    """One pass of a spandrel model over the picture (x its scale), tile by tile with OVERLAP pixels
    of context cropped from each tile's result."""
    import numpy as np
    import torch

    rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    source = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    height, width = source.shape[-2:]
    scale = int(model.scale)
    if str(model.tiling).endswith("INTERNAL"):  # the model tiles itself (spandrel's ModelTiling.INTERNAL)
        tile = max(width, height)
    out = torch.empty(1, 3, height * scale, width * scale)
    boxes = [(x, y, min(x + tile, width), min(y + tile, height))
             for y in range(0, height, tile) for x in range(0, width, tile)]
    device, dtype = next(iter(model.model.parameters())).device, next(iter(model.model.parameters())).dtype
    with stopping(model.model, stop):
        out = _tiles(model, source, boxes, scale, device, dtype, stop, on_tile, out)
    pixels = (out[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB")


@contextlib.contextmanager
def stopping(net: Any, stop: Callable[[], None]) -> Iterator[None]:
    """`stop` called before every leaf module of `net` runs (it raises to end the work there)."""
    handles = [m.register_forward_pre_hook(lambda *_: stop()) for m in net.modules() if not any(m.children())]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _tiles(model: Any, source: Any, boxes: list, scale: int, device: Any, dtype: Any, stop: Callable[[], None],
           on_tile: Callable[[int, int], None] | None, out: Any) -> Any:
    import torch
    import torch.nn.functional as F

    height, width = source.shape[-2:]
    for done, (x0, y0, x1, y1) in enumerate(boxes):
        stop()
        ex0, ey0, ex1, ey1 = max(0, x0 - OVERLAP), max(0, y0 - OVERLAP), min(width, x1 + OVERLAP), min(height, y1 + OVERLAP)
        part = source[..., ey0:ey1, ex0:ex1]
        pad_w, pad_h = model.size_requirements.get_padding(ex1 - ex0, ey1 - ey0)
        if pad_w or pad_h:
            part = F.pad(part, (0, pad_w, 0, pad_h), mode="replicate")
        with torch.inference_mode():
            result = model(part.to(device, dtype)).float().cpu()
        top, left = (y0 - ey0) * scale, (x0 - ex0) * scale
        out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
            result[..., top:top + (y1 - y0) * scale, left:left + (x1 - x0) * scale]
        if on_tile is not None:
            on_tile(done + 1, len(boxes))
    return out


def upscale(picture: Image.Image, size: tuple[int, int], name: str, models: Upscalers | None,
            folder: Path | None, allow_pickle: bool, stop: Callable[[], None], tile: int,
            on_tile: Callable[[int, int], None] | None = None,
            field: str = "upscaler") -> tuple[Image.Image, UpscalerInfo | None]:
    """The picture at `size` (width, height) through the upscaler of this name: (result, the model's
    info, None for a built-in filter)."""
    if field == FACE_FIELD:  # a face crop through a face restoration model (faces.py finds and pastes the faces)
        if models is None:
            raise ValueError("face restorers need the engine's Upscalers")
        return restore(picture, size, name, models, folder, allow_pickle, stop)
    found = builtin(name)
    if found is not None:
        if found.space != "image":
            raise ValueError(f"{name} resizes latents, not pictures")
        return picture.resize(size, getattr(Image.Resampling, found.mode)), None
    if models is None:
        raise ValueError("model upscalers need the engine's Upscalers")
    info, model = models.get(name, find(field, name, folder, allow_pickle), allow_pickle)
    if info.purpose == FACE:
        raise InvalidValue(field, name, f"an upscaler: {name} is a face restoration model (face_restorer)")
    image = picture if picture.mode == "RGB" else picture.convert("RGB")
    for _ in range(MAX_PASSES):
        if image.width >= size[0] and image.height >= size[1]:
            break
        image = model_pass(model, image, tile, stop, on_tile)
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image, info


def find_face(name: str, folder: Path | None, allow_pickle: bool) -> tuple[str, Path]:
    """(name, file) of the face restorer `name` means: a face restoration model of the folder; "" its
    first. Refused by the field's name, with the face restorers the folder has."""
    have = face_restorers(folder, allow_pickle)
    where = ("no upscalers folder is set (--upscalers-dir)" if folder is None else
             f"the upscalers folder has {', '.join(have[:20])}" if have else
             "the upscalers folder has none" + ("" if allow_pickle else " (.pth files need --allow-pickle)"))
    allowed = f"a face restoration model (GFPGAN) of the upscalers folder: {where}"
    if not name:
        if not have:
            raise InvalidValue(FACE_FIELD, "", allowed)
        name = have[0]
    try:
        path = find(FACE_FIELD, name, folder, allow_pickle)
    except InvalidValue:
        raise InvalidValue(FACE_FIELD, name[:80], allowed) from None
    return name, path


def restore(picture: Image.Image | None, size: tuple[int, int], name: str, models: Upscalers, folder: Path | None,
            allow_pickle: bool, stop: Callable[[], None]) -> tuple[Image.Image | None, UpscalerInfo]:
    """A face crop through the face restorer `name` ("" the folder's first), at `size`; picture None: the
    model only, loaded and checked (a job does this before its first step)."""
    name, path = find_face(name, folder, allow_pickle)
    info, model = models.get(name, path, allow_pickle)
    if info.purpose != FACE:
        raise InvalidValue(FACE_FIELD, name, f"a face restoration model (GFPGAN): {name} is a {info.architecture} "
                                             f"({info.purpose}); the folder's face restorers are "
                                             f"{', '.join(face_restorers(folder, allow_pickle)) or 'none'}")
    if picture is None:
        return None, info
    return restore_face(model, picture, stop).resize(size, Image.Resampling.LANCZOS), info


def restore_face(model: Any, picture: Image.Image, stop: Callable[[], None]) -> Image.Image:
    """One face through a face restoration model (GFPGAN) at its size (512 px): the net reads and answers
    in [-1, 1]; its StyleGAN decoder's noise is its stored buffers (randomize_noise=False), so the same
    face gives the same result. `stop` is checked before every layer."""
    import inspect

    import numpy as np
    import torch

    side = max(model.size_requirements.minimum, 1)
    face = picture.convert("RGB").resize((side, side), Image.Resampling.LANCZOS) if picture.size != (side, side) \
        else picture.convert("RGB")
    parameter = next(iter(model.model.parameters()))
    x = torch.from_numpy(np.asarray(face, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    options = {key: False for key in ("return_rgb", "randomize_noise")
               if key in inspect.signature(model.model.forward).parameters}
    stop()
    with stopping(model.model, stop), torch.inference_mode():
        out = model.model(x.to(parameter.device, parameter.dtype), **options)
    out = (out[0] if isinstance(out, (tuple, list)) else out).float().cpu()
    pixels = ((out[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB")
