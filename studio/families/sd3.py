"""Stable Diffusion 3 / 3.5 (Medium, Large, Large Turbo): an MMDiT with flow matching, conditioned on
two CLIP encoders (penultimate layers side by side, 77 tokens, plus both pooled embeddings) and T5
(256 tokens by default), with real classifier-free guidance and a negative prompt.

Weights apply to the CLIP tokens by compel's rule (as for SD) and to the T5 tokens by the T5 rule
(`t5.py`); an unweighted prompt is encoded exactly as StableDiffusion3Pipeline encodes it. CLIP reads
the first 77 tokens (SD3 has no chunking); T5 reads 256 and a longer prompt warns. A model loaded
without T5 (`text_encoder_3=None`, as people run SD3.5 to save memory) gets T5's zeros, as diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..lazy import Lazy
from . import latents
from .base import Family, SizeRule
from .t5 import T5Weighting, count_tokens, first_of, plain_text, toward_empty

if TYPE_CHECKING:
    import torch

    from ..conditioning import Conditioning

T5_TOKENS = 256  # StableDiffusion3Pipeline's default max_sequence_length


class SD3PromptEncoder:
    """Parsed prompts -> (CLIP-L | CLIP-G padded to T5's width, then T5 tokens; both pooled)."""

    def __init__(self, pipe: Any, clip_skip: int = 1, max_tokens: int = T5_TOKENS):
        from compel import ReturnedEmbeddingsType

        from ..conditioning import ClipEncoder, tokenize_with

        self.pipe = pipe
        self.device = pipe.text_encoder.device
        layer = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
        self.clips = [ClipEncoder(pipe.tokenizer, pipe.text_encoder, layer),
                      ClipEncoder(pipe.tokenizer_2, pipe.text_encoder_2, layer)]
        self.tokenize = tokenize_with(pipe.tokenizer)
        self._empty: torch.Tensor | None = None
        self.t5 = T5Weighting(
            lambda text: pipe._get_t5_prompt_embeds(prompt=text, max_sequence_length=max_tokens, device=self.device),
            pipe.text_encoder_3, pipe.tokenizer_3, max_tokens)

    def _clip(self, part: Any) -> torch.Tensor:
        import torch

        from ..conditioning import part_fragments, split_chunks

        texts, weights = part_fragments(part)
        first = split_chunks(self.tokenize(texts), weights, None)[0]  # SD3 reads one 77-token window
        return torch.cat([clip.encode([first]) for clip in self.clips], dim=-1)

    def _part(self, part: Any) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        from ..conditioning import between_chunks, part_fragments

        between_chunks()  # a Stop lands between AND / BREAK parts, each a pass through the three encoders
        texts, weights = part_fragments(part)
        if all(w == 1.0 for w in weights):  # exactly the pipeline's own encoding
            embeds, _, _, _ = self.pipe.encode_prompt("".join(texts), None, None, device=self.device,
                                                      do_classifier_free_guidance=False,
                                                      max_sequence_length=self.t5.max_tokens)
            return embeds
        t5 = self.t5.part(part)
        clip = self._clip(part).to(t5.dtype)
        return torch.cat([F.pad(clip, (0, t5.shape[-1] - clip.shape[-1])), t5], dim=-2)  # zero-padded, as diffusers

    def _pooled(self, text: str) -> torch.Tensor:
        import torch

        pooled = [self.pipe._get_clip_prompt_embeds(prompt=text, device=self.device, clip_model_index=i)[1]
                  for i in (0, 1)]
        return torch.cat(pooled, dim=-1)

    def encode(self, parsed: Any) -> Conditioning:
        import torch

        from ..conditioning import Conditioning

        with torch.no_grad():
            pieces = [toward_empty(self.t5.blend_or_part(part, self._part), self._part_empty, weight)
                      for part, weight in zip(parsed.conjunction.prompts, parsed.conjunction.weights)]
            return Conditioning(torch.cat(pieces, dim=1), self._pooled(plain_text(parsed)))

    def _part_empty(self) -> torch.Tensor:
        if self._empty is None:  # only a weighted AND part needs it: encoded once, on first use
            self._empty, _, _, _ = self.pipe.encode_prompt("", None, None, device=self.device,
                                                           do_classifier_free_guidance=False,
                                                           max_sequence_length=self.t5.max_tokens)
        return self._empty

    def empty(self) -> Conditioning:
        from ..conditioning import Conditioning

        return Conditioning(self._part_empty(), self._pooled(""))


def sd3_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """Real CFG: the negative prompt is encoded the same way; the shorter side (AND parts) is padded
    with empty-prompt blocks so both have the same length."""
    import torch

    from ..conditioning import Conditioning

    positive, negative = encode(plan.text, plan.parsed), encode(plan.negative_text, plan.negative_parsed)
    block = encode("", None).embeds
    while positive.embeds.shape[1] != negative.embeds.shape[1]:
        shorter = positive if positive.embeds.shape[1] < negative.embeds.shape[1] else negative
        padded = Conditioning(torch.cat([shorter.embeds, block], dim=1), shorter.pooled)
        positive, negative = (padded, negative) if shorter is positive else (positive, padded)
    return {"prompt_embeds": positive.embeds, "pooled_prompt_embeds": positive.pooled,
            "negative_prompt_embeds": negative.embeds, "negative_pooled_prompt_embeds": negative.pooled}


def sd3_token_counts(pipe: Any, parsed: Any) -> list[int]:
    """T5 tokens (what the 256-token limit is about); without T5, the CLIP tokens of the first part."""
    from ..conditioning import part_fragments, tokenize_with

    if pipe.tokenizer_3 is not None:
        return [count_tokens(pipe.tokenizer_3, parsed)]
    texts, _ = part_fragments(first_of(parsed.conjunction.prompts[0]))
    return [sum(len(ids) for ids in tokenize_with(pipe.tokenizer)(texts))]


SD3 = Family(
    name="sd3",
    text_encoders=(3, "parts"),
    title="Stable Diffusion 3 / 3.5",
    pipelines={"txt2img": "StableDiffusion3Pipeline", "img2img": "StableDiffusion3Img2ImgPipeline",
               "inpaint": "StableDiffusion3InpaintPipeline"},
    inpaint_model_pipeline="StableDiffusion3InpaintPipeline",
    single_file_config="stabilityai/stable-diffusion-3.5-medium",
    checkpoint_keys=("model.diffusion_model.joint_blocks.", "joint_blocks."),
    detect_order=6,
    latent=latents.SD3,
    size=SizeRule(multiple=16, low=256, high=1536, default=1024),
    prompt_encoder=SD3PromptEncoder,
    conditioning=sd3_conditioning,
    count_tokens=sd3_token_counts,
    tiny=Lazy("studio.tiny_flow:build_tiny_sd3"),
    clip_skip=False,
    gpu_s_per_mp_step=0.7,
    defaults={"steps": 28, "cfg_scale": 4.5, "sampler": "Euler"},  # SD3.5's model cards
    sampler_kind="flow",
    denoiser="transformer",
    denoiser_class="SD3Transformer2DModel",
    token_limit=T5_TOKENS,
    repeats_embeds=False,
    # diffusers has SD3's ControlNet for text to image only (its inpainting one needs a special ControlNet)
    control_pipelines={"SD3ControlNetModel": {"txt2img": "StableDiffusion3ControlNetPipeline"}},
    controlnet_class="SD3ControlNetModel",
)
