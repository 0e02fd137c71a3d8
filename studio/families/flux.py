"""FLUX.1 (dev and schnell): a flow-matching transformer conditioned on T5 (per token) and CLIP
(pooled), with 16-channel latents packed 2x2 into tokens.

Prompt weighting goes to the T5 tokens, as ComfyUI and compel do: a token of weight w is moved from
the empty prompt's encoding e towards its own z by w (e + (z - e) * w), so weight 1 changes nothing.
An unweighted prompt is encoded exactly as FluxPipeline encodes it. The CLIP pooled embedding takes
the prompt's plain text (weights and syntax removed). T5 reads at most `max_sequence_length` tokens
(512 for dev, 256 for schnell's own default but 512 accepted); past that the text is cut, with a
warning in the parsed view and the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule
from .t5 import T5Weighting, count_tokens, plain_text, toward_empty

if TYPE_CHECKING:
    from ..conditioning import Conditioning

T5_MAX_TOKENS = 512


class FluxPromptEncoder:
    """Parsed prompts -> (T5 per-token embeddings, CLIP pooled) for a FLUX pipeline."""

    def __init__(self, pipe: Any, clip_skip: int = 1, max_tokens: int = T5_MAX_TOKENS):
        self.pipe = pipe
        self.device = pipe.text_encoder_2.device
        self.t5 = T5Weighting(
            lambda text: pipe._get_t5_prompt_embeds(prompt=text, max_sequence_length=max_tokens, device=self.device),
            pipe.text_encoder_2, pipe.tokenizer_2, max_tokens)

    def encode(self, parsed: Any) -> Conditioning:
        """Each AND part encoded on its own and joined along the tokens; a blend is the weighted
        mean of its prompts; the pooled CLIP embedding is the plain text's."""
        import torch

        from ..conditioning import Conditioning

        with torch.no_grad():
            pieces = [toward_empty(self.t5.blend_or_part(part, self.t5.part), self.t5.empty, weight)
                      for part, weight in zip(parsed.conjunction.prompts, parsed.conjunction.weights)]
            pooled = self.pipe._get_clip_prompt_embeds(prompt=plain_text(parsed), device=self.device)
            return Conditioning(torch.cat(pieces, dim=1), pooled)

    def empty(self) -> Conditioning:
        from ..conditioning import Conditioning

        return Conditioning(self.t5.empty(), self.pipe._get_clip_prompt_embeds(prompt="", device=self.device))


def flux_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """FLUX.1 is guidance-distilled; a negative prompt is encoded for real CFG (true_cfg_scale > 1,
    a second pass each step), which FluxPipeline runs only when both are given."""
    positive = encode(plan.text, plan.parsed)
    kwargs = {"prompt_embeds": positive.embeds, "pooled_prompt_embeds": positive.pooled}
    if plan.negative_text.strip():
        negative = encode(plan.negative_text, plan.negative_parsed)
        kwargs.update(negative_prompt_embeds=negative.embeds, negative_pooled_prompt_embeds=negative.pooled)
    return kwargs


def t5_token_counts(pipe: Any, parsed: Any) -> list[int]:
    """T5 tokens of the prompt (one sequence, no 75-token chunks), the end token included."""
    return [count_tokens(pipe.tokenizer_2, parsed)]


def flux_guidance(pipe: Any) -> str:
    """dev embeds the guidance scale (one pass a step); schnell has no guidance at all."""
    return "distilled" if pipe.transformer.config.guidance_embeds else "none"


FLUX = Family(
    name="flux",
    text_encoders=(2, "parts"),
    title="FLUX.1",
    pipelines={"txt2img": "FluxPipeline", "img2img": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline"},
    inpaint_model_pipeline="FluxFillPipeline",
    single_file_config="black-forest-labs/FLUX.1-dev",
    # original (BFL / ComfyUI) and diffusers layouts of the transformer
    checkpoint_keys=("double_blocks.", "model.diffusion_model.double_blocks.", "single_transformer_blocks."),
    detect_order=5,
    latent=latents.FLUX,
    size=SizeRule(multiple=16, low=256, high=2048, default=1024),
    prompt_encoder=FluxPromptEncoder,
    conditioning=flux_conditioning,
    count_tokens=t5_token_counts,
    tiny=Lazy("studio.tiny_flow:build_tiny_flux"),
    tiny_variants={"schnell": Lazy("studio.tiny_flow:build_tiny_flux_schnell")},
    clip_skip=False,
    gpu_s_per_mp_step=0.8,
    control_pipelines={"FluxControlNetModel": {"txt2img": "FluxControlNetPipeline",  # union ones too (num_mode)
                                               "img2img": "FluxControlNetImg2ImgPipeline",
                                               "inpaint": "FluxControlNetInpaintPipeline"}},
    controlnet_class="FluxControlNetModel",
    image_prompts=True,  # XLabs' IP-Adapter
    control_latent_img2img=False,
    defaults={"steps": 28, "cfg_scale": 3.5, "sampler": "Euler"},  # FLUX.1 dev's own (a fine-tune of dev)
    sampler_kind="flow",
    denoiser="transformer",
    denoiser_class="FluxTransformer2DModel",
    guidance=flux_guidance,
    default_guidance="distilled",
    true_cfg=True,
    token_limit=T5_MAX_TOKENS,
)
