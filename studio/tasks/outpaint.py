"""Outpainting: the picture on a larger canvas, its new area painted by the family's inpaint pipeline.

The canvas is the picture plus `outpaint_left`/`_right`/`_up`/`_down` pixels, rounded up to the
family's size multiple (the extra split between the sides that grow, as A1111's poor man's
outpainting splits it); the request's width and height are set to it (`check`, a request rule: they
are never typed for this task). The new area starts as `outpaint_fill` says: A1111's choices, where
"original" (the new area has none) is the picture's edge pixels stretched out, as Fooocus pads. The
mask covers the new area and `outpaint_overlap` pixels of the picture, fading from white at the
picture's edge to black that far in, so the seam blends and the rest keeps the picture's own pixels.
Then inpainting's `repaint` runs on the whole canvas: the result is the bigger picture.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from .. import validation
from ..errors import InvalidValue
from . import inpaint

if TYPE_CHECKING:
    from ..field_spec import Context
    from ..request import GenerationRequest

SIDES = ("left", "right", "up", "down")
FILLS = ("fill", "original", "latent noise", "latent nothing")  # A1111's inpainting_fill, in its index order
MAX_PADDING = 2048  # pixels a side; the canvas is held to the model's size range besides
PIPELINE = "inpaint"  # the family pipeline it paints with: a family without one cannot outpaint
Pads = tuple[int, int, int, int]  # left, right, up, down

A1111_NOTE = "A1111's img2img script \"Poor man's outpainting\": its script_args (studio/web/sdapi/scripts.py)"
FILL_HELP = "fill: colours spread in from the picture; original: its edges stretched out; latent noise/nothing: " \
            "seeded noise or zeros in its latents (at a denoising strength under 1: at 1 all start as noise)"
OVERLAP_HELP = "how far into the picture the repaint reaches, fading out, so the seam blends"

plan = inpaint.plan  # the steps of one inpaint pass at the denoising strength


# -- the infotext (the field table's keys: "Outpaint left: 64", ..., "Outpaint fill: fill") ----------

def is_it(request: Any) -> bool:
    return request.task == "outpaint"


def side_writer(side: str) -> Callable[[Any, int], int | None]:
    """A side's pixels, written where the request outpaints on that side."""
    return lambda request, index: (getattr(request, f"outpaint_{side}") or None) if is_it(request) else None


def side_reader(side: str, missing: Any) -> Callable[[Mapping[str, str]], Any]:
    """A side's pixels from an outpaint's infotext (a side it does not name: 0), else `missing`."""
    return lambda params: int(params.get(f"Outpaint {side}", "0")) if "Outpaint fill" in params else missing


def asked(request: Any) -> Pads:
    """The pixels the request asks for on each side."""
    return tuple(getattr(request, f"outpaint_{side}") for side in SIDES)  # type: ignore[return-value]


def placement(size: tuple[int, int], pads: Sequence[int], multiple: int) -> Pads:
    """Each side's padding: as asked, plus what rounds the canvas up to `multiple` (the model's size
    rule), split between the sides that grow in proportion (both sides of an axis that does not)."""
    left, right = _axis(size[0], pads[0], pads[1], multiple)
    up, down = _axis(size[1], pads[2], pads[3], multiple)
    return left, right, up, down


def _axis(length: int, first: int, second: int, multiple: int) -> tuple[int, int]:
    extra = -(length + first + second) % multiple
    grown = first + second
    add = extra // 2 if grown == 0 else extra * first // grown
    return first + add, second + extra - add


def canvas_size(size: tuple[int, int], pads: Sequence[int]) -> tuple[int, int]:
    return size[0] + pads[0] + pads[1], size[1] + pads[2] + pads[3]


def for_aspect(size: tuple[int, int], ratio: str) -> Pads:
    """The padding that brings a picture of `size` to an aspect ratio such as "16:9": the short way
    grows, half on each side (the canvas is then rounded to the model's multiple)."""
    w, sep, h = str(ratio).partition(":")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit() or not int(w) or not int(h):
        raise InvalidValue("aspect", ratio, "W:H with whole numbers, such as 16:9")
    w_, h_ = int(w), int(h)
    width, height = size
    if width * h_ < height * w_:  # too narrow for the ratio: wider
        extra = math.ceil(height * w_ / h_) - width
        return extra // 2, extra - extra // 2, 0, 0
    extra = math.ceil(width * h_ / w_) - height
    return 0, 0, extra // 2, extra - extra // 2


def extend(picture: Image.Image, pads: Sequence[int]) -> Image.Image:
    """The picture on its canvas, the new area its edge pixels stretched outwards."""
    left, right, up, down = pads
    data = np.pad(np.asarray(picture.convert("RGB")), ((up, down), (left, right), (0, 0)), mode="edge")
    return Image.fromarray(data)


