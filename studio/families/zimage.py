"""Z-Image (Turbo): a single-stream flow DiT conditioned on an LLM (Qwen3, its penultimate layer) of
the prompt wrapped in Qwen's chat format; FLUX's 16-channel VAE, latents not packed.

An LLM text encoder does not take token weights (ComfyUI turns weighting off for them too): the
prompt's syntax is removed and its plain words are encoded exactly as ZImagePipeline encodes a
prompt; a prompt that had weights says they were ignored. `AND` parts are read as one text.
Z-Image-Turbo needs no guidance (8-9 steps, CFG 0); Z-Image's own CFG scale is `pos + g (pos - neg)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule
from .t5 import plain_text

if TYPE_CHECKING:
    from ..conditioning import Conditioning

MAX_TOKENS = 512  # ZImagePipeline's max_sequence_length (the chat wrapping included)


class LLMPromptEncoder:
    """Parsed prompts -> the LLM's hidden states of the plain text (one (tokens, width) tensor)."""

    def __init__(self, pipe: Any, clip_skip: int = 1, max_tokens: int = MAX_TOKENS):
        self.pipe = pipe
        self.max_tokens = max_tokens

    def encode(self, parsed: Any) -> Conditioning:
        import torch

        from ..conditioning import Conditioning

        text = plain_text(parsed)
        with torch.no_grad():
            return Conditioning(self.pipe._encode_prompt([text], device=self.pipe.text_encoder.device,
                                                         max_sequence_length=self.max_tokens)[0])

    def empty(self) -> Conditioning:
        from ..conditioning import Conditioning

        return Conditioning(self.pipe._encode_prompt([""], device=self.pipe.text_encoder.device,
                                                     max_sequence_length=self.max_tokens)[0])


def zimage_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """Lists of per-prompt embeddings (their lengths differ), as ZImagePipeline takes them."""
    positive, negative = encode(plan.text, plan.parsed), encode(plan.negative_text, plan.negative_parsed)
    return {"prompt_embeds": [positive.embeds], "negative_prompt_embeds": [negative.embeds]}


def llm_token_counts(pipe: Any, parsed: Any) -> list[int]:
    """Tokens the LLM reads: the plain text in the chat format."""
    wrapped = pipe.tokenizer.apply_chat_template([{"role": "user", "content": plain_text(parsed)}], tokenize=False,
                                                 add_generation_prompt=True, enable_thinking=True)
    return [len(pipe.tokenizer(wrapped)["input_ids"])]


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
    prompt_encoder=LLMPromptEncoder,
    conditioning=zimage_conditioning,
    count_tokens=llm_token_counts,
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
