"""A1111's prompt editing and alternation: which prompt text is encoded at which sampling step.

`[from:to:when]` swaps `from` for `to` after step `when` (`[to:when]` adds, `[from::when]` removes),
`when` a step number or, written with a dot, a fraction of the steps; `[a|b|c]` alternates every step.
They nest and mix with weights and BREAK: each step's text is an ordinary A1111 prompt, parsed and
encoded as any other (`prompts.py`, `conditioning.py`).

A1111 reads these with a lark Earley grammar (modules/prompt_parser.py). Its results are the
specification; its parser is not used: Earley parsing took 8.5 s for a 1,600-character prompt of
ordinary brackets here, and seconds grow with every bracket. This is a recursive-descent reading of
the same grammar, memoised per position so a 10,000-character prompt parses in milliseconds:

    start:       (prompt | stray "[", "]", "(", ")", ":")*      a "|" outside [a|b] fails the whole parse
    prompt:      (emphasized | scheduled | alternate | plain | whitespace)*
    emphasized:  "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
    scheduled:   "[" [prompt ":"] prompt ":" [ws] NUMBER [ws] "]"
    alternate:   "[" prompt ("|" [prompt])+ "]"

A prompt the grammar cannot read is used as it is at every step, as A1111 does. Checked against
A1111's doctests (below and tests/unit/test_prompt_schedule.py), and against A1111's own parser on
random prompts of brackets, colons, bars, digits and escapes (see docs/prompts.md).

>>> g = lambda p: schedule(p, 10).entries
>>> g("a [b:3]")
((3, 'a '), (10, 'a b'))
>>> g("a [b : c : 1] d")
((1, 'a b  d'), (10, 'a  c  d'))
>>> g("a[b:[c:d:2]:1]e")
((1, 'abe'), (2, 'ace'), (10, 'ade'))
>>> g("[fe|||]male")[:5]
((1, 'female'), (2, 'male'), (3, 'male'), (4, 'male'), (5, 'female'))
>>> schedule("a [b:1.5] c", 10, hires_steps=10).entries
((5, 'a  c'), (10, 'a b c'))
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Union

from .errors import InvalidValue

# How many different texts one prompt may encode over its steps. Each is a full encoding (A1111 has no
# bound): [a|b] [c|d|e] is 6, nested edits a few more; 16 stays within seconds of encoding on a CPU.
MAX_SCHEDULED_PROMPTS = 16

MAX_DEPTH = 100  # brackets nested deeper than this: the prompt is read as text at every step (not edited)
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)")
_WHITESPACE = re.compile(r"\s+")
_SPECIAL = "\\[]():|"


@dataclass(frozen=True)
class _Scheduled:
    before: tuple | None  # None: `[to:when]`, nothing before
    after: tuple
    when: str  # the number as written: a dot makes it a fraction of the steps
    written: str = ""  # what stood between the last ':' and ']' (the number and the spaces around it)

    def as_text(self) -> tuple:
        """The edit read as text, its brackets and colons stray (what A1111's parser sometimes makes it)."""
        return ("[", *((self.before, ":") if self.before is not None else ()), self.after, ":", self.written, "]")


@dataclass(frozen=True)
class _Alternate:
    options: tuple  # each a prompt (a tuple of nodes), () where left empty: [fe|]


_Node = Union[str, _Scheduled, _Alternate, tuple]


class _Fail(Exception):
    """The grammar cannot read the prompt (a "|" outside [a|b], a lone backslash at the end)."""


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.prompts: dict[int, tuple[tuple, int, int]] = {}
        self.brackets: dict[int, tuple[_Node, int] | None] = {}
        self.depth = 0  # brackets open around the one being read

    def prompt(self, i: int) -> tuple[tuple, int]:
        """The longest prompt from i (any run of text and bracket constructs), and where it ends."""
        nodes, end, _ = self._prompt(i)
        return nodes, end

    def _prompt(self, i: int) -> tuple[tuple, int, int]:
        """`prompt`, and where its last node starts."""
        if i in self.prompts:
            return self.prompts[i]
        start, nodes, text, last = i, [], self.text, i
        while i < len(text):
            c = text[i]
            if c in "([":
                found = self.construct(i)
                if found is None:
                    break
                last = i
                node, i = found
                nodes.append(node)
            elif c == "\\":
                if i + 1 >= len(text) or text[i + 1] == "\n":  # the grammar's `\\.`: not a newline, not the end
                    break
                nodes.append(text[i:i + 2])
                i += 2
            elif c in _SPECIAL:
                break
            else:
                j = i
                while j < len(text) and text[j] not in _SPECIAL:
                    j += 1
                nodes.append(text[i:j])
                i = j
        self.prompts[start] = (tuple(nodes), i, last)
        return self.prompts[start]

    def construct(self, i: int) -> tuple[_Node, int] | None:
        """The bracket construct opening at i, or None when there is none (its bracket is then text)."""
        if i not in self.brackets:
            self.depth += 1
            if self.depth > MAX_DEPTH:  # past any prompt people write; recursion stays far from Python's limit
                raise _Fail(i)
            self.brackets[i] = self._round(i) if self.text[i] == "(" else self._square(i)
            self.depth -= 1
        return self.brackets[i]

    def _at(self, i: int) -> str:
        return self.text[i] if i < len(self.text) else ""

    def _round(self, i: int) -> tuple[_Node, int] | None:
        first, j = self.prompt(i + 1)
        if self._at(j) == ")":
            return ("(", first, ")"), j + 1
        if self._at(j) == ":":
            second, k = self.prompt(j + 1)
            if self._at(k) == ")":
                return ("(", first, ":", second, ")"), k + 1
        return None

    def _square(self, i: int) -> tuple[_Node, int] | None:
        first, j = self.prompt(i + 1)
        c = self._at(j)
        if c == "]":
            return ("[", first, "]"), j + 1
        if c == "|":
            options = [first]
            while self._at(j) == "|":
                option, j = self.prompt(j + 1)
                options.append(option)
            return (_Alternate(tuple(options)), j + 1) if self._at(j) == "]" else None
        if c != ":":
            return None
        when = self._when(j + 1)  # [to:when]
        if when is not None:
            return _Scheduled(None, first, *when[:2]), when[2]
        second, k = self.prompt(j + 1)  # [from:to:when]
        if self._at(k) == ":":
            when = self._when(k + 1)
            if when is not None:
                return _Scheduled(first, second, *when[:2]), when[2]
        return None

    def _when(self, i: int) -> tuple[str, str, int] | None:
        """`[ws] NUMBER [ws] ]` from i: the number, all that was written, and the position past the bracket."""
        start = i
        space = _WHITESPACE.match(self.text, i)
        i = space.end() if space else i
        number = _NUMBER.match(self.text, i)
        if number is None:
            return None
        j = number.end()
        space = _WHITESPACE.match(self.text, j)
        j = space.end() if space else j
        return (number.group(0), self.text[start:j], j + 1) if self._at(j) == "]" else None

    def _strays(self, i: int) -> int:
        """How many stray brackets and colons follow one another from i (no prompt text between)."""
        count = 0
        while i < len(self.text) and self.text[i] in "[]():" and (count == 0 or not self.prompt(i)[0]):
            count, i = count + 1, i + 1
        return count

    def start(self) -> tuple:
        """The whole text: prompts between stray brackets and colons, as A1111's `start` rule reads it."""
        nodes, i, text = [], 0, self.text
        while i < len(text):
            prompt, j, last = self._prompt(i)
            strays = self._strays(j)
            end, depth = _chain_end(prompt[-1]) if prompt and strays else (None, 0)
            if isinstance(end, _Scheduled) and (strays + depth) % 2 == 0:
                # How A1111's Earley parser resolves this ambiguity (measured): an edit that ends the prompt
                # before stray brackets or colons is text when their count and the brackets around it add up
                # to an even number (`[a:b:3]]]`, `([a:b:3]))`; not `[a:b:3]]`, `([a:b:3])`).
                nodes.extend(prompt[:-1])
                if depth == 0:  # its own brackets stray: what follows its '[' is read again as text
                    nodes.append(text[last])
                    i = last + 1
                    continue
                nodes.append(_end_as_text(prompt[-1], depth))
                prompt = ()
            nodes.extend(prompt)
            if j < len(text):
                if text[j] in "[]():":
                    nodes.append(text[j])  # a bracket that opens or closes nothing: text
                    j += 1
                else:
                    raise _Fail(j)
            i = j
        return tuple(nodes)


def _chain_end(node: _Node) -> tuple[_Node, int]:
    """The construct a bracketed construct ends with, through the brackets that end with it: `((x))`'s
    x, and how many brackets lie around it."""
    depth = 0
    while isinstance(node, tuple) and node and node[0] in ("(", "[") and node[-2]:
        node, depth = node[-2][-1], depth + 1
    return node, depth


def _end_as_text(node: tuple, depth: int) -> tuple:
    """`node` with the edit `depth` brackets down its end read as text."""
    inner = node[-2]
    last = inner[-1].as_text() if depth == 1 else _end_as_text(inner[-1], depth - 1)
    return (*node[:-2], (*inner[:-1], last), node[-1])


def _walk(nodes: tuple):
    for node in nodes:
        if isinstance(node, tuple):
            yield from _walk(node)
        else:
            yield node
            if isinstance(node, _Scheduled):
                yield from _walk((node.before or (), node.after))
            elif isinstance(node, _Alternate):
                yield from _walk(node.options)


def _step_of(when: str, steps: int, int_offset: int, flt_offset: float) -> int:
    """A1111's reading of `when`: with a dot, a fraction of the steps; else a step number."""
    value = float(when)
    value = (value - flt_offset) * steps if "." in when else value - int_offset
    if math.isnan(value):
        return -1
    return min(steps, int(value) if math.isfinite(value) else (steps if value > 0 else -1))


def _render(nodes: tuple, step: int, when_of: dict) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Scheduled):
            out.append(_render(node.before or () if step <= when_of[id(node)] else node.after, step, when_of))
        elif isinstance(node, _Alternate):
            out.append(_render(node.options[(step - 1) % len(node.options)], step, when_of))
        else:
            out.append(_render(node, step, when_of))
    return "".join(out)


