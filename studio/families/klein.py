"""FLUX.2 [klein] (4B and 9B): a flow transformer conditioned on an LLM (Qwen3: hidden states 9, 18
and 27 stacked), FLUX.2's VAE (32 channels, patchified 2x2 into 128-channel tokens normalised by the
VAE's batch-norm statistics: the `klein` latent layout). One model generates from text and edits:
given reference pictures, their tokens join the generated ones (up to four references).

Its prompts are read as an LLM reads them (studio/families/llm.py): plain words, encoded exactly as
Flux2KleinPipeline encodes a prompt; weights are ignored, and said so. The distilled models (4B, 9B:
`is_distilled`) take no guidance, one transformer pass a step; the base models run real CFG with the
negative prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule
from .llm import chat_token_counts, encoder_for

if TYPE_CHECKING:
    from ..conditioning import Conditioning

MAX_TOKENS = 512  # Flux2KleinPipeline's max_sequence_length


def klein_encode(pipe: Any, text: str, pictures: tuple = ()) -> Any:
    """Flux2KleinPipeline's own encoding of one text (its text ids are made again from the length)."""
    return pipe.encode_prompt([text], device=pipe.text_encoder.device, max_sequence_length=MAX_TOKENS)[0]


def klein_guidance(pipe: Any) -> str:
    return "none" if pipe.config.get("is_distilled") else "cfg"


def klein_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """The prompt's embeddings; the negative prompt's only where CFG runs (a base model): a distilled
    one would ignore them."""
    kwargs = {"prompt_embeds": encode(plan.text, plan.parsed).embeds}
    if klein_guidance(pipe) == "cfg":
        kwargs["negative_prompt_embeds"] = encode(plan.negative_text, plan.negative_parsed).embeds
    return kwargs


KLEIN = Family(
    name="klein",
    title="FLUX.2 Klein",
    text_encoders=(1, "whole"),
    pipelines={"txt2img": "Flux2KleinPipeline", "edit": "Flux2KleinPipeline", "inpaint": "Flux2KleinInpaintPipeline"},
    inpaint_model_pipeline="Flux2KleinInpaintPipeline",
    single_file_config="black-forest-labs/FLUX.2-klein-4B",
    # original (BFL / ComfyUI) and diffusers layouts: FLUX.2's shared modulation, which FLUX.1 lacks
    checkpoint_keys=("single_stream_modulation.", "model.diffusion_model.single_stream_modulation."),
    detect_order=3,
    latent=latents.KLEIN,
    size=SizeRule(multiple=16, low=256, high=2048, default=1024),
    prompt_encoder=encoder_for(klein_encode),
    conditioning=klein_conditioning,
    count_tokens=chat_token_counts(thinking=False),
    tiny=Lazy("studio.tiny_klein:build_tiny_klein"),
    clip_skip=False,
    gpu_s_per_mp_step=0.4,  # an estimate (4B, bf16), not measured here
    defaults={"steps": 4, "cfg_scale": 1.0, "sampler": "Euler"},  # the distilled 4B's model card
    sampler_kind="flow",
    denoiser="transformer",
    denoiser_class="Flux2Transformer2DModel",
    guidance=klein_guidance,
    default_guidance="none",
    token_limit=MAX_TOKENS,
    weighted=False,
    latent_img2img=False,
    references=4,
    # Flux2KleinPipeline computes its own sigmas and shift: the samplers that take them.
    samplers=("Euler", "Euler a"),
)

