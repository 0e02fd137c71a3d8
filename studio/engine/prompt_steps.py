"""Prompt editing and alternation in a pass: each step's embeddings swapped into the denoiser's call.

A diffusers pipeline takes one set of prompt embeddings for all its steps. A1111's `[a:b:when]` and
`[a|b]` need another set at some steps, so the pipeline is called with the first step's embeddings
(the plan's own) and a forward pre-hook on its denoiser (and ControlNet) swaps, at every later step
whose text differs, each row of the call's text arguments for the same row of that step's embeddings.

Which row is which is not assumed from any one pipeline's layout (CFG halves, images repeated, FLUX's
separate negative call, SDXL's pooled vector inside `added_cond_kwargs`, Z-Image's list of
embeddings): a row is recognised by being equal to a row of the first step's embeddings, and is
replaced by the same argument's row of the step's. Where the positive and negative rows are equal
(`[dog:5]` with an empty negative prompt) the diffusers conventions decide: the negative half comes
first in a CFG batch, the positive call first where they are separate calls. A pipeline whose
denoiser receives none of those rows is refused at its first step, never run without the edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from ..errors import InvalidValue, StudioError

if TYPE_CHECKING:
    from ..families.base import Family
    from .prompt_plan import PromptPlan

KEY = "prompt_schedule"  # the conditioning's entry that carries the timeline to the passes
HIRES = "hires"  # the pass name a hires fix's second pass gives (its own schedule)


@dataclass(frozen=True, eq=False)
class Steps:
    """One pass's embeddings over its steps: entry i holds for sampling steps up to ends[i]."""

    ends: tuple[int, ...]
    entries: tuple[dict, ...]  # the family's conditioning arguments (prompt_embeds, ...)

    def at(self, step: int) -> dict:
        """As A1111 picks (prompt_schedule.Schedule.at): the first entry the step is not past."""
        for end, entry in zip(self.ends, self.entries):
            if step <= end:
                return entry
        return self.entries[0]


@dataclass(frozen=True, eq=False)
class Timeline:
    base: dict  # the arguments the pipeline is called with: the first step's of the first pass
    first: Steps
    hires: Steps | None


