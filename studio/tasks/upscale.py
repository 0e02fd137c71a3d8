"""Upscale (A1111's Extras "Upscale"): a picture enlarged by a factor or to a size with a pixel filter
or a model upscaler (studio/upscalers/), a second upscaler blended over it by its visibility. No
diffusion model runs: the engine runs it on the device thread without loading one, Stop lands between
tiles, and progress counts tiles.

The result keeps the picture's own infotext (a PNG from any A1111-style tool) with A1111's
`Postprocess ...` keys after it, so PNG Info still restores the generation that made the picture.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from PIL import Image

from ..events import Progress, Result, Timings

if TYPE_CHECKING:
    from ..request import GenerationRequest

NONE = "None"  # upscaler_2 off (A1111's name)
# The results of one upscale: a 4x of a 2048 square at most (Lanczos makes 4096^2 in about 0.6 s on one
# core; a model's work is counted in megapixel-steps by the cost cap besides).
MAX_OUTPUT_PIXELS = 4096 * 4096
MAX_SIDE = 8192


def plan(request: GenerationRequest) -> list[int]:
    return []  # no denoising steps: its work is counted by upscalers/work.py in the request's cost


def target_size(request: GenerationRequest, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The result's size: width and height where set (both), else the picture's times the factor."""
    if request.upscale_width and request.upscale_height:
        return request.upscale_width, request.upscale_height
    width, height = size or request.upscale_image.size
    return max(1, round(width * request.upscale_by)), max(1, round(height * request.upscale_by))


def upscalers_used(request: GenerationRequest) -> list[str]:
    """The upscalers that run: the first, and the second where it blends in at all."""
    second = request.upscaler_2 != NONE and request.upscaler_2_visibility > 0
    return [request.upscaler] + ([request.upscaler_2] if second else [])


def _fitted(picture: Image.Image, size: tuple[int, int], crop: bool) -> tuple[tuple[int, int], tuple | None]:
    """(size to upscale to, box to cut from it): to a size with crop covers it, then cuts the middle."""
    if not crop:
        return size, None
    ratio = max(size[0] / picture.width, size[1] / picture.height)
    cover = (max(size[0], round(picture.width * ratio)), max(size[1], round(picture.height * ratio)))
    left, top = (cover[0] - size[0]) // 2, (cover[1] - size[1]) // 2
    return cover, (left, top, left + size[0], top + size[1])


def infotext(request: GenerationRequest, models: dict[str, str], restorer: Any = None) -> str:
    """The picture's own infotext (if it has one) and A1111's Postprocess keys after it (face restoration:
    A1111's Extras key `GFPGAN visibility`, and the restorer's name)."""
    own = sorted((entry for f in request.FIELDS.request if f.tasks == ("upscale",)
                  for entry in f.infotext_pairs(request, 0)), key=lambda entry: entry[0])
    pairs = [(key, value) for _, key, value in own]
    pairs += [("Postprocess upscaler hash" if n == 0 else "Postprocess upscaler 2 hash", models[name])
              for n, name in enumerate(upscalers_used(request)) if name in models]
    if restorer is not None:
        pairs += [("Postprocess face restorer", restorer.name), ("Postprocess face restorer hash", restorer.digest),
                  ("GFPGAN visibility", f"{round(request.face_restore_visibility, 3):g}")]  # as A1111 rounds it
    line = ", ".join(f"{key}: {value}" for key, value in pairs)
    source = request.upscale_image.info.get("parameters") if hasattr(request.upscale_image, "info") else None
    return f"{source}, {line}" if isinstance(source, str) and source.strip() else line


def run(upscale: Callable[..., Any], request: GenerationRequest, emit: Callable[[Any], None],
        stop: Callable[[], None], seed: int) -> Result:
    """The upscale on this thread (the device's): `upscale` is the engine's Studio.upscale_picture."""
    start = time.perf_counter()
    picture = request.upscale_image
    picture = picture.convert("RGB") if picture.mode != "RGB" else picture
    size = target_size(request, picture.size)
    crop = bool(request.upscale_width and request.upscale_height and request.upscale_crop)
    work_size, box = _fitted(picture, size, crop)
    names = upscalers_used(request)
    done = [0]  # tiles of the passes before this one

    def on_tile(k: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        rate = (done[0] + k) / elapsed if elapsed > 0 else 0.0
        emit(Progress(done[0] + k, done[0] + total, elapsed, rate, (total - k) / rate if rate else 0.0))
        if k == total:
            done[0] += total

    models: dict[str, str] = {}
    results = []
    for n, name in enumerate(names):
        field = "upscaler" if n == 0 else "upscaler_2"
        result, info = upscale(picture, work_size, name, stop, on_tile, field)
        if info is not None:
            models[name] = info.digest
        results.append(result.crop(box) if box else result)
    image = results[0] if len(results) == 1 else Image.blend(results[0], results[1], request.upscaler_2_visibility)
    notices: list[str] = []
    restorer = None
    if request.restore_faces:  # A1111's Extras order: the upscalers, then face restoration
        image, restorer = _restore_faces(upscale, request, image, emit, stop, notices)
    total = time.perf_counter() - start
    return Result(request=request, images=(image,), seeds=(seed,), infotexts=(infotext(request, models, restorer),),
                  timings=Timings(load_s=0.0, generate_s=total, total_s=total), model_name=names[0],
                  notices=tuple(notices))


def _restore_faces(upscale: Callable[..., Any], request: GenerationRequest, image: Image.Image,
                   emit: Callable[[Any], None], stop: Callable[[], None], notices: list[str]) -> tuple[Any, Any]:
    """The upscaled picture with its faces restored (studio/upscalers/faces.py): (picture, restorer's info)."""
    from ..devices import DeviceChoice
    from ..upscalers import faces

    # The engine's device: `upscale` is its Studio.upscale_picture (a plain function: the CPU's).
    device = getattr(getattr(upscale, "__self__", None), "device", None) or DeviceChoice("cpu", "fp32")
    upscale(None, (512, 512), request.face_restorer, stop, None, faces.FACE_FIELD)  # checked and loaded first
    detector = faces.load_detector(request.face_detector, device, emit)
    restored, info = faces.restore_pictures([image], request, detector, upscale, stop, emit, notices.append)
    return restored[0], info
