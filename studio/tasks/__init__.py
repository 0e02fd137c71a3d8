"""The task registry: text to image (with hires fix), image to image, inpainting, outpainting, editing by
instruction, upscaling a picture.

A task is data: which input images it needs, its plan (user steps of each pipeline pass, which
progress counts) and the function that runs its passes. The request carries its task explicitly
and is checked against `needs`; the engine looks the task up here and runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import edit, img2img, inpaint, outpaint, txt2img, upscale
from .common import img2img_steps

if TYPE_CHECKING:
    from ..request import GenerationRequest


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    needs: tuple[str, ...]  # the request's image fields it requires (and the only ones it takes)
    plan: Callable[[GenerationRequest], list[int]]  # request -> user steps of each pass
    run: Callable[..., Any]  # (pass context, conditioning, plan) -> images; without a model: upscale.run's shape
    uses_model: bool = True  # False: no diffusion model is loaded (upscaling a picture)
    pipeline: str = ""  # the family pipeline its passes use, when not the task's own (outpaint: inpaint)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("txt2img", "Text to image", (), txt2img.plan, txt2img.run),
    Task("img2img", "Image to image", ("init_image",), img2img.plan, img2img.run),
    Task("inpaint", "Inpaint", ("init_image", "mask"), inpaint.plan, inpaint.run),
    Task("outpaint", "Outpaint", ("outpaint_image",), outpaint.plan, outpaint.run, pipeline=outpaint.PIPELINE),
    Task("edit", "Edit", ("references",), edit.plan, edit.run),
    Task("upscale", "Upscale", ("upscale_image",), upscale.plan, upscale.run, uses_model=False),
)}
TASK_NAMES = tuple(TASKS)


def plan_passes(request: GenerationRequest) -> list[int]:
    """User steps of each pass of this request: what progress counts (k of their sum)."""
    return TASKS[request.task].plan(request)


__all__ = ["TASKS", "TASK_NAMES", "Task", "img2img_steps", "plan_passes"]