def _length_padded(entries: list[dict], empty: Callable[[], dict], model: str) -> list[dict]:
    """Every entry's token axis as long as the longest's, padded with the empty prompt's blocks (as
    positive and negative are: a pass's arguments keep one shape), so any step's rows fit the call."""
    keys = set(entries[0])
    if any(set(e) != keys for e in entries):
        raise InvalidValue("negative_prompt", "empty at some steps only",
                           f"a negative prompt that is empty at every step or at none for {model}: its pipeline runs "
                           "real CFG only with one, for all its steps")
    out = [dict(e) for e in entries]
    blocks: dict | None = None
    for key in keys:
        values = [e[key] for e in entries]
        if not all(isinstance(v, torch.Tensor) and v.dim() == 3 for v in values):
            continue  # pooled vectors (one row) and Z-Image's lists of any length need no padding
        longest = max(v.shape[1] for v in values)
        if all(v.shape[1] == longest for v in values):
            continue
        blocks = blocks if blocks is not None else empty()
        block = blocks.get(key, blocks.get(key.replace("negative_", "")))
        for entry, value in zip(out, values):
            missing = longest - value.shape[1]
            if missing and (block is None or missing % block.shape[1]):
                raise StudioError(f"Prompt editing could not line up the steps' prompts for {model}: their "
                                  f"embeddings are {value.shape[1]} and {longest} tokens long.")
            if missing:
                entry[key] = torch.cat([value, block.repeat(1, missing // block.shape[1], 1)], dim=1)
    return out


def timeline(plan: PromptPlan, base: dict, conditioning_for: Callable[[str, str], dict], family: Family,
             model: str) -> Timeline:
    """Each step's conditioning arguments for the plan's schedules (each pair of texts encoded once)."""
    if not family.prompt_editing:
        raise InvalidValue("prompt", "prompt editing or alternation ([a:b:when], [a|b])",
                           f"a prompt without them for {model}: the {family.title} pipeline recomputes its text "
                           "positions from the prompt before the steps, so its prompt cannot change between steps")
    made: dict[tuple[str, str], dict] = {(plan.text, plan.negative_text): base}

    def pair(positive: str, negative: str) -> dict:
        if (positive, negative) not in made:
            made[(positive, negative)] = conditioning_for(positive, negative)
        return made[(positive, negative)]

    passes = []
    for schedules in (plan.schedules, plan.hires_schedules):
        if schedules is None:
            passes.append(None)
            continue
        ends = tuple(sorted({end for s in schedules for end, _ in s.entries}))
        passes.append((ends, [pair(schedules[0].at(end), schedules[1].at(end)) for end in ends]))
    unique = list({id(e): e for e in made.values()}.values())
    padded = dict(zip(map(id, unique), _length_padded(unique, lambda: conditioning_for("", ""), model)))
    steps = [None if p is None else Steps(p[0], tuple(padded[id(e)] for e in p[1])) for p in passes]
    return Timeline(padded[id(base)], steps[0], steps[1])


def pass_steps(timeline: Timeline, pass_name: str | None) -> Steps:
    return timeline.hires if pass_name == HIRES and timeline.hires is not None else timeline.first


def _rows(value: Any) -> list | None:
    """A text argument's rows: a (batch, ...) tensor's, or a list of per-prompt tensors (Z-Image)."""
    if isinstance(value, torch.Tensor) and value.dim() >= 2:
        return list(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return list(value)
    return None


class Swapper:
    """The hooks of one pass: the denoiser's (and ControlNet's) calls get the current step's rows."""

    def __init__(self, timeline: Timeline, steps: Steps, pipe: Any, images: int, to_step: Callable[[int], int]):
        self.base, self.steps, self.pipe = timeline.base, steps, pipe
        self.images = images  # the pass's images: a CFG batch holds twice as many rows
        self.to_step = to_step
        self.index = 0  # the pipeline loop's index of the step running
        self.calls: dict[int, int] = {}  # each module's calls in this step (FLUX's true CFG: positive, then negative)
        self.verified = False
        self.base_rows = {key: rows[0] for key, value in timeline.base.items() if (rows := _rows(value)) is not None}
        # Which first-step argument each row of a call's text argument is, by (module, call in its step,
        # argument): the pipeline passes the same tensors every step, so rows are compared once (on a GPU
        # each comparison waits for the device), not at every step.
        self.layouts: dict[tuple, list[str | None]] = {}
        self.cast: dict[tuple, torch.Tensor] = {}  # each step's rows on the call's device and dtype, made once
        self.handles: list[Any] = []

    def install(self, modules: list[Any]) -> "Swapper":
        for module in modules:
            if isinstance(module, torch.nn.Module):
                self.handles.append(module.register_forward_pre_hook(self._hook, with_kwargs=True, prepend=True))
        return self

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def chain(self, callback: Callable[..., dict]) -> Callable[..., dict]:
        """The pipeline's step-end callback, telling the hooks a step has ended first."""
        def on_step_end(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
            self.index, self.calls = index + 1, {}
            return callback(pipe, index, timestep, tensors)

        return on_step_end

    def _hook(self, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        entry = self.steps.at(self.to_step(self.index))
        call = self.calls.get(id(module), 0)
        self.calls[id(module)] = call + 1
        if entry is self.base and self.verified:
            return None
        found = [0]
        new_args = tuple(self._swap(a, entry, (id(module), call, i), found) for i, a in enumerate(args))
        new_kwargs = {k: self._swap(v, entry, (id(module), call, k), found) for k, v in kwargs.items()}
        if not self.verified:
            if not found[0]:
                raise StudioError(f"Prompt editing is not possible with {type(self.pipe).__name__}: its "
                                  f"{type(module).__name__} does not receive the prompt's embeddings as given.")
            self.verified = True
        return new_args, new_kwargs

    def _swap(self, value: Any, entry: dict, where: tuple, found: list) -> Any:
        if isinstance(value, dict):  # SDXL's added_cond_kwargs: its text_embeds are the pooled rows
            return {k: self._swap(v, entry, (*where, k), found) for k, v in value.items()}
        rows = _rows(value)
        if rows is None:
            return value
        layout = self.layouts.get(where)
        if layout is None or len(layout) != len(rows):
            layout = self.layouts[where] = self._layout(rows, where[1])
        out, changed = list(rows), False
        for r, (row, key) in enumerate(zip(rows, layout)):
            if key is None:
                continue
            found[0] += 1
            if entry[key] is not self.base[key]:
                cast = (id(entry[key]), row.device, row.dtype)
                if cast not in self.cast:
                    self.cast[cast] = _rows(entry[key])[0].to(row.device, row.dtype)
                out[r], changed = self.cast[cast], True
        if not changed:
            return value
        return torch.stack(out) if isinstance(value, torch.Tensor) else type(value)(out)

    def _layout(self, rows: list, call: int) -> list[str | None]:
        """Each row's first-step argument (None: not a prompt's row), found by equality."""
        layout = []
        for r, row in enumerate(rows):
            keys = [k for k, base in self.base_rows.items() if base.shape == row.shape
                    and torch.equal(row, base.to(row.device, row.dtype))]
            layout.append(self._pick(keys, r, len(rows), self.images, call) if keys else None)
        return layout

    @staticmethod
    def _pick(keys: list[str], row: int, rows: int, batch: int, call: int) -> str:
        """Positive or negative where both first-step rows are equal: diffusers puts the negative half
        first in a CFG batch, and calls the positive first where the two are separate calls."""
        if len(keys) == 1:
            return keys[0]
        negative = row < rows // 2 if rows == 2 * batch else call > 0
        wanted = [k for k in keys if k.startswith("negative_") == negative]
        return (wanted or keys)[0]


def install(timeline: Timeline, pass_name: str | None, pipe: Any, family: Family, images: int,
            to_step: Callable[[int], int]) -> Swapper:
    """The pass's hooks on its denoiser and ControlNet (if any)."""
    steps = pass_steps(timeline, pass_name)
    modules = [getattr(pipe, family.denoiser, None), getattr(pipe, "controlnet", None)]
    return Swapper(timeline, steps, pipe, images, to_step).install([m for m in modules if m is not None])


__all__ = ["HIRES", "KEY", "Steps", "Swapper", "Timeline", "install", "pass_steps", "timeline"]
