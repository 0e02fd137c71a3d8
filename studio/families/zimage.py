"""Z-Image (Turbo): a single-stream flow DiT conditioned on an LLM (Qwen3, its penultimate layer) of
the prompt wrapped in Qwen's chat format; FLUX's 16-channel VAE, latents not packed.

Its prompts are read as an LLM reads them (studio/families/llm.py): plain words, encoded exactly as
ZImagePipeline encodes a prompt; weights are ignored, and said so.
Z-Image-Turbo needs no guidance (8-9 steps, CFG 0); Z-Image's own CFG scale is `pos + g (pos - neg)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule
from .llm import chat_token_counts, encoder_for

if TYPE_CHECKING:
    from ..conditioning import Conditioning

MAX_TOKENS = 512  # ZImagePipeline's max_sequence_length (the chat wrapping included)


def zimage_encode(pipe: Any, text: str, pictures: tuple = ()) -> Any:
    """ZImagePipeline's own encoding of one text: the Qwen3 hidden states of its chat-wrapped tokens."""
    return pipe._encode_prompt([text], device=pipe.text_encoder.device, max_sequence_length=MAX_TOKENS)[0]


def zimage_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """Lists of per-prompt embeddings (their lengths differ), as ZImagePipeline takes them."""
    positive, negative = encode(plan.text, plan.parsed), encode(plan.negative_text, plan.negative_parsed)
    return {"prompt_embeds": [positive.embeds], "negative_prompt_embeds": [negative.embeds]}


ZIMAGE = Family(
    name="zimage",
    text_encoders=(1, "whole"),
    title="Z-Image",
    pipelines={"txt2img": "ZImagePipeline", "img2img": "ZImageImg2ImgPipeline", "inpaint": "ZImageInpaintPipeline"},
    inpaint_model_pipeline="ZImageInpaintPipeline",
    single_file_config="Tongyi-MAI/Z-Image-Turbo",
    checkpoint_keys=("cap_embedder.", "model.diffusion_model.cap_embedder."),
    detect_order=4,
    latent=latents.ZIMAGE,
    size=SizeRule(multiple=16, low=256, high=2048, default=1024),
    prompt_encoder=encoder_for(zimage_encode),
    conditioning=zimage_conditioning,
    count_tokens=chat_token_counts(thinking=True),
    tiny=Lazy("studio.tiny_flow:build_tiny_zimage"),
    clip_skip=False,
    gpu_s_per_mp_step=0.5,
    defaults={"steps": 9, "cfg_scale": 0.0, "sampler": "Euler"},  # Z-Image-Turbo's model card
    sampler_kind="flow",
    denoiser="transformer",
    denoiser_class="ZImageTransformer2DModel",
    token_limit=MAX_TOKENS,
    weighted=False,
    latent_img2img=False,
    # ZImagePipeline hands the scheduler its own sigmas, which the multistep solvers cannot take.
    samplers=("Euler", "Euler a", "LCM"),
)
