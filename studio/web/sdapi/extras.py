"""A1111's Extras over HTTP (`/sdapi/v1/extra-single-image`, `/extra-batch-images`): each picture becomes
an `upscale` task (studio/tasks/upscale.py), planned and run by the same service as the page's Upscale
tab (the device queue, Stop and a caller's hang-up, the cost cap, outputs with metadata).

Upscalers: the pixel filters, and the models of the upscalers folder by file name or by A1111's name
(`R-ESRGAN 4x+` finds `RealESRGAN_x4plus`). A model name the folder lacks runs as Lanczos, as lenient
as A1111's clients expect, and the answer's `html_info` says so, never silently. Face restoration
(GFPGAN, CodeFormer) is not run: asked for, it is said there too.

Cost: every picture is measured before it is decoded (translate.decode_image: at most MAX_INPUT_PIXELS),
a call's results hold at most MAX_OUTPUT_PIXELS together, checked before any work (a model's passes are
counted by the cost cap besides), and a batch holds at most MAX_BATCH pictures; each refusal names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ... import upscalers
from ...errors import InvalidValue
from ...upscalers.folder import find
from .translate import decode_image as decode  # one decoder for every picture the door takes
from .translate import encode_picture as encode

# What one call may make, all its pictures together: a 4x of a 1024 square (Lanczos makes it in about
# 0.6 s on one core; twice that at the limit), so a call ends about as fast as a Stop would land.
MAX_OUTPUT_PIXELS = 2 * 4096 * 4096
MAX_BATCH = 16
MAX_SCALE = 8.0


@dataclass(frozen=True)
class Extras:
    """One Extras request, checked: how to size the picture and with which upscalers."""

    by_factor: bool  # resize_mode 0: scale by `factor`; 1: scale to width x height
    factor: float
    width: int
    height: int
    crop: bool  # scale to a size: crop to fit (else stretch)
    upscaler_1: str  # the studio's name: a pixel filter or a model of the upscalers folder
    upscaler_2: str  # "None" when off
    visibility_2: float  # how much of upscaler_2's result is blended over upscaler_1's
    notes: tuple[str, ...]
    faces: float = 0.0  # gfpgan_visibility: face restoration (the folder's first GFPGAN) after the upscalers


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


def _upscaler(body: Mapping[str, Any], key: str, notes: list[str], folder: Path | None, allow_pickle: bool) -> str:
    """The studio's upscaler for A1111's name: a pixel filter, a model of the folder, "None" (upscaler 2
    off; upscaler 1's None is A1111's plain resize, Lanczos), or Lanczos for a model the folder lacks."""
    name = body.get(key, "None")
    if name is None or (isinstance(name, str) and name.strip().casefold() == "none"):
        return "Lanczos" if key == "upscaler_1" else "None"
    if not isinstance(name, str) or len(name) > upscalers.MAX_NAME_CHARS:
        raise InvalidValue(key, str(name)[:40], "an upscaler name (GET /sdapi/v1/upscalers)")
    found = upscalers.builtin(name.strip())
    if found is not None and found.space == "image":
        return found.name
    try:
        upscalers.check_name(key, name, pictures=True)
        find(key, name, folder, allow_pickle)
        return name.strip()
    except InvalidValue:
        notes.append(f"{key} {name!r} is not in this studio's upscalers folder: ran as Lanczos")
        return "Lanczos"


def parse(body: Any, folder: Path | None = None, allow_pickle: bool = False) -> Extras:
    """A1111's ExtrasSingleImageRequest / ExtrasBatchImagesRequest fields, checked (pictures apart)."""
    if not isinstance(body, Mapping):
        raise InvalidValue("body", type(body).__name__, "a JSON object")
    notes: list[str] = []
    mode = body.get("resize_mode", 0)
    if mode not in (0, 1):
        raise InvalidValue("resize_mode", mode, "0 (scale by upscaling_resize) or 1 (scale to width and height)")
    if body.get("codeformer_visibility"):
        notes.append("codeformer_visibility: CodeFormer is not run here (its licence is non-commercial); "
                     "gfpgan_visibility runs GFPGAN")
    faces = _number(body, "gfpgan_visibility", 0.0, 0.0, 1.0)
    if faces and not _face_restorers(folder, allow_pickle):
        notes.append("gfpgan_visibility: the upscalers folder has no face restoration model (GFPGAN): not run")
        faces = 0.0
    return Extras(
        by_factor=mode == 0,
        factor=_number(body, "upscaling_resize", 2.0, 1.0, MAX_SCALE),
        width=int(_number(body, "upscaling_resize_w", 512, 8, 8192)),
        height=int(_number(body, "upscaling_resize_h", 512, 8, 8192)),
        crop=bool(body.get("upscaling_crop", True)),
        upscaler_1=_upscaler(body, "upscaler_1", notes, folder, allow_pickle),
        upscaler_2=_upscaler(body, "upscaler_2", notes, folder, allow_pickle),
        visibility_2=_number(body, "extras_upscaler_2_visibility", 0.0, 0.0, 1.0),
        notes=tuple(notes),
        faces=faces,
    )


def _face_restorers(folder: Path | None, allow_pickle: bool) -> list[str]:
    from ...upscalers.library import available
    from ...upscalers.models import face_restorers

    return face_restorers(folder, allow_pickle) if folder is not None and available() else []


def settings(extras: Extras, picture: Any) -> dict[str, Any]:
    """The upscale task's settings for one picture (by field name, as the page's Upscale tab sends)."""
    return {"task": "upscale", "upscale_image": picture, "upscaler": extras.upscaler_1,
            "upscale_by": extras.factor, "upscale_width": 0 if extras.by_factor else extras.width,
            "upscale_height": 0 if extras.by_factor else extras.height, "upscale_crop": extras.crop,
            "upscaler_2": extras.upscaler_2, "upscaler_2_visibility": extras.visibility_2,
            **({"restore_faces": True, "face_restore_visibility": extras.faces} if extras.faces else {})}


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


def pictures(body: Any, batch: bool) -> list[Any]:
    """The call's pictures, each measured before it is decoded: `image`, or a batch's `imageList`."""
    if not batch:
        return [decode("image", body.get("image"))]
    items = body.get("imageList")
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        raise InvalidValue("imageList", type(items).__name__ if not isinstance(items, list) else f"{len(items)} items",
                           f"a list of 1 to {MAX_BATCH} {{'data': base64 image, 'name': ...}}")
    return [decode(f"imageList[{i}].data", item.get("data") if isinstance(item, Mapping) else None)
            for i, item in enumerate(items)]


def html_info(extras: Extras, sizes: list[tuple[int, int]]) -> str:
    said = [f"Upscale: {w}x{h}" for w, h in sizes] + list(extras.notes)
    return "<p>" + "<br>".join(said) + "</p>"


def answer(extras: Extras, results: list[Any], batch: bool) -> dict[str, Any]:
    """A1111's answer: `{"html_info", "image"}`, or `{"html_info", "images"}` for a batch."""
    info = html_info(extras, [r.size for r in results])
    return {"html_info": info, "images": [encode(r) for r in results]} if batch else \
        {"html_info": info, "image": encode(results[0])}
