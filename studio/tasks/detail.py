"""The detailer's pass (A1111's ADetailer extension): after text to image or image to image, an
open-vocabulary detector (studio/detail/) finds the faces, hands or people of each picture, and each region
is repainted in turn, the largest first, by "only masked" inpainting (inpaint.repaint) at the detail size,
with its own prompt, negative prompt and denoising strength; the rest of the picture keeps its pixels.

It is a post-pass of the same request, as hires fix is one: `planned` adds its passes to a task's plan (the
most regions it may repaint, `detailer_max`, each at its steps; the cost counts them all: `pass_costs`),
and `post_pass` runs it after the task's own passes. Once the regions are found, progress counts the steps
of the regions there are. Each region is one picture of the batch with that picture's seed (as ADetailer
seeds it), shown in the preview while it is repainted; a Stop lands within its steps, before each
detection and between regions (the pass context's stop_here).
"""

from __future__ import annotations

import contextlib
import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import loras, prompts
from ..detail.masks import region_mask
from ..detail.targets import DETAIL_TASKS, TARGETS
from ..errors import InvalidValue
from ..events import Status
from ..families import family
from ..styles import apply_styles
from ..upscalers.run import stopping
from . import inpaint
from .common import img2img_steps

if TYPE_CHECKING:
    from ..request import GenerationRequest

# A detection, in megapixel-steps per picture: OWLv2 base reads 960x960 px (a ViT-B/16 over 3600 patches,
# about 0.4 TFLOP), some two 512 px SD steps; the large one about four times that.
DETECTION_COST = 0.5
PROMPT_TOKEN = "[PROMPT]"  # ADetailer's: the main prompt, inside the detailer's own


def active(request: GenerationRequest) -> bool:
    return bool(request.detailer) and request.task in DETAIL_TASKS


def passes(request: GenerationRequest) -> list[int]:
    """The user steps of each detail pass the plan counts: `detailer_max` regions (none at strength 0)."""
    steps = img2img_steps(request.steps, request.detailer_strength)[1] if active(request) else 0
    return [steps] * request.detailer_max if steps else []


def size(request: GenerationRequest) -> tuple[int, int]:
    """The size each region is repainted at: the detailer's own, else the request's (hires fix's when on)."""
    if request.detailer_width:
        return request.detailer_width, request.detailer_height
    return request.hires_size if request.hires else (request.width, request.height)


def pass_costs(request: GenerationRequest) -> list[float]:
    """Each detail pass's pixels x steps, as request.pass_costs counts the task's own."""
    width, height = size(request)
    return [float(steps * width * height) for steps in passes(request)]


def detection_cost(request: GenerationRequest) -> float:
    return DETECTION_COST * request.batch_size if active(request) else 0.0


def check(request: GenerationRequest, context: Any) -> None:
    """A request rule: the detailer runs after text or image to image, on a family that can inpaint."""
    if not request.detailer:
        return
    if request.task not in DETAIL_TASKS:
        raise InvalidValue("detailer", True, f"off for task {request.task}: it runs after text to image or image "
                                             "to image (tasks txt2img, img2img)")
    if bool(request.detailer_width) != bool(request.detailer_height):
        raise InvalidValue("detailer_height" if request.detailer_width else "detailer_width", 0,
                           "both the width and the height a region is repainted at, or neither (the picture's)")
    for name in ("detailer_prompt", "detailer_negative_prompt"):
        if loras.extract(getattr(request, name))[1]:
            raise InvalidValue(name, getattr(request, name), "a prompt without <lora:...> tags (the prompt's "
                                                             "LoRAs stay active for the detailer)")
    fam = family(context.source.family) if context.source.family else None
    if fam is not None and "inpaint" not in fam.pipelines:
        raise InvalidValue("detailer", True, f"off for model {context.source.name}: the {fam.title} family has no "
                                             "inpainting pipeline to repaint regions with")


# -- the hooks a task's plan and run take (txt2img.py, img2img.py) ----------------------------------------

def planned(plan: Callable[[Any], list[int]]) -> Callable[[Any], list[int]]:
    """A task's plan with the detail passes after its own."""
    @functools.wraps(plan)
    def with_detailer(request: GenerationRequest) -> list[int]:
        return plan(request) + passes(request)

    return with_detailer


