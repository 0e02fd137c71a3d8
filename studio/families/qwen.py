"""Qwen-Image (2512) and Qwen-Image-Edit (2511): a 20B MMDiT conditioned on Qwen2.5-VL, with Wan 2.1's
video VAE (16 channels, 8x, one frame: 5-D latents normalised per channel by the VAE's mean and std,
packed 2x2 into tokens: the `qwen` latent layout). Real CFG with the negative prompt (`true_cfg_scale`,
two passes a step): the CFG scale goes there. Qwen-Image-Edit only edits: its VL encoder reads the
reference pictures with the instruction (so the encoding depends on them), and its transformer reads
their latents beside the generated ones (up to three pictures, as Qwen's model card shows).

Prompts are read as an LLM reads them (studio/families/llm.py), encoded by the pipeline's own method
(the edit model's with the pictures sized as its pipeline sizes them), bit for bit.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule
from .llm import chat_token_counts, encoder_for

if TYPE_CHECKING:
    from ..conditioning import Conditioning

MAX_TOKENS = 512  # the pipelines' max_sequence_length


def qwen_encode(pipe: Any, text: str, pictures: tuple = ()) -> tuple[Any, Any]:
    """QwenImagePipeline's own encoding: (embeddings, mask; None when every token counts)."""
    return pipe.encode_prompt(prompt=[text], device=pipe.text_encoder.device, max_sequence_length=MAX_TOKENS)


def qwen_edit_encode(pipe: Any, text: str, pictures: tuple = ()) -> tuple[Any, Any]:
    """QwenImageEditPlusPipeline's own encoding: the instruction with each picture, resized as the
    pipeline resizes its condition images (to CONDITION_IMAGE_SIZE's area, read at call time)."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit

    sized = []
    for picture in pictures:
        width, height = edit.calculate_dimensions(edit.CONDITION_IMAGE_SIZE, picture.width / picture.height)
        sized.append(pipe.image_processor.resize(picture.convert("RGB"), height, width))
    return pipe.encode_prompt(prompt=[text], image=sized or None, device=pipe.text_encoder.device,
                              max_sequence_length=MAX_TOKENS)


def _mask(conditioning: Conditioning) -> Any:
    """The prompt's token mask; all ones where the pipeline says None (one prompt: every token counts).
    The same image either way (checked on the tiny model), without the pipeline's warning per call."""
    import torch

    embeds = conditioning.embeds
    return conditioning.mask if conditioning.mask is not None else torch.ones(
        embeds.shape[:2], dtype=torch.long, device=embeds.device)


def qwen_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """Both prompts with their masks: real CFG runs when the CFG scale is above 1."""
    positive, negative = encode(plan.text, plan.parsed), encode(plan.negative_text, plan.negative_parsed)
    return {"prompt_embeds": positive.embeds, "prompt_embeds_mask": _mask(positive),
            "negative_prompt_embeds": negative.embeds, "negative_prompt_embeds_mask": _mask(negative)}


QWEN_IMAGE = Family(
    name="qwen_image",
    title="Qwen-Image",
    text_encoders=(1, "whole"),
    pipelines={"txt2img": "QwenImagePipeline", "img2img": "QwenImageImg2ImgPipeline",
               "inpaint": "QwenImageInpaintPipeline"},
    inpaint_model_pipeline="QwenImageInpaintPipeline",
    single_file_config="Qwen/Qwen-Image-2512",
    checkpoint_keys=("txt_norm.", "model.diffusion_model.txt_norm."),  # its text stream's own norm
    detect_order=2,
    latent=latents.QWEN,
    size=SizeRule(multiple=16, low=256, high=2048, default=1328),  # 1328 x 1328: Qwen's 1:1 size
    prompt_encoder=encoder_for(qwen_encode),
    prompt_editing=False,  # its text positions and mask are fixed from the prompt before the steps
    conditioning=qwen_conditioning,
    count_tokens=chat_token_counts(thinking=False),
    tiny=Lazy("studio.tiny_qwen:build_tiny_qwen_image"),
    clip_skip=False,
    gpu_s_per_mp_step=1.6,  # 20B, two passes a step with CFG: an estimate, not measured here
    defaults={"steps": 50, "cfg_scale": 4.0, "sampler": "Euler"},  # Qwen-Image-2512's model card
    sampler_kind="flow",
    denoiser="transformer",
    denoiser_class="QwenImageTransformer2DModel",
    cfg_argument="true_cfg_scale",
    token_limit=MAX_TOKENS,
    weighted=False,
    latent_img2img=False,
    # The pipelines hand the scheduler their own sigmas, which the multistep solvers cannot take.
    samplers=("Euler", "Euler a", "LCM"),
)

QWEN_EDIT = dataclasses.replace(
    QWEN_IMAGE,
    name="qwen_edit",
    title="Qwen-Image-Edit",
    pipelines={"edit": "QwenImageEditPlusPipeline"},
    inpaint_model_pipeline="QwenImageEditInpaintPipeline",
    single_file_config="Qwen/Qwen-Image-Edit-2511",
    checkpoint_keys=(),  # Qwen-Image's names: a single file is read as Qwen-Image unless a preset names it
    detect_order=99,
    prompt_encoder=encoder_for(qwen_edit_encode),
    tiny=Lazy("studio.tiny_qwen:build_tiny_qwen_edit"),
    defaults={"steps": 40, "cfg_scale": 4.0, "sampler": "Euler"},  # Qwen-Image-Edit-2511's model card
    references=3,
    needs_references=True,
    encoder_reads_references=True,
)
