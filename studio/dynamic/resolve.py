"""A prompt template resolved with the `dynamicprompts` library (sd-dynamic-prompts' grammar: `{a|b}`,
`{2$$a|b|c}`, `{0.5::a|b}`, `__name__`, ...): one prompt from a seed, or every combination in order.
The library's private details (its sampler and context classes) are touched here only."""

from __future__ import annotations

import dataclasses
import functools
import re
from itertools import islice
from random import Random
from typing import Iterator

from dynamicprompts.commands import Command
from dynamicprompts.enums import SamplingMethod
from dynamicprompts.parser.parse import parse
from dynamicprompts.samplers.combinatorial import CombinatorialSampler
from dynamicprompts.samplers.cycle import CyclicalSampler
from dynamicprompts.samplers.random import RandomSampler
from dynamicprompts.sampling_context import SamplingContext
from dynamicprompts.wildcards import WildcardManager
from dynamicprompts.wildcards.values import WildcardValues
from pyparsing import ParseBaseException

from ..errors import InvalidValue, UnknownName
from .folder import WildcardFolder, check_name

MAX_DEPTH = 8  # choices in choices; a wildcard whose lines name wildcards: deeper is a loop (a file naming itself)
SHOWN_NAMES = 40  # of the folder's names, in the message for an unknown one
MAX_READS = 500  # wildcard look-ups while resolving one prompt, however they nest
MAX_CHOICES, MAX_OPTIONS = 100, 500  # `{` and `|` in a prompt: parsing takes milliseconds each
# What makes a prompt a template: a choice's `{` (variables `${...}` and wraps `%{...}` too), or a
# `__name__`. Anything else is left exactly as typed (the parser would drop a `# ...` tail, say), and
# `^__^` or `snake__case` stay text.
SYNTAX = re.compile(r"\{|__[^\s_][^\s]*?__")


def has_syntax(text: str) -> bool:
    return bool(text) and SYNTAX.search(text) is not None


class _Wildcards(WildcardManager):
    """The folder's files as the library's collections, read on first use; a name not in the folder is an
    error naming the field and what the folder has (the library would keep `__name__` as text)."""

    def __init__(self, folder: WildcardFolder | None, field: str):
        files = folder.names() if folder is not None else []
        super().__init__(root_map={"": [{name: _Lines(folder, name) for name in files}]})
        self.folder, self.field, self.reads = folder, field, 0

    def get_values(self, wildcard: str) -> WildcardValues:
        if self.folder is None:  # no folder: `__x__` stays text, as the library leaves an unknown one
            return WildcardValues.from_items([])
        check_name(wildcard)
        self.reads += 1
        if self.reads > MAX_READS:
            raise InvalidValue(self.field, f"__{wildcard}__", f"at most {MAX_READS} wildcard look-ups in a prompt")
        values = super().get_values(wildcard)
        if len(values) == 0:
            names = [f"__{n}__" for n in self.folder.names()]
            shown = names[:SHOWN_NAMES] + ([f"... ({len(names)} in all)"] if len(names) > SHOWN_NAMES else [])
            raise UnknownName(self.field, f"__{wildcard}__", shown or
                              [f"none: the wildcards folder {self.folder.root} has no .txt files"])
        return values


def _manager(folder: WildcardFolder | None, field: str) -> _Wildcards:
    """The folder's wildcards for one prompt: made once per folder object (a plan's), so the library's tree
    and sorted values are built once however many images resolve; its look-ups counted afresh."""
    if folder is None:
        return _Wildcards(None, field)
    key = ("manager", field)
    if key not in folder.cache:
        folder.cache[key] = _Wildcards(folder, field)
    manager = folder.cache[key]
    manager.reads = 0
    return manager


class _Lines:
    """A wildcard file as the library's collection (duck-typed: it calls `get_values`)."""

    def __init__(self, folder: WildcardFolder, name: str):
        self.folder, self.name = folder, name

    def get_values(self) -> list[str]:
        return self.folder.lines(self.name)


