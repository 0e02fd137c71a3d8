"""A1111's variation seeds, declared once (their block of the field table: studio/fields.py adds
`FIELDS`): `Variation seed` (subseed), `Variation seed strength`, `Resize seed from width/height`,
with the request rule and the batch's seeds as A1111 1.10's processing.py derives them. Light: no
torch here (the noise itself is studio/noise.py, handed to the pipeline by studio/engine/variation.py).

As A1111: with a strength every image of a run shares the seed and image i takes subseed + i (so the
pictures are variations of one); without one, image i takes seed + i as always. A subseed of -1 is
drawn once, before the run, so the infotext can reproduce it.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping

from . import validation
from .errors import InvalidValue
from .field_spec import A1111, MISSING, Context, Field, Infotext, number_text

MAX_SEED = 2**32 - 1
MAX_RESIZE = 4096  # pixels a side the seed's noise may be drawn at (A1111's slider stops at 2048)
TASKS = ("txt2img",)  # where the pipeline takes initial noise as it is (img2img / inpaint noise their picture)
RESIZE_ALLOWED = f"0 or -1 (off), or a size from 64 to {MAX_RESIZE}"


def active(request: Any) -> bool:
    """Whether the initial noise is A1111's variation noise rather than the plain seed's."""
    return request.subseed_strength > 0 or resized(request)


def resized(request: Any) -> bool:
    return request.seed_resize_from_w > 0 and request.seed_resize_from_h > 0


def image_seed(request: Any, index: int) -> int:
    """Image `index`'s seed: seed + index, or the seed itself for every image when a strength is set."""
    return request.seed + (index if request.subseed_strength == 0 else 0)


def image_subseed(request: Any, index: int) -> int:
    return (request.subseed + index) % (MAX_SEED + 1)


def batch_start(request: Any, n: int) -> dict[str, int]:
    """The seeds batch n of a batch count starts at: A1111 counts the images of every batch on, the
    seed's with no strength, the subseed's with one (the seed then stays)."""
    step = n * request.batch_size
    if request.subseed_strength > 0:
        return {"subseed": image_subseed(request, step)}
    return {"seed": (request.seed + step) % (MAX_SEED + 1)}


def drawn(request: Any) -> dict[str, int]:
    """A subseed of -1 drawn now, where a strength uses it (A1111's get_fixed_seed); else nothing."""
    if request.subseed == -1 and request.subseed_strength > 0:
        return {"subseed": secrets.randbelow(MAX_SEED + 1)}
    return {}


def read_seed(params: Mapping[str, str]) -> Any:
    """A1111 writes each image's own seed; the batch it came from starts `Batch pos` earlier (with a
    variation strength every image has the batch's seed)."""
    if "Seed" not in params:
        return MISSING
    return int(params["Seed"]) - (0 if "Variation seed strength" in params else int(params.get("Batch pos", "0")))


def _read_subseed(params: Mapping[str, str]) -> Any:
    if "Variation seed" not in params:
        return -1  # none written: no strength, so any subseed would do; the default keeps the form tidy
    return (int(params["Variation seed"]) - int(params.get("Batch pos", "0"))) % (MAX_SEED + 1)


def _read_resize(part: int) -> Any:
    def read(params: Mapping[str, str]) -> Any:
        if "Seed resize from" not in params:
            return 0
        width, sep, height = params["Seed resize from"].partition("x")
        if not sep or not width.strip().lstrip("-").isdigit() or not height.strip().lstrip("-").isdigit():
            raise ValueError(f"{params['Seed resize from']!r} is not WIDTHxHEIGHT")
        return int((width, height)[part])
    return read


def _check_resize(f: Field, value: Any, context: Context) -> int:
    """0 (off; A1111's API sends -1 for that), or the size the seed's noise is drawn at."""
    number = validation.as_int(f.name, value, RESIZE_ALLOWED)
    if number in (0, -1):
        return 0
    if not 64 <= number <= MAX_RESIZE:
        raise InvalidValue(f.name, value, RESIZE_ALLOWED)
    return number


FIELDS: tuple[Field, ...] = (
    Field("subseed", "int", -1, "Variation seed (-1 = random)", range=(-1, MAX_SEED), range_note=" (-1 = random)",
          widget="number", tasks=TASKS,
          help="the second seed mixed into the seed's noise by the variation strength; image i takes subseed + i",
          infotext=(Infotext("Variation seed", 95, write=lambda r, i: image_subseed(r, i) if r.subseed_strength > 0
                             else None, read=_read_subseed),),
          a1111=A1111("subseed")),
    Field("subseed_strength", "float", 0.0, "Variation strength", range=(0.0, 1.0), widget="slider", step=0.01,
          tasks=TASKS, help="0: the seed's own picture; 1: the variation seed's; between: a variation of it",
          infotext=(Infotext("Variation seed strength", 96, when=lambda r: r.subseed_strength > 0,
                             format=number_text, read=lambda p: float(p.get("Variation seed strength", "0"))),),
          a1111=A1111("subseed_strength")),
    Field("seed_resize_from_w", "int", 0, "Resize seed from width", range=(-1, MAX_RESIZE),
          range_note=" (0 or -1 = off)", widget="number", tasks=TASKS, check=_check_resize,
          help="the width the seed's picture was made at: its noise is centred in this size's (0 = off)",
          infotext=(Infotext("Seed resize from", 97, write=lambda r, i: f"{r.seed_resize_from_w}x"
                             f"{r.seed_resize_from_h}" if resized(r) else None, read=_read_resize(0)),),
          a1111=A1111("seed_resize_from_w")),
    Field("seed_resize_from_h", "int", 0, "Resize seed from height", range=(-1, MAX_RESIZE),
          range_note=" (0 or -1 = off)", widget="number", tasks=TASKS, check=_check_resize,
          help="the height the seed's picture was made at (0 = off)",
          infotext=(Infotext(None, read=_read_resize(1), note="Seed resize from"),),
          a1111=A1111("seed_resize_from_h")),
)


def check(request: Any, context: Context) -> None:
    """A request rule: variation noise is text to image's (its pipelines take the initial noise as it
    is); a resize needs both sides."""
    if (request.seed_resize_from_w > 0) != (request.seed_resize_from_h > 0):
        name = "seed_resize_from_h" if request.seed_resize_from_w > 0 else "seed_resize_from_w"
        raise InvalidValue(name, 0, "a size as well: resize the seed from both width and height, or neither")
    from .tasks import TASKS as TASK_KINDS  # the task registry (TASKS above: the tasks that take the noise)

    if request.task in TASKS or not TASK_KINDS[request.task].uses_model:  # an upscale draws no noise at all
        return
    if request.subseed_strength > 0:
        raise InvalidValue("subseed_strength", request.subseed_strength,
                           f"0 for task {request.task}: variation seeds work in text to image (task txt2img); "
                           "image to image and inpainting noise their picture themselves")
    if resized(request):
        raise InvalidValue("seed_resize_from_w", request.seed_resize_from_w,
                           f"0 for task {request.task}: resizing the seed works in text to image (task txt2img)")