@dataclass(frozen=True)
class Schedule:
    """A prompt's texts over a pass's steps, as A1111's `[end_at_step, text]` pairs."""

    entries: tuple[tuple[int, str], ...]

    def at(self, step: int) -> str:
        """The text for sampling step `step` (0-based): the first entry the step is not past, as A1111's
        reconstruct_cond_batch picks (the first entry when none is, as A1111 does)."""
        for end, text in self.entries:
            if step <= end:
                return text
        return self.entries[0][1]

    @property
    def texts(self) -> tuple[str, ...]:
        """Its different texts, in the order they first appear."""
        return tuple(dict.fromkeys(text for _, text in self.entries))

    @property
    def edited(self) -> bool:
        return len(self.entries) > 1


def schedule(text: str, steps: int, hires_steps: int | None = None) -> Schedule:
    """A1111's get_learned_conditioning_prompt_schedules for one prompt: `steps` of the first pass, or
    with `hires_steps` the hires pass's (where whole numbers past `steps` and fractions past 1 land)."""
    if "[" not in text:  # no edits and no alternation: the text as it is (the common case, no parse)
        return Schedule(((steps if hires_steps is None else hires_steps, text),))
    int_offset, flt_offset, total = (0, 0.0, steps) if hires_steps is None else (steps, 1.0, hires_steps)
    try:
        tree = _Parser(text).start()
    except _Fail:
        return Schedule(((total, text),))
    when_of, ends = {}, {total}
    for node in _walk(tree):
        if isinstance(node, _Scheduled):
            when_of[id(node)] = _step_of(node.when, total, int_offset, flt_offset)
            if when_of[id(node)] >= 1:
                ends.add(when_of[id(node)])
        elif isinstance(node, _Alternate):
            ends.update(range(1, total + 1))
    return Schedule(tuple((end, _render(tree, end, when_of)) for end in sorted(ends)))


