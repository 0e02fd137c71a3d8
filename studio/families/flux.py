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

from typing import Any, Callable

import torch
from compel.prompt_parser import Blend, FlattenedPrompt

from .. import tiny_flow
from ..conditioning import Conditioning
from . import latents
from .base import Family, SizeRule

T5_MAX_TOKENS = 512


def _fragments(part: FlattenedPrompt) -> tuple[list[str], list[float]]:
    return [f.text for f in part.children], [float(f.weight) for f in part.children]


class FluxPromptEncoder:
    """Parsed prompts -> (T5 per-token embeddings, CLIP pooled) for a FLUX pipeline."""

    def __init__(self, pipe: Any, clip_skip: int = 1, max_tokens: int = T5_MAX_TOKENS):
        self.pipe = pipe
        self.max_tokens = max_tokens
        self._empty: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.pipe.text_encoder_2.device

    def _t5_plain(self, text: str) -> torch.Tensor:
        # The pipeline's own T5 encoding (padded to max_tokens): an unweighted prompt is exactly it.
        return self.pipe._get_t5_prompt_embeds(prompt=text, max_sequence_length=self.max_tokens, device=self.device)

    def _t5_weighted(self, texts: list[str], weights: list[float]) -> torch.Tensor:
        tokenizer = self.pipe.tokenizer_2
        ids: list[int] = []
        mults: list[float] = []
        for text, weight in zip(texts, weights):
            piece = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
            ids += piece
            mults += [weight] * len(piece)
        ids, mults = ids[: self.max_tokens - 1] + [tokenizer.eos_token_id], mults[: self.max_tokens - 1] + [1.0]
        padding = self.max_tokens - len(ids)
        ids += [tokenizer.pad_token_id] * padding
        mults += [1.0] * padding
        encoder = self.pipe.text_encoder_2
        z = encoder(torch.tensor([ids], device=self.device), output_hidden_states=False)[0]
        z = z.to(dtype=encoder.dtype)
        empty = self.empty_t5()
        weight = torch.tensor(mults, device=z.device, dtype=z.dtype)[None, :, None]
        return empty + (z - empty) * weight

    def empty_t5(self) -> torch.Tensor:
        if self._empty is None:
            self._empty = self._t5_plain("")
        return self._empty

    def _part(self, part: FlattenedPrompt) -> torch.Tensor:
        texts, weights = _fragments(part)
        if all(w == 1.0 for w in weights):
            return self._t5_plain("".join(texts))
        return self._t5_weighted(texts, weights)

    @torch.no_grad()
    def encode(self, parsed: Any) -> Conditioning:
        """Each AND part encoded on its own and joined along the tokens; a blend is the weighted
        mean of its prompts; the pooled CLIP embedding is the plain text's."""
        pieces = []
        for part, weight in zip(parsed.conjunction.prompts, parsed.conjunction.weights):
            if isinstance(part, Blend):
                total = sum(part.weights) or 1.0
                embeds = sum(w * self._part(p) for w, p in zip(part.weights, part.prompts)) / total
            else:
                embeds = self._part(part)
            if weight != 1:
                empty = self.empty_t5()
                embeds = empty + (embeds - empty) * weight
            pieces.append(embeds)
        pooled = self.pipe._get_clip_prompt_embeds(prompt=plain_text(parsed), device=self.device)
        return Conditioning(torch.cat(pieces, dim=1), pooled)

    def empty(self) -> Conditioning:
        return Conditioning(self.empty_t5(), self.pipe._get_clip_prompt_embeds(prompt="", device=self.device))


def plain_text(parsed: Any) -> str:
    """The prompt's words without weights or syntax (what CLIP's pooled embedding reads)."""
    parts = []
    for part in parsed.conjunction.prompts:
        first = part.prompts[0] if isinstance(part, Blend) else part
        parts.append("".join(_fragments(first)[0]))
    return " ".join(p.strip() for p in parts if p.strip())


def flux_conditioning(pipe: Any, plan: Any, encode: Callable[[str, Any], Conditioning]) -> dict:
    """FLUX.1 is guidance-distilled: no negative prompt pass (real CFG is not offered yet)."""
    positive = encode(plan.text, plan.parsed)
    return {"prompt_embeds": positive.embeds, "pooled_prompt_embeds": positive.pooled}


def t5_token_counts(pipe: Any, parsed: Any) -> list[int]:
    """T5 tokens of the prompt (one sequence, no 75-token chunks), the end token included."""
    tokenizer = pipe.tokenizer_2
    count = 1
    for part in parsed.conjunction.prompts:
        first = part.prompts[0] if isinstance(part, Blend) else part
        count += sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in _fragments(first)[0])
    return [count]


def flux_guidance(pipe: Any) -> str:
    """dev embeds the guidance scale (one pass a step); schnell has no guidance at all."""
    return "distilled" if pipe.transformer.config.guidance_embeds else "none"


FLUX = Family(
    name="flux",
    title="FLUX.1",
    pipelines={"txt2img": "FluxPipeline", "img2img": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline"},
    inpaint_model_pipeline="FluxFillPipeline",
    single_file_config="black-forest-labs/FLUX.1-dev",
    checkpoint_keys=("double_blocks.", "model.diffusion_model.double_blocks."),
    detect_order=5,
    latent=latents.FLUX,
    size=SizeRule(multiple=16, low=256, high=2048, default=1024),
    prompt_encoder=FluxPromptEncoder,
    conditioning=flux_conditioning,
    count_tokens=t5_token_counts,
    tiny=tiny_flow.build_tiny_flux,
    tiny_variants={"schnell": tiny_flow.build_tiny_flux_schnell},
    clip_skip=False,
    sampler_kind="flow",
    denoiser="transformer",
    guidance=flux_guidance,
    default_guidance="distilled",
    token_limit=T5_MAX_TOKENS,
)
