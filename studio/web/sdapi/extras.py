"""A1111's Extras over HTTP (`/sdapi/v1/extra-single-image`, `/extra-batch-images`): resize a picture by
a factor or to a size with the upscalers the studio has. Until model upscalers exist (ESRGAN-class
files), those are pixel filters: a model upscaler's name (`R-ESRGAN 4x+`, `4x-UltraSharp`...) runs as
Lanczos, and the answer's `html_info` says so, never silently. Face restoration (GFPGAN, CodeFormer)
is not run: asked for, it is said there too.

Cost: every picture is measured before it is decoded (translate.decode_image: at most MAX_INPUT_PIXELS), a call's results
hold at most MAX_OUTPUT_PIXELS together, checked before any resizing, and a batch holds at most
MAX_BATCH pictures; each refusal names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from PIL import Image

from ...errors import InvalidValue
from .translate import decode_image as decode  # one decoder for every picture the door takes
from .translate import encode_picture as encode

# What one call may make, all its pictures together: a 4x of a 1024 square (Lanczos makes it in about
# 0.6 s on one core; twice that at the limit), so a call ends about as fast as a Stop would land.
MAX_OUTPUT_PIXELS = 2 * 4096 * 4096
MAX_BATCH = 16
MAX_SCALE = 8.0
# The pixel filters the studio has, by A1111's names; any other upscaler name runs as Lanczos (said).
FILTERS = {"none": None, "lanczos": Image.Resampling.LANCZOS, "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class Extras:
    """One Extras request, checked: how to size the picture and with which filters."""

    by_factor: bool  # resize_mode 0: scale by `factor`; 1: scale to width x height
    factor: float
    width: int
    height: int
    crop: bool  # scale to a size: crop to fit (else stretch)
    upscaler_1: str
    upscaler_2: str
    visibility_2: float  # how much of upscaler_2's result is blended over upscaler_1's
    notes: tuple[str, ...]


def _number(body: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidValue(key, value, f"a number from {low:g} to {high:g}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidValue(key, value, f"a number from {low:g} to {high:g}")
    return float(value)


def _upscaler(body: Mapping[str, Any], key: str, notes: list[str]) -> str:
    name = body.get(key, "None")
    if name is None:
        return "none"
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidValue(key, str(name)[:40], "an upscaler name (GET /sdapi/v1/upscalers)")
    if name.strip().casefold() in FILTERS:
        return name.strip().casefold()
    notes.append(f"{key} {name!r} is not here (no model upscalers yet): ran as Lanczos")
    return "lanczos"


def parse(body: Any) -> Extras:
    """A1111's ExtrasSingleImageRequest / ExtrasBatchImagesRequest fields, checked (pictures apart)."""
    if not isinstance(body, Mapping):
        raise InvalidValue("body", type(body).__name__, "a JSON object")
    notes: list[str] = []
    mode = body.get("resize_mode", 0)
    if mode not in (0, 1):
        raise InvalidValue("resize_mode", mode, "0 (scale by upscaling_resize) or 1 (scale to width and height)")
    for key, label in (("gfpgan_visibility", "GFPGAN"), ("codeformer_visibility", "CodeFormer")):
        if body.get(key):
            notes.append(f"{key}: face restoration ({label}) is not run here")
    return Extras(
        by_factor=mode == 0,
        factor=_number(body, "upscaling_resize", 2.0, 1.0, MAX_SCALE),
        width=int(_number(body, "upscaling_resize_w", 512, 8, 8192)),
        height=int(_number(body, "upscaling_resize_h", 512, 8, 8192)),
        crop=bool(body.get("upscaling_crop", True)),
        upscaler_1=_upscaler(body, "upscaler_1", notes),
        upscaler_2=_upscaler(body, "upscaler_2", notes),
        visibility_2=_number(body, "extras_upscaler_2_visibility", 0.0, 0.0, 1.0),
        notes=tuple(notes),
    )


def target_size(extras: Extras, size: tuple[int, int]) -> tuple[int, int]:
    return ((round(size[0] * extras.factor), round(size[1] * extras.factor)) if extras.by_factor
            else (extras.width, extras.height))


def check_cost(extras: Extras, sizes: list[tuple[int, int]]) -> None:
    """Refused, naming the field that asked, when the results would hold more than MAX_OUTPUT_PIXELS."""
    made = [target_size(extras, size) for size in sizes]
    total = sum(w * h for w, h in made)
    if total > MAX_OUTPUT_PIXELS:
        asked = "upscaling_resize" if extras.by_factor else "upscaling_resize_w"
        shown = f"{made[0][0]}x{made[0][1]}" + (f" x {len(made)} pictures" if len(made) > 1 else "")
        raise InvalidValue(asked, shown, f"results of at most {MAX_OUTPUT_PIXELS} pixels in one call")


def _resized(picture: Image.Image, upscaler: str, size: tuple[int, int], crop: bool) -> Image.Image:
    method = FILTERS[upscaler] if FILTERS[upscaler] is not None else Image.Resampling.LANCZOS
    if not crop:
        return picture.resize(size, method)
    # Scale to cover the size, then cut the middle out (A1111's "crop to fit").
    ratio = max(size[0] / picture.width, size[1] / picture.height)
    cover = picture.resize((max(size[0], round(picture.width * ratio)), max(size[1], round(picture.height * ratio))),
                           method)
    left, top = (cover.width - size[0]) // 2, (cover.height - size[1]) // 2
    return cover.crop((left, top, left + size[0], top + size[1]))


def run(extras: Extras, picture: Image.Image) -> Image.Image:
    """One picture through the Extras (its cost checked before): upscaler 1, and upscaler 2 blended
    over it by its visibility."""
    picture = picture.convert("RGBA" if picture.mode in ("RGBA", "LA", "P") else "RGB")
    size = target_size(extras, picture.size)
    crop = extras.crop and not extras.by_factor
    result = _resized(picture, extras.upscaler_1, size, crop)
    if extras.upscaler_2 != "none" and extras.visibility_2 > 0:
        result = Image.blend(result, _resized(picture, extras.upscaler_2, size, crop), extras.visibility_2)
    return result


def html_info(extras: Extras, sizes: list[tuple[int, int]]) -> str:
    said = [f"Upscale: {w}x{h}" for w, h in sizes] + list(extras.notes)
    return "<p>" + "<br>".join(said) + "</p>"


def single(body: Any) -> dict[str, Any]:
    """POST /sdapi/v1/extra-single-image: `{"image": b64, ...}` -> `{"html_info", "image"}`."""
    extras = parse(body)
    picture = decode("image", body.get("image"))
    check_cost(extras, [picture.size])
    result = run(extras, picture)
    return {"html_info": html_info(extras, [result.size]), "image": encode(result)}


def batch(body: Any) -> dict[str, Any]:
    """POST /sdapi/v1/extra-batch-images: `{"imageList": [{"data": b64, "name": ...}], ...}` ->
    `{"html_info", "images"}` (every picture measured and the whole cost checked before any work)."""
    extras = parse(body)
    items = body.get("imageList")
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        raise InvalidValue("imageList", type(items).__name__ if not isinstance(items, list) else f"{len(items)} items",
                           f"a list of 1 to {MAX_BATCH} {{'data': base64 image, 'name': ...}}")
    pictures = [decode(f"imageList[{i}].data", item.get("data") if isinstance(item, Mapping) else None)
                for i, item in enumerate(items)]
    check_cost(extras, [p.size for p in pictures])
    results = [run(extras, picture) for picture in pictures]
    return {"html_info": html_info(extras, [r.size for r in results]), "images": [encode(r) for r in results]}