def post_pass(run: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """A task's run, then the detailer over its pictures: the task sees only its own passes' steps. The
    detector loads first: one that cannot load fails the job before any step, not after the picture."""
    @functools.wraps(run)
    def with_detailer(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
        own = len(steps) - len(passes(ctx.request))
        detector = load_detector(ctx) if own < len(steps) else None
        pictures = run(ctx, conditioning, steps[:own])
        return repaint(ctx, conditioning, list(pictures), steps[own:], detector) if active(ctx.request) else pictures

    return with_detailer


# -- the pass ---------------------------------------------------------------------------------------------

def load_detector(ctx: Any) -> Any:
    """The request's detector on the model's device (loaded once, kept for the next request)."""
    from ..detail import detector as detectors

    name = ctx.request.detailer_model
    if not detectors.is_loaded(name, ctx.loaded.device):
        ctx.emit(Status(f"Loading the detector {name}"))
    return detectors.load(name, ctx.loaded.device)


def repaint(ctx: Any, conditioning: dict, pictures: list[Any], planned_steps: list[int], detector: Any) -> list[Any]:
    """Every picture with its regions repainted, the largest first."""
    request = ctx.request
    target, confidence = request.detailer_target, request.detailer_confidence
    if not planned_steps:
        ctx.notice("Detailer: a denoising strength of 0 repaints nothing; the pictures are unchanged.")
        return pictures
    # 1. Every picture's regions first: progress then counts the steps that will run.
    found = []
    for index, picture in enumerate(pictures):
        ctx.stop_here()  # a Stop pressed before or during the last pass lands here, not a step later
        ctx.emit(Status(f"Detailer: looking for {target}s" + _in(index, pictures)))
        with stopping(detector.model, ctx.stop_here):  # a Stop during detection lands at its next layer
            boxes = detector.detect(picture, TARGETS[target], confidence)
        if not boxes:
            ctx.notice(f"Detailer: no {target} found{_in(index, pictures)} at confidence {confidence:g}; "
                       "it is unchanged.")
        elif len(boxes) > request.detailer_max:
            largest = "the largest was" if request.detailer_max == 1 else f"the {request.detailer_max} largest were"
            ctx.notice(f"Detailer: {len(boxes)} {target}s found{_in(index, pictures)}; {largest} repainted "
                       "(detailer_max).")
        found.append(boxes[:request.detailer_max])
    _count_steps(ctx, planned_steps[0] * sum(len(boxes) for boxes in found))
    # 2. Each region in turn, through inpainting's "only masked" path, one picture of the batch at a time.
    cond = region_conditioning(ctx, conditioning)
    results = []
    for index, (picture, boxes) in enumerate(zip(pictures, found)):
        for k, box in enumerate(boxes):
            ctx.stop_here()
            ctx.emit(Status(f"Detailer: {target} {k + 1} of {len(boxes)}" + _in(index, pictures)))
            mask = region_mask(picture.size, box, request.detailer_dilate, request.detailer_mask_blur)
            with _one_picture(ctx, index):
                picture = inpaint.repaint(ctx, cond, planned_steps[0], picture, mask, "original",
                                          request.detailer_padding, size(request), request.detailer_strength)[0]
        results.append(picture)
    return results


def _in(index: int, pictures: list[Any]) -> str:
    return f" in image {index + 1}" if len(pictures) > 1 else ""


def region_conditioning(ctx: Any, conditioning: dict) -> dict:
    """The detailer's prompts as the pipeline's arguments: the request's own (already encoded) when it has
    none; else encoded here as the family encodes, an empty one being the request's (styles applied) and
    `[PROMPT]` standing for it."""
    request = ctx.request
    if not request.detailer_prompt and not request.detailer_negative_prompt:
        return conditioning
    main = apply_styles(request.prompt, request.negative_prompt, request.styles)
    texts = [loras.extract(own.replace(PROMPT_TOKEN, base) if own else base)[0]
             for own, base in zip((request.detailer_prompt, request.detailer_negative_prompt), main)]
    parsed = [prompts.parse(text, request.prompt_syntax) for text in texts]
    fam = ctx.loaded.family_def
    encoder = fam.prompt_encoder(ctx.loaded.pipe, request.clip_skip if fam.clip_skip else 1)
    plan = SimpleNamespace(text=texts[0], parsed=parsed[0], negative_text=texts[1], negative_parsed=parsed[1])

    def encode(text: str, parsed_: Any) -> Any:
        return encoder.encode(parsed_ if parsed_ is not None else prompts.parse(text, request.prompt_syntax))

    return fam.conditioning(ctx.loaded.pipe, plan, encode)


# -- the pass context's parts a post-pass changes (the engine's PassContext, studio/engine/passes.py) ------

def _count_steps(ctx: Any, steps: int) -> None:
    """Progress counts the detail steps that will run (the plan counted `detailer_max` regions a picture)."""
    ctx.total = ctx.done + steps


@contextlib.contextmanager
def _one_picture(ctx: Any, index: int) -> Iterator[None]:
    """Passes of one picture of the batch: its seed alone; no ControlNet (its maps are the whole picture's,
    and ADetailer leaves ControlNet out too); no partial result kept (a Stop in a region answers with the
    pictures before the detailer, not with a region)."""
    kept = ctx.seeds, ctx.control, ctx.partial
    ctx.seeds, ctx.control, ctx.partial = [ctx.seeds[index]], None, None
    try:
        yield
    finally:
        ctx.seeds, ctx.control, ctx.partial = kept
