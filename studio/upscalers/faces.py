"""Face restoration (A1111's "Restore faces"): each face the detailer's detector finds (studio/detail/,
OWLv2 looking for "a face") is cut out as a square twice the face's side, restored at 512 px by a face
restoration model of the upscalers folder (GFPGAN, through spandrel: run.restore_face), resized back and
pasted through a feathered ellipse, blended by the visibility. No landmark alignment (facexlib, which A1111
uses for it, needs torchvision): the square is upright, as the box is.

It runs after text to image and image to image (`post_pass` on their run: before the detailer, as A1111
restores faces before its scripts' postprocess_image, where ADetailer works) and in the Upscale task
after the upscalers (A1111's Extras order). Stop is checked before each face and before every layer of
the restorer. The same picture gives the same result.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from PIL import Image, ImageDraw, ImageFilter

from ..detail.masks import Box
from ..detail.targets import TARGETS
from ..events import Status
from .run import FACE_FIELD

TASKS = ("txt2img", "img2img", "upscale")  # after text / image to image, and in A1111's Extras (upscale)
MAX_FACES = 8  # faces restored per picture at most, the largest first
GROW = 2.0  # the square cut around a face: this many times the box's longer side (clamped to the picture)
FEATHER = 0.08  # of the square's side: the ellipse's inset and its blur, so the paste has no edge


def square(box: Box, size: tuple[int, int], grow: float = GROW) -> tuple[int, int, int, int]:
    """The square around a face box, `grow` times its longer side, moved (and shrunk) to lie inside a
    picture of `size`."""
    side = min(round(max(box.right - box.left, box.bottom - box.top) * grow), size[0], size[1])
    side = max(side, 1)
    centre_x, centre_y = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left = min(max(0, round(centre_x - side / 2)), size[0] - side)
    top = min(max(0, round(centre_y - side / 2)), size[1] - side)
    return left, top, left + side, top + side


def feather(side: int, visibility: float) -> Image.Image:
    """The paste's mask over a square: an ellipse inset by FEATHER, blurred by as much, times the
    visibility (0 at the square's corners and edges: outside it the picture keeps its pixels)."""
    inset = max(1, round(side * FEATHER))
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).ellipse((inset, inset, side - 1 - inset, side - 1 - inset), fill=round(255 * visibility))
    return mask.filter(ImageFilter.GaussianBlur(inset / 2))


def restore_picture(picture: Image.Image, boxes: Sequence[Box], restore_one: Callable[[Image.Image], Image.Image],
                    visibility: float, stop: Callable[[], None],
                    status: Callable[[int, int], None] | None = None) -> Image.Image:
    """The picture with each face box restored, the largest first (`restore_one`: a 512 px face)."""
    result = picture.convert("RGB").copy()
    for k, box in enumerate(boxes):
        stop()
        if status is not None:
            status(k + 1, len(boxes))
        area = square(box, result.size)
        crop = result.crop(area)
        restored = restore_one(crop.resize((512, 512), Image.Resampling.LANCZOS))
        restored = restored.resize(crop.size, Image.Resampling.LANCZOS)
        result.paste(Image.composite(restored, crop, feather(crop.width, visibility)), area[:2])
    return result


def restore_pictures(pictures: Sequence[Image.Image], request: Any, detector: Any,
                     upscale: Callable[..., Any], stop: Callable[[], None], emit: Callable[[Any], None],
                     notice: Callable[[str], None]) -> tuple[list[Image.Image], Any]:
    """Each picture with its faces restored: (pictures, the restorer's UpscalerInfo or None). `upscale` is
    the engine's Studio.upscale_picture (the restorer loaded once on its device)."""
    from .run import stopping

    if request.face_restore_visibility <= 0:
        notice("Face restoration: at visibility 0 it changes nothing; the pictures are unchanged.")
        return list(pictures), None
    used: list[Any] = []

    def restore_one(face: Image.Image) -> Image.Image:
        restored, info = upscale(face, face.size, request.face_restorer, stop, None, FACE_FIELD)
        used[:] = [info]
        return restored

    results = []
    for index, picture in enumerate(pictures):
        where = f" in image {index + 1}" if len(pictures) > 1 else ""
        stop()
        emit(Status(f"Face restoration: looking for faces{where}"))
        with stopping(detector.model, stop):
            boxes = detector.detect(picture, TARGETS["face"], request.face_confidence)
        if not boxes:
            notice(f"Face restoration: no face found{where} at confidence {request.face_confidence:g}; "
                   "it is unchanged.")
        elif len(boxes) > MAX_FACES:
            notice(f"Face restoration: {len(boxes)} faces found{where}; the {MAX_FACES} largest were restored.")
        results.append(restore_picture(picture, boxes[:MAX_FACES], restore_one, request.face_restore_visibility,
                                       stop, lambda k, n: emit(Status(f"Face restoration: face {k} of {n}{where}"))))
    return results, (used[0] if used else None)


def load_detector(name: str, device: Any, emit: Callable[[Any], None]) -> Any:
    """The face detector on `device` (loaded once, kept for the next request, as the detailer's)."""
    from ..detail import detector as detectors

    if not detectors.is_loaded(name, device):
        emit(Status(f"Loading the detector {name}"))
    return detectors.load(name, device)


def post_pass(run: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """A task's run (txt2img, img2img), then face restoration over its pictures. The detector and the
    restorer load first: a missing or wrong face restorer fails the job, by its field, before any step."""
    @functools.wraps(run)
    def with_faces(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
        request = ctx.request
        if not on(request):
            return run(ctx, conditioning, steps)
        if ctx.upscaler is None:
            raise ValueError("this engine runs no face restorers")
        ctx.upscaler(None, (512, 512), request.face_restorer, ctx.stop_here, None, FACE_FIELD)  # checked, loaded
        detector = load_detector(request.face_detector, ctx.loaded.device, ctx.emit)
        pictures = run(ctx, conditioning, steps)
        return restore_pictures(pictures, request, detector, ctx.upscaler, ctx.stop_here, ctx.emit, ctx.notice)[0]

    return with_faces


def on(request: Any) -> bool:
    return bool(request.restore_faces) and request.task in TASKS
