"""What several tasks share: strength -> steps, and whole-picture inpainting for inpainting models."""

from __future__ import annotations

from typing import Any

from PIL import Image


def img2img_steps(steps: int, strength: float) -> tuple[int, int]:
    """(num_inference_steps to ask the pipeline for, steps it will run) for a denoising strength.

    As A1111 by default: strength s runs about s x steps of a steps-long schedule. A strength too
    small for even one step gets a longer schedule so exactly one step runs.
    """
    if strength <= 0:
        return steps, 0
    asked = steps
    while min(int(asked * strength), asked) < 1:
        asked += 1
    return asked, min(int(asked * strength), asked)


def repeat_conditioning(conditioning: dict, count: int) -> dict:
    """The prompt embeddings once per image, for a pass whose input already holds `count` images
    (diffusers' num_images_per_prompt would multiply them again)."""
    import torch

    if count == 1:
        return conditioning
    def repeat(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.repeat(count, *([1] * (value.dim() - 1)))
        if isinstance(value, list) and value and all(isinstance(v, torch.Tensor) for v in value):
            return [v for v in value for _ in range(count)]  # Z-Image: one embedding tensor per prompt
        return value

    return {key: repeat(value) for key, value in conditioning.items()}


def whole_picture(ctx: Any, conditioning: dict, steps: int, picture: Any, strength: float) -> list[Any]:
    """Text to image or image to image on a dedicated inpainting model, as A1111 does: inpaint
    the whole picture (an all-white mask), from a grey picture at strength 1 for text to image."""
    request = ctx.request
    size = (request.width, request.height)
    asked, _ = img2img_steps(request.steps, strength)
    return list(ctx.run(
        ctx.loaded.pipe, steps, size, **conditioning, image=picture, mask_image=Image.new("L", size, 255),
        width=size[0], height=size[1], strength=strength, num_inference_steps=asked,
        num_images_per_prompt=request.batch_size, output_type="pil",
    ))
