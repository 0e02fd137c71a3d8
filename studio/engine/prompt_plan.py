"""The prompt plan: everything a request's prompts mean, worked out once per request.

Styles applied (so the Python API gets styles too), LoRA tags found and taken out of the text
that is encoded, both prompts parsed in the request's syntax, their warnings. Encodings are cached
by (model, syntax, clip skip, active LoRAs, text): an unchanged prompt is not encoded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import loras, prompts, references
from ..cache import LRUCache
from ..conditioning import Conditioning
from ..loading import LoadedModel
from ..prompts import ParsedPrompt
from ..styles import apply_styles

if TYPE_CHECKING:
    from ..request import GenerationRequest

PROMPT_CACHE_SIZE = 32  # encoded prompts kept (a few KB to a few MB each)


@dataclass(frozen=True)
class PromptPlan:
    prompt: str  # the final prompt (styles applied, LoRA tags kept): what the infotext shows
    negative_prompt: str
    text: str  # what is encoded: the final prompt without its LoRA tags
    negative_text: str
    parsed: ParsedPrompt
    negative_parsed: ParsedPrompt
    loras: tuple[tuple[str, float], ...]  # the request's LoRAs and the prompt's tags (a later one wins)
    warnings: tuple[str, ...]  # "prompt: ..." / "negative prompt: ..."


def plan_prompts(request: GenerationRequest) -> PromptPlan:
    prompt, negative = apply_styles(request.prompt, request.negative_prompt, request.styles)
    text, tags = loras.extract(prompt)
    negative_text, _ = loras.extract(negative)  # tags in the negative prompt are not words either
    parsed = prompts.parse(text, request.prompt_syntax)
    negative_parsed = prompts.parse(negative_text, request.prompt_syntax)
    warnings = tuple(f"{label}: {w}" for label, p in (("prompt", parsed), ("negative prompt", negative_parsed))
                     for w in p.warnings)
    chosen: dict[str, float] = {}
    for name, weight in (*request.loras, *tags):
        chosen[name] = weight
    return PromptPlan(prompt, negative, text, negative_text, parsed, negative_parsed, tuple(chosen.items()), warnings)


class PromptCache:
    """Encoded prompts of any loaded model, least recently used dropped first."""

    def __init__(self, size: int = PROMPT_CACHE_SIZE):
        self._cache: LRUCache[Conditioning] = LRUCache(size)

    @property
    def encodes(self) -> int:
        """How many prompts have actually been run through a text encoder (tests read it)."""
        return self._cache.loads

    def conditioning(self, loaded: LoadedModel, model_key: tuple, request: GenerationRequest, plan: PromptPlan) -> dict:
        """The pipeline's keyword arguments for both prompts, as the model's family encodes them."""
        fam = loaded.family_def
        clip_skip = request.clip_skip if fam.clip_skip else 1
        encoder: Any = None

        # An edit model whose encoder sees the reference pictures (Qwen-Image-Edit) encodes them with the text.
        pictures = tuple(r.image for r in request.references) if fam.encoder_reads_references and \
            request.task == "edit" else ()
        seen = tuple(references.digest(picture) for picture in pictures)

        def encode(text: str, parsed: ParsedPrompt | None) -> Conditioning:
            def build() -> Conditioning:
                nonlocal encoder
                encoder = encoder or fam.prompt_encoder(loaded.pipe, clip_skip)
                parsed_ = parsed if parsed is not None else prompts.parse(text, request.prompt_syntax)
                return encoder.encode(parsed_, pictures) if pictures else encoder.encode(parsed_)

            # Active LoRAs are part of the key: one on the text encoder changes the embeddings.
            key = (model_key, request.prompt_syntax, clip_skip, plan.loras, text, seen)
            return self._cache.get_or_load(key, build)[0]

        return fam.conditioning(loaded.pipe, plan, encode)