@dataclasses.dataclass(frozen=True)
class _Context(SamplingContext):
    depth: int = 0  # wildcards inside wildcards: the library has no bound of its own


def _bounded(sampler: type) -> type:
    def _get_wildcard(self, command, context):  # type: ignore[no-untyped-def]
        if context.depth >= MAX_DEPTH:
            raise InvalidValue(context.wildcard_manager.field, f"__{command.wildcard}__",
                               f"wildcards nested at most {MAX_DEPTH} deep (does a file name itself?)")
        return sampler._get_wildcard(self, command, dataclasses.replace(context, depth=context.depth + 1))

    return type(f"Bounded{sampler.__name__}", (sampler,), {"_get_wildcard": _get_wildcard})


SAMPLERS = {SamplingMethod.RANDOM: _bounded(RandomSampler)(),
            SamplingMethod.COMBINATORIAL: _bounded(CombinatorialSampler)(),
            SamplingMethod.CYCLICAL: _bounded(CyclicalSampler)()}


@functools.lru_cache(maxsize=32)
def _parse(template: str, field: str) -> Command:
    """The template's commands, parsed once for all the images of a call (the library's parser takes
    milliseconds a choice), after its choices are counted: a prompt of thousands would take seconds."""
    for mark, limit in (("{", MAX_CHOICES), ("|", MAX_OPTIONS)):
        if template.count(mark) > limit:
            raise InvalidValue(field, f"<{template.count(mark)} '{mark}'>", f"at most {MAX_CHOICES} choices and "
                                                                            f"{MAX_OPTIONS} options ('|') a prompt")
    if _nesting(template) > MAX_DEPTH:  # the parser recurses per level: ~50 levels reach Python's limit
        raise InvalidValue(field, template, f"choices nested at most {MAX_DEPTH} deep")
    try:
        return parse(template)
    except ParseBaseException as exc:
        raise InvalidValue(field, template, f"dynamic-prompt syntax (the library stops at character {exc.loc + 1}: "
                                            f"{exc.msg}); a choice is {{a|b}}, a wildcard __name__") from None
    except RecursionError:
        raise InvalidValue(field, template, f"choices nested at most {MAX_DEPTH} deep") from None


def _nesting(template: str) -> int:
    depth = deepest = 0
    for char in template:
        if char == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif char == "}":
            depth = max(0, depth - 1)
    return deepest


def _results(template: str, field: str, folder: WildcardFolder | None, method: SamplingMethod,
             rand: Random) -> Iterator[str]:
    command = _parse(template, field)
    context = _Context(default_sampling_method=method, wildcard_manager=_manager(folder, field),
                       samplers=dict(SAMPLERS), rand=rand)
    try:
        for result in context.generator_from_command(command):
            yield result.text
    except RecursionError:
        raise InvalidValue(field, template, f"wildcards and choices nested at most {MAX_DEPTH} deep") from None


def resolve(template: str, seed: int, field: str = "prompt", folder: WildcardFolder | None = None) -> str:
    """The template's prompt for one image: its choices drawn from the image's seed (the same seed, the
    same prompt). Text without the syntax comes back as it is."""
    if not has_syntax(template):
        return template
    # Seeded by field too: a negative prompt's `{a|b}` is not tied to the prompt's.
    return next(_results(template, field, folder, SamplingMethod.RANDOM, Random(f"{field}:{seed}")), "")


def combinations(template: str, cap: int, field: str = "prompt", folder: WildcardFolder | None = None) -> list[str]:
    """Every prompt the template makes, in the library's order; past `cap` of them, refused by `field`
    before anything runs (a `{~a|b}` random choice inside makes them endless: refused too)."""
    if not has_syntax(template):
        return [template]
    found = list(islice(_results(template, field, folder, SamplingMethod.COMBINATORIAL, Random(0)), cap + 1))
    if len(found) > cap:
        raise InvalidValue(field, template, f"at most {cap} combinations in combinatorial mode (dynamic_prompts): "
                                            "fewer choices, or random mode")
    return found