def hires_steps(request: Any) -> int | None:
    """The steps a request's hires pass schedules its prompts over (A1111's hr_second_pass_steps or the
    steps), or None without a hires pass."""
    return (request.hires_steps or request.steps) if request.task == "txt2img" and request.hires else None


def check_schedule(field: str, text: str, steps: int, hires_steps: int | None = None) -> Schedule:
    """The schedule, refused by its field when it asks for more encodings than a request may make."""
    found = schedule(text, steps, hires_steps)
    if len(found.texts) > MAX_SCHEDULED_PROMPTS:
        raise InvalidValue(field, f"{len(found.texts)} different prompts over its steps",
                           f"at most {MAX_SCHEDULED_PROMPTS} (each [a|b] alternation and [a:b:when] edit "
                           "multiplies them): fewer alternations")
    return found


def describe(found: Schedule) -> list[dict]:
    """Which text runs at which steps, 1-based and inclusive as people count them: A1111's entry
    (end, text) holds for 0-based sampling steps up to `end`, so the last step (`total`) is never past
    the one before it, and an entry that starts past the steps never runs."""
    rows, first, total = [], 1, found.entries[-1][0]
    for end, text in found.entries:
        last = min(end + 1, total)
        if last < first:
            continue
        if rows and rows[-1]["text"] == text:
            rows[-1]["last"] = last
        else:
            rows.append({"first": first, "last": last, "text": text})
        first = last + 1
    return rows