def new_area_mask(size: tuple[int, int], pads: Sequence[int], overlap: int) -> Image.Image:
    """White over the new area and fading to black `overlap` pixels into the picture from each edge
    that grew; black (the picture's own pixels kept) further in."""
    (width, height), (left, right, up, down) = size, pads
    cols = np.arange(width + left + right, dtype=np.float32)[None, :] + 0.5  # pixel centres
    rows = np.arange(height + up + down, dtype=np.float32)[:, None] + 0.5
    shape = (rows.size, cols.size)
    # Distance into the picture from each edge that grew (negative: outside it, in the new area).
    inward = [np.broadcast_to(d, shape) for grew, d in ((left, cols - left), (right, left + width - cols),
                                                          (up, rows - up), (down, up + height - rows)) if grew]
    if not inward:
        return Image.new("L", (cols.size, rows.size), 0)
    distance = np.minimum.reduce(inward)
    value = 1 - distance / overlap if overlap > 0 else (distance < 0).astype(np.float32)
    return Image.fromarray((np.clip(value, 0, 1) * 255 + 0.5).astype(np.uint8))


def check(request: Any, context: Context) -> None:
    """A request rule: an outpaint asks for some padding, and its canvas (set as width and height) is
    one the model takes; refused by the field to change, before any work."""
    if request.task != "outpaint":
        return
    pads, source = asked(request), context.source
    if not any(pads):
        raise InvalidValue("outpaint_left", 0, "pixels on at least one side (outpaint_left, outpaint_right, "
                                               "outpaint_up or outpaint_down): outpainting extends the picture")
    size, multiple = request.outpaint_image.size, source.size_rule.multiple
    low, high = source.size_range
    width, height = canvas_size(size, placement(size, pads, multiple))
    for length, own, sides in ((width, size[0], SIDES[:2]), (height, size[1], SIDES[2:])):
        if length <= high:
            continue
        room = high - own - (-own % multiple)
        if room <= 0:
            raise InvalidValue("outpaint_image", f"{size[0]}x{size[1]}", f"a picture under {high} pixels a side for "
                                                                       f"model {source.name} (its canvas limit)")
        side = max(sides, key=lambda s: getattr(request, f"outpaint_{s}"))
        raise InvalidValue(f"outpaint_{side}", getattr(request, f"outpaint_{side}"),
                           f"at most {room} pixels {sides[0]} and {sides[1]} together on this {size[0]}x{size[1]} "
                           f"picture: model {source.name} takes a canvas of at most {high} a side "
                           f"(this one would be {width}x{height})")
    if width * height > validation.MAX_INPUT_PIXELS:  # a model whose range reaches past 4096 a side
        raise InvalidValue("outpaint_image", f"{size[0]}x{size[1]}", f"a canvas of at most "
                                                                   f"{validation.MAX_INPUT_PIXELS} pixels")
    if min(width, height) < low:
        raise InvalidValue("outpaint_image", f"{size[0]}x{size[1]}", f"a canvas of at least {low} pixels a side "
                           f"for model {source.name} (this one would be {width}x{height}): a larger picture or more "
                           "padding")
    request._set("width", width)
    request._set("height", height)


def run(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
    request: GenerationRequest = ctx.request
    picture = request.outpaint_image.convert("RGB")
    pads = placement(picture.size, asked(request), request.source.size_rule.multiple)
    canvas = extend(picture, pads)  # "original": the stretched edges stay under the denoising
    mask = new_area_mask(picture.size, pads, request.outpaint_overlap)
    return inpaint.repaint(ctx, conditioning, steps[0], canvas, mask, request.outpaint_fill)


def from_a1111_script(args: Sequence[Any]) -> dict[str, Any]:
    """The settings of A1111's "Poor man's outpainting" img2img script, from its script_args
    [pixels, mask_blur, inpainting_fill (an index), directions]; left out: A1111's defaults. Its mask
    reaches 2 x blur into the picture and is blurred by 2 x blur: about 4 x blur of overlap here."""
    if not isinstance(args, (list, tuple)):
        raise InvalidValue("script_args", type(args).__name__, "[pixels, mask_blur, inpainting_fill, directions]")
    pixels, blur, fill, directions = [*args, *(128, 4, 0, list(SIDES))[len(args):]][:4]
    pixels = validation.int_in_range("script_args[0]", pixels, 0, MAX_PADDING)
    blur = validation.int_in_range("script_args[1]", blur, 0, 64)
    fill = validation.int_in_range("script_args[2]", fill, 0, len(FILLS) - 1)
    names = validation.names("script_args[3]", directions, SIDES)
    return {"task": "outpaint", "outpaint_fill": FILLS[fill], "outpaint_overlap": 4 * blur,
            **{f"outpaint_{side}": pixels if side in names else 0 for side in SIDES}}
