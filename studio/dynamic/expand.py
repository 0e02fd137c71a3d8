"""A call's batches with their prompt templates resolved, per image: what the plan runs.

Random mode: each image's prompt (and negative prompt) is drawn from that image's seed (seed + i in a
batch), so a seed gives the same prompt whatever the batch. Images of a batch that resolve alike stay
one batch; where they differ the batch is split into runs of consecutive seeds, each run a request of
its own, so every image gets its own prompt and the same seeds (the cost is the same).
Combinatorial mode: every combination of the prompt, in the library's order, once per batch count, one
image each, seeds seed, seed + 1, ...; the negative prompt resolves per image as in random mode.
A call whose prompts hold no choice or wildcard comes back as it was."""

from __future__ import annotations

import dataclasses
from itertools import groupby
from typing import Sequence, TypeVar

from ..errors import InvalidValue
from ..fields import MAX_SEED
from .. import validation
from .fields import COMBINATORIAL, MAX_COMBINATIONS, MODES, RANDOM
from .folder import WildcardFolder
from .resolve import combinations, has_syntax, resolve

R = TypeVar("R")


def expand(requests: Sequence[R], mode: str | None = None, folder: WildcardFolder | None = None) -> list[R]:
    """The requests to run: `requests` (a call's batches, in order) with their templates resolved."""
    mode = RANDOM if mode is None else validation.choice("dynamic_prompts", mode, MODES)
    if not requests:
        return list(requests)
    first = requests[0]
    prompt, negative = first.prompt, first.negative_prompt
    if not (has_syntax(prompt) or has_syntax(negative)):
        return list(requests)  # nothing to resolve: the very same requests
    templates = {"prompt_template": prompt if has_syntax(prompt) else "",
                 "negative_template": negative if has_syntax(negative) else ""}
    if mode == COMBINATORIAL and has_syntax(prompt):
        return _combinatorial(first, len(requests), folder, templates)
    runs: list[R] = []
    for request in requests:
        seeds = [(request.seed + i) % (MAX_SEED + 1) for i in range(request.batch_size)]
        images = [(resolve(prompt, seed, "prompt", folder), resolve(negative, seed, "negative_prompt", folder), seed)
                  for seed in seeds]
        runs += _runs(request, images, templates)
    return runs


def _runs(request: R, images: list[tuple[str, str, int]], templates: dict[str, str]) -> list[R]:
    """Consecutive images that resolved alike, one request each (a batch that resolved alike stays whole)."""
    out = []
    for (prompt, negative), run in groupby(images, key=lambda image: image[:2]):
        seeds = [seed for _, _, seed in run]
        out.append(dataclasses.replace(request, prompt=prompt, negative_prompt=negative, seed=seeds[0],
                                       batch_size=len(seeds), **templates))
    return out


def _combinatorial(first: R, count: int, folder: WildcardFolder | None, templates: dict[str, str]) -> list[R]:
    prompts = combinations(first.prompt, MAX_COMBINATIONS, "prompt", folder)
    if len(prompts) * count > MAX_COMBINATIONS:
        raise InvalidValue("batch_count", count, f"at most {max(1, MAX_COMBINATIONS // len(prompts))} with "
                                                 f"{len(prompts)} combinations (combinatorial mode makes at most "
                                                 f"{MAX_COMBINATIONS} images)")
    out = []
    for n, prompt in enumerate(prompts * count):
        seed = (first.seed + n) % (MAX_SEED + 1)
        negative = resolve(first.negative_prompt, seed, "negative_prompt", folder)
        out.append(dataclasses.replace(first, prompt=prompt, negative_prompt=negative, seed=seed, batch_size=1,
                                       **templates))
    return out
