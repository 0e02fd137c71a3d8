"""Stable Diffusion 1.x/2.x and SDXL: UNet models conditioned on CLIP text encoders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule

if TYPE_CHECKING:
    from ..conditioning import Conditioning, PromptEncoder

Encode = Callable[[str, Any], "Conditioning"]  # (text, parsed or None) -> embeddings, cached by the engine


def sd15_encoder(pipe: Any, clip_skip: int = 1) -> PromptEncoder:
    """CLIP ViT-L (SD 1.x) or OpenCLIP (SD 2.x): the last layer, or an earlier one by clip skip."""
    from compel import ReturnedEmbeddingsType

    from ..conditioning import ClipEncoder, PromptEncoder, clip_text_encoder

    encoder = clip_text_encoder(pipe.text_encoder, clip_skip)
    vocabulary, (vectors,) = _embeddings(pipe, 1)
    return PromptEncoder(pipe.tokenizer, [ClipEncoder(pipe.tokenizer, encoder,
                                                      ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED, vectors)],
                         embeddings=vocabulary)


def _embeddings(pipe: Any, encoders: int) -> tuple[Any, tuple[Any, ...]]:
    """The model's textual-inversion embeddings (studio/embeddings) and each encoder's vectors."""
    from .. import embeddings

    vocabulary = embeddings.of(pipe)
    return vocabulary, (vocabulary.tables if vocabulary is not None else (None,) * encoders)


def sdxl_encoder(pipe: Any, clip_skip: int = 1) -> PromptEncoder:
    """SDXL always conditions on the penultimate layer of both encoders, un-normalised, side by side,
    plus the second encoder's pooled output."""
    from compel import ReturnedEmbeddingsType

    from ..conditioning import ClipEncoder, PromptEncoder

    layer = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
    vocabulary, (clip_l, clip_g) = _embeddings(pipe, 2)
    return PromptEncoder(pipe.tokenizer, [ClipEncoder(pipe.tokenizer, pipe.text_encoder, layer, clip_l),
                                          ClipEncoder(pipe.tokenizer_2, pipe.text_encoder_2, layer, clip_g)],
                         pooled=True, embeddings=vocabulary)


def clip_conditioning(pipe: Any, plan: Any, encode: Encode) -> dict:
    """Both prompts as the pipeline's embedding arguments; positive and negative get the same number
    of 75-token chunks (the shorter is padded with empty-prompt chunks)."""
    import torch

    from ..conditioning import Conditioning, pad_to_same_length

    positive = encode(plan.text, plan.parsed)
    if positive.pooled is not None and not plan.negative_text and pipe.config.get("force_zeros_for_empty_prompt"):
        # As diffusers' SDXL pipeline does: an empty negative prompt is all zeros.
        negative = Conditioning(torch.zeros_like(positive.embeds), torch.zeros_like(positive.pooled))
    else:
        negative = encode(plan.negative_text, plan.negative_parsed)
        if positive.chunks != negative.chunks:
            positive, negative = pad_to_same_length([positive, negative], encode("", None))
    kwargs = {"prompt_embeds": positive.embeds, "negative_prompt_embeds": negative.embeds}
    if positive.pooled is not None:
        kwargs.update(pooled_prompt_embeds=positive.pooled, negative_pooled_prompt_embeds=negative.pooled)
    return kwargs


def clip_token_counts(pipe: Any, parsed: Any) -> list[int]:
    from .. import embeddings
    from ..conditioning import chunk_token_counts

    return chunk_token_counts(parsed, pipe.tokenizer, embeddings.of(pipe))


SD15 = Family(
    name="sd15",
    text_encoders=(1, "chunks"),
    title="Stable Diffusion 1.x / 2.x",
    pipelines={"txt2img": "StableDiffusionPipeline", "img2img": "StableDiffusionImg2ImgPipeline",
               "inpaint": "StableDiffusionInpaintPipeline"},
    inpaint_model_pipeline="StableDiffusionInpaintPipeline",
    single_file_config="stable-diffusion-v1-5/stable-diffusion-v1-5",
    checkpoint_keys=("cond_stage_model.", "model.diffusion_model."),
    detect_order=20,
    latent=latents.SD15,
    size=SizeRule(multiple=8, low=64, high=2048, default=512),
    prompt_encoder=sd15_encoder,
    conditioning=clip_conditioning,
    count_tokens=clip_token_counts,
    tiny=Lazy("studio.tiny:build_tiny_sd15"),
    control_pipelines={"ControlNetModel": {"txt2img": "StableDiffusionControlNetPipeline",
                                           "img2img": "StableDiffusionControlNetImg2ImgPipeline",
                                           "inpaint": "StableDiffusionControlNetInpaintPipeline"}},
    image_prompts=True,
)

SDXL = Family(
    name="sdxl",
    title="Stable Diffusion XL",
    pipelines={"txt2img": "StableDiffusionXLPipeline", "img2img": "StableDiffusionXLImg2ImgPipeline",
               "inpaint": "StableDiffusionXLInpaintPipeline"},
    inpaint_model_pipeline="StableDiffusionXLInpaintPipeline",
    single_file_config="stabilityai/stable-diffusion-xl-base-1.0",
    checkpoint_keys=("conditioner.embedders.1.",),
    detect_order=10,
    latent=latents.SDXL,
    size=SizeRule(multiple=8, low=64, high=2048, default=1024),
    prompt_encoder=sdxl_encoder,
    conditioning=clip_conditioning,
    count_tokens=clip_token_counts,
    tiny=Lazy("studio.tiny:build_tiny_sdxl"),
    clip_skip=False,
    gpu_s_per_mp_step=0.25,
    control_pipelines={"ControlNetModel": {"txt2img": "StableDiffusionXLControlNetPipeline",
                                           "img2img": "StableDiffusionXLControlNetImg2ImgPipeline",
                                           "inpaint": "StableDiffusionXLControlNetInpaintPipeline"},
                       "ControlNetUnionModel": {"txt2img": "StableDiffusionXLControlNetUnionPipeline",
                                                "img2img": "StableDiffusionXLControlNetUnionImg2ImgPipeline",
                                                "inpaint": "StableDiffusionXLControlNetUnionInpaintPipeline"}},
    image_prompts=True,
)
