"""The prompt plan: everything a request's prompts mean, worked out once per request.

Styles applied (so the Python API gets styles too), LoRA tags found and taken out of the text
that is encoded, both prompts parsed in the request's syntax, their warnings, and A1111's prompt
editing and alternation read into schedules (which text at which step, per pass). Encodings are cached
by (model, syntax, clip skip, active LoRAs, text): an unchanged prompt is not encoded again, and each
text of a schedule is encoded once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import embeddings, loras, prompts, references
from ..cache import LRUCache
from ..conditioning import Conditioning
from ..loading import LoadedModel
from ..prompt_schedule import Schedule, check_schedule, hires_steps as prompt_hires_steps
from ..prompts import ParsedPrompt
from ..styles import apply_styles
from . import prompt_steps

if TYPE_CHECKING:
    from ..request import GenerationRequest

PROMPT_CACHE_SIZE = 32  # encoded prompts kept (a few KB to a few MB each)


@dataclass(frozen=True)
class PromptPlan:
    prompt: str  # the final prompt (styles applied, LoRA tags kept): what the infotext shows
    negative_prompt: str
    text: str  # what is encoded at the first step: the final prompt without its LoRA tags, edits read
    negative_text: str
    parsed: ParsedPrompt
    negative_parsed: ParsedPrompt
    loras: tuple[tuple[str, float], ...]  # the request's LoRAs and the prompt's tags (a later one wins)
    warnings: tuple[str, ...]  # "prompt: ..." / "negative prompt: ..."
    # Prompt editing and alternation (A1111 syntax): both prompts' texts over the first pass's steps, and
    # over the hires pass's (None without one), as A1111 schedules them (studio/prompt_schedule.py)
    schedules: tuple[Schedule, Schedule] | None = None
    hires_schedules: tuple[Schedule, Schedule] | None = None

    def with_texts(self, text: str, negative_text: str, syntax: str) -> PromptPlan:
        """This plan encoding other texts (a step of its schedule): what a family's conditioning reads."""
        return dataclasses.replace(self, text=text, negative_text=negative_text, parsed=prompts.parse(text, syntax),
                                   negative_parsed=prompts.parse(negative_text, syntax))

    def every_parsed(self, syntax: str) -> tuple[ParsedPrompt, ...]:
        """Both prompts parsed at every text of their schedules (what any step encodes: the embeddings
        it names, for A1111's TI hashes)."""
        texts = {t for pair in (self.schedules, self.hires_schedules) if pair for s in pair for t in s.texts}
        texts -= {self.text, self.negative_text}
        return (self.parsed, self.negative_parsed, *(prompts.parse(t, syntax) for t in sorted(texts)))

    @property
    def edited(self) -> bool:
        """Whether any text changes between steps (prompt editing or alternation)."""
        return any(s.edited for pair in (self.schedules, self.hires_schedules) if pair for s in pair)


def schedules_of(request: GenerationRequest, text: str, negative_text: str) -> tuple[tuple, tuple | None]:
    """Both prompts' schedules over the first pass's steps and the hires pass's (None without one). Only
    the A1111 syntax edits prompts (compel's has its own syntax): there each text holds for every step."""
    hires = prompt_hires_steps(request)

    def pair(hires_steps: int | None) -> tuple[Schedule, Schedule]:
        if request.prompt_syntax != prompts.A1111:
            return tuple(Schedule(((hires_steps or request.steps, t),)) for t in (text, negative_text))
        return (check_schedule("prompt", text, request.steps, hires_steps),
                check_schedule("negative_prompt", negative_text, request.steps, hires_steps))

    return pair(None), (pair(hires) if hires else None)


def plan_prompts(request: GenerationRequest) -> PromptPlan:
    prompt, negative = apply_styles(request.prompt, request.negative_prompt, request.styles)
    text, tags = loras.extract(prompt)
    negative_text, _ = loras.extract(negative)  # tags in the negative prompt are not words either
    schedules, hires_schedules = schedules_of(request, text, negative_text)
    first, negative_first = (s.at(0) for s in schedules)  # what the first step encodes
    parsed = prompts.parse(first, request.prompt_syntax)
    negative_parsed = prompts.parse(negative_first, request.prompt_syntax)
    # Every text of a schedule is parsed for its warnings: a typo in a later one is said too.
    texts = {(label, t) for label, pair in (("prompt", 0), ("negative prompt", 1))
             for s in (schedules[pair], *(hires_schedules[pair:pair + 1] if hires_schedules else ())) for t in s.texts}
    warnings = tuple(dict.fromkeys(f"{label}: {w}" for label, t in sorted(texts, key=lambda lt: lt[0] != "prompt")
                                   for w in prompts.parse(t, request.prompt_syntax).warnings))
    chosen: dict[str, float] = {}
    for name, weight in (*request.loras, *tags):
        chosen[name] = weight
    return PromptPlan(prompt, negative, first, negative_first, parsed, negative_parsed, tuple(chosen.items()), warnings,
                      schedules, hires_schedules)


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

            # Active LoRAs and the model's textual-inversion files are part of the key: they change the embeddings.
            key = (model_key, request.prompt_syntax, clip_skip, plan.loras, text, seen, embeddings.cache_key(loaded.pipe))
            return self._cache.get_or_load(key, build)[0]

        kwargs = fam.conditioning(loaded.pipe, plan, encode)
        if plan.edited:  # each step's embeddings, swapped in by the passes (studio/engine/prompt_steps.py)
            line = prompt_steps.timeline(plan, kwargs, lambda pos, neg: fam.conditioning(
                loaded.pipe, plan.with_texts(pos, neg, request.prompt_syntax), encode), fam, loaded.name)
            kwargs = {**line.base, prompt_steps.KEY: line}  # the first step's, padded as long as the longest
        return kwargs

