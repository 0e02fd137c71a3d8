"""Editing by instruction: the prompt says what to change, the reference pictures what to change it
in (FLUX.2 Klein, Qwen-Image-Edit, Kontext). The family's edit pipeline reads every reference; the
output size is the request's (from the first reference unless set by hand: studio/request.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..request import GenerationRequest


def plan(request: GenerationRequest) -> list[int]:
    return [request.steps]


def run(ctx: Any, conditioning: dict, steps: list[int]) -> list[Any]:
    request = ctx.request
    pictures = [reference.image.convert("RGB") for reference in request.references]
    return list(ctx.run(
        ctx.pipe_for("edit"), steps[0], (request.width, request.height), **conditioning,
        image=pictures if len(pictures) > 1 else pictures[0],  # Kontext reads one picture (a list: a batch)
        num_inference_steps=request.steps, width=request.width, height=request.height,
        num_images_per_prompt=request.batch_size, output_type="pil",
    ))
