"""Prompt syntaxes: A1111 and compel, parsed into compel's structured form, with warnings.

Pure functions, no model needed. Both syntaxes end as a compel `Conjunction`: a list of parts
joined along the token axis (A1111's `BREAK` and compel's `.and()`), each part a run of
`Fragment(text, weight)` (or, in compel syntax, a `.blend()` of such runs). The encoder
(`conditioning.py`) turns that into embeddings, so the same weights encode the same way whichever
syntax spelled them.

A1111's parser is the specification for the A1111 syntax; these are its documented examples:

>>> fragments(parse('normal text'))
[('normal text', 1.0)]
>>> fragments(parse('an (important) word'))
[('an ', 1.0), ('important', 1.1), (' word', 1.0)]
>>> fragments(parse('(unbalanced'))
[('unbalanced', 1.1)]
>>> fragments(parse('\\\\(literal\\\\]'))
[('(literal]', 1.0)]
>>> fragments(parse('(unnecessary)(parens)'))
[('unnecessaryparens', 1.1)]
>>> fragments(parse('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).'))  # doctest: +NORMALIZE_WHITESPACE
[('a ', 1.0), ('house', 1.5730000000000004), (' ', 1.1), ('on', 1.0), (' a ', 1.1), ('hill', 0.55),
 (', sun, ', 1.1), ('sky', 1.4641000000000006), ('.', 1.1)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from . import naming
from .errors import InvalidValue, UnknownName

# compel's parser classes are imported inside the functions that build or read them: importing
# compel.prompt_parser runs compel/__init__.py, which imports torch and transformers.
if TYPE_CHECKING:
    from compel.prompt_parser import Conjunction, FlattenedPrompt

A1111 = "A1111"
COMPEL = "compel"
USUAL_WEIGHTS = (0.0, 3.0)  # outside this, images usually fall apart: worth a warning

# A1111's tokenizer for attention syntax (modules/prompt_parser.py), unchanged.
_RE_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)
_BREAK = None  # the weight slot of a BREAK marker: no number, so (x:-1) cannot be mistaken for one
_RE_BREAK_WORD = re.compile(r"\bBREAK\b")
MAX_NESTING = 32  # brackets opened inside this many others are text: weights past 1.1**32 mean nothing
_RE_COMPEL_LOOKING = re.compile(r"\)[+-]*\d*\.?\d+|\w(\+\+|--)|\.(blend|and|swap)\(")
_RE_A1111_LOOKING = re.compile(r"\([^()]*:\s*[+-]?[.\d]+\s*\)|\[[^\[\]]+\]|\bBREAK\b")


@dataclass(frozen=True)
class ParsedPrompt:
    """A prompt in compel's structured form plus what was odd about it."""

    syntax: str
    conjunction: Conjunction
    warnings: tuple[str, ...] = ()


def _a1111_attention(text: str, warn: Callable[[str], None]) -> list[list]:
    """A1111's parse_prompt_attention, with a warning wherever its lenient rules kick in."""
    res: list[list] = []
    round_brackets: list[tuple[int, int]] = []  # (index into res, position in text)
    square_brackets: list[tuple[int, int]] = []
    too_deep = {"(": 0, "[": 0}  # brackets past MAX_NESTING still open, kept as text with their closers

    def multiply_range(start: int, multiplier: float) -> None:
        for p in range(start, len(res)):
            if res[p][1] is not _BREAK:  # never weight a BREAK marker (A1111 turns it into text)
                res[p][1] *= multiplier

    for m in _RE_ATTENTION.finditer(text):
        token, weight, where = m.group(0), m.group(1), m.start()
        opener = {")": "(", "]": "["}.get(token[-1]) if token.endswith((")", "]")) and not token.startswith("\\") else None
        if token in ("(", "[") and (too_deep[token] or len(round_brackets) + len(square_brackets) >= MAX_NESTING):
            # Every weight applies to every fragment inside it: the cost grows with the depth. Past
            # MAX_NESTING a bracket is text (and so is its closer), which keeps parsing linear.
            if not any(too_deep.values()):
                warn(f"brackets nested deeper than {MAX_NESTING} at position {where}: kept as text")
            too_deep[token] += 1
            res.append([token, 1.0])
        elif opener and too_deep[opener]:
            too_deep[opener] -= 1
            res.append([token, 1.0])
        elif token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            round_brackets.append((len(res), where))
        elif token == "[":
            square_brackets.append((len(res), where))
        elif weight is not None and round_brackets:
            try:
                value = float(weight)
            except ValueError:  # e.g. '1.2.3' matches the digits-and-dots pattern
                warn(f"'{weight}' at position {where} is not a number: weight 1.1 used, as A1111 does")
                value = 1.1
            if not USUAL_WEIGHTS[0] <= value <= USUAL_WEIGHTS[1]:
                warn(f"weight {weight} at position {where} is far outside the usual 0..3 range")
            multiply_range(round_brackets.pop()[0], value)
        elif token == ")" and round_brackets:
            multiply_range(round_brackets.pop()[0], 1.1)
        elif token == "]" and square_brackets:
            multiply_range(square_brackets.pop()[0], 1 / 1.1)
        else:
            if token in (")", "]"):
                warn(f"'{token}' at position {where} has no opening bracket: kept as text")
            elif token == ":" and round_brackets:
                warn(f"':' at position {where} is not followed by a weight and ')': kept as text")
            elif weight is not None:
                warn(f"'{token.strip()}' at position {where} is outside brackets: kept as text")
            for i, part in enumerate(split_break(token)):
                if i > 0:
                    res.append(["BREAK", _BREAK])
                res.append([part, 1.0])
    for pos, where in round_brackets:
        warn(f"'(' at position {where} is never closed: the rest is weighted x1.1, as A1111 does")
        multiply_range(pos, 1.1)
    for pos, where in square_brackets:
        warn(f"'[' at position {where} is never closed: the rest is weighted /1.1, as A1111 does")
        multiply_range(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    merged: list[list] = []  # runs of equal weight joined, as A1111 does (in one pass, not pop by pop)
    for piece, weight in res:
        if merged and weight is not _BREAK and merged[-1][1] == weight:
            merged[-1][0].append(piece)
        else:
            merged.append([[piece], weight])
    return [["".join(pieces), weight] for pieces, weight in merged]


def split_break(token: str) -> list[str]:
    """`token` split at each word BREAK, the whitespace around it removed: A1111's
    `re.split(r"\s*\bBREAK\b\s*", token)`, in linear time (that regex backtracks quadratically over
    runs of whitespace: 32 000 spaces took 16 s)."""
    parts, start = [], 0
    for m in _RE_BREAK_WORD.finditer(token):
        parts.append(token[start:m.start()].rstrip())
        start = m.end()
        while start < len(token) and token[start].isspace():
            start += 1
    parts.append(token[start:])
    return parts


def prompt_editing(text: str) -> list[tuple[int, str]]:
    """(position, text) of each `[a:b]` / `[a|b]` (A1111's prompt editing and alternation): innermost
    square brackets holding ':' or '|', found in one pass."""
    found, open_at = [], -1
    for i, c in enumerate(text):
        if c == "[":
            open_at = i
        elif c == "]" and open_at >= 0:
            inner = text[open_at + 1:i]
            if ":" in inner or "|" in inner:
                found.append((open_at, text[open_at:i + 1]))
            open_at = -1
    return found


def parse_a1111(text: str) -> ParsedPrompt:
    """A1111 syntax: (x) x1.1, ((x)) x1.21, [x] /1.1, (x:1.3), \\( literal, BREAK = new chunk."""
    from compel.prompt_parser import Conjunction, FlattenedPrompt, Fragment

    warnings: list[str] = []
    for where, edited in prompt_editing(text):  # what studio/prompt_schedule.py did not read as an edit
        warnings.append(f"'{edited}' at position {where} looks like A1111 prompt editing or alternation but is "
                        "not one ([from:to:step], [to:step], [from::step] or [a|b], brackets closed, no '|' "
                        "outside them): read as weighted text")
    if _RE_COMPEL_LOOKING.search(text):
        warnings.append("this looks like compel syntax (word++, (words)1.3, .blend(), .and()); in A1111 "
                        "syntax it is plain text: switch the prompt syntax to compel if you meant it")
    sections: list[list[Fragment]] = [[]]
    for chunk_text, weight in _a1111_attention(text, warnings.append):
        if weight is _BREAK:
            sections.append([])
        elif chunk_text:
            sections[-1].append(Fragment(chunk_text, weight))
    prompts = [FlattenedPrompt(section) for section in sections]
    return ParsedPrompt(A1111, Conjunction(prompts, [1.0] * len(prompts)), tuple(warnings))


# compel's pyparsing grammar takes 0.1-0.4 ms a character (adversarial brackets and colons the most):
# longer prompts are read as plain text, which bounds one parse to well under a second.
COMPEL_MAX_CHARS = 2_000


def parse_compel(text: str) -> ParsedPrompt:
    """compel syntax: word++ / word--, (words)1.3, ("a", "b").blend(0.7, 0.3), ("a", "b").and()."""
    from compel.prompt_parser import Blend, Conjunction, FlattenedPrompt, Fragment, PromptParser

    warnings: list[str] = []
    if _RE_A1111_LOOKING.search(text):
        warnings.append("this looks like A1111 syntax ((word:1.3), [word], BREAK); compel reads it "
                        "differently: switch the prompt syntax to A1111 if you meant it")
    if len(text) > COMPEL_MAX_CHARS:
        warnings.append(f"{len(text)} characters is more than compel's parser reads quickly ({COMPEL_MAX_CHARS}); "
                        "the prompt is used as plain text at weight 1")
        return ParsedPrompt(COMPEL, Conjunction([FlattenedPrompt([Fragment(text, 1.0)])]), tuple(warnings))
    try:
        conjunction = PromptParser().parse_conjunction(text)
    except Exception as exc:  # compel's grammar is strict; never crash on a prompt
        warnings.append(f"compel could not parse this prompt ({type(exc).__name__}: {exc}); "
                        "it is used as plain text at weight 1")
        return ParsedPrompt(COMPEL, Conjunction([FlattenedPrompt([Fragment(text, 1.0)])]), tuple(warnings))
    prompts = []
    for prompt in conjunction.prompts:
        if isinstance(prompt, Blend):
            prompts.append(Blend([_plain_fragments(p, warnings) for p in prompt.prompts], list(prompt.weights),
                                 normalize_weights=False))
        else:
            prompts.append(_plain_fragments(prompt, warnings))
    return ParsedPrompt(COMPEL, Conjunction(prompts, list(conjunction.weights)), tuple(warnings))


def _plain_fragments(prompt: FlattenedPrompt, warnings: list[str]) -> FlattenedPrompt:
    """Replace .swap() (cross-attention control, not supported by diffusers pipelines) by its original."""
    from compel.prompt_parser import CrossAttentionControlSubstitute, FlattenedPrompt, Fragment

    out = []
    for child in prompt.children:
        if isinstance(child, CrossAttentionControlSubstitute):
            warnings.append(".swap() is not supported: the original text is used")
            out.extend(child.original)
        elif isinstance(child, Fragment):
            out.append(child)
    return FlattenedPrompt(out)


PARSERS: dict[str, Callable[[str], ParsedPrompt]] = {A1111: parse_a1111, COMPEL: parse_compel}


def syntax_names() -> list[str]:
    return list(PARSERS)


def canonical_syntax(name: str) -> str:
    found = naming.find(name, PARSERS)
    if found is None:
        raise UnknownName("prompt_syntax", name, syntax_names())
    return found


def parse(text: str, syntax: str = A1111) -> ParsedPrompt:
    return PARSERS[canonical_syntax(syntax)](text)


# The work a prompt asks of the text encoders, counted before any model is loaded (no tokenizer).
# A1111 has no bound; a shared studio must: 20 chunks of 75 tokens = 1500 tokens per prompt is past
# any prompt people write (MAX_PROMPT_CHARS allows about 35), and keeps encoding to seconds.
MAX_PROMPT_CHUNKS = 20
CHUNK_TOKENS = 75  # prompt tokens per chunk (conditioning.py wraps each in start/end tokens: 77)
# CLIP's pre-tokenizer (words, single digits, runs of punctuation): every piece is at least one token,
# so this count is a lower bound of the real one; the encoder counts exactly before it encodes.
_RE_CLIP_PIECE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)
_RE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _chunks_of(text: str) -> int:
    """75-token chunks of one part: an empty part is one chunk of padding (A1111 encodes it too)."""
    pieces = sum(1 for _ in _RE_CLIP_PIECE.finditer(text))
    return max(1, -(-pieces // CHUNK_TOKENS))


def estimate_chunks(text: str, syntax: str = A1111) -> int:
    """The 75-token chunks a prompt encodes to, counted without a model, at least as many as an
    unweighted count of its words gives (a lower bound: the encoder refuses exactly, past the bound).

    Consecutive BREAKs are counted, not collapsed: A1111 encodes each empty chunk between them (a
    padding chunk changes the image), so collapsing them would change images made there; the bound on
    chunks is what keeps a flood of them cheap.

    >>> estimate_chunks("a cat"), estimate_chunks("a cat BREAK a dog"), estimate_chunks("BREAK BREAK")
    (1, 2, 3)
    """
    if canonical_syntax(syntax) == A1111:
        parts = [[]]  # the texts of each BREAK part, read as the parser reads them (no compel import)
        for piece, weight in _a1111_attention(text, lambda warning: None):
            if weight is _BREAK:
                parts.append([])
            else:
                parts[-1].append(piece)
        return sum(_chunks_of(" ".join(part)) for part in parts)
    combined = ".and(" in text or ".blend(" in text
    quoted = _RE_QUOTED.findall(text) if combined and len(text) <= COMPEL_MAX_CHARS else []  # longer: plain text
    # compel's .and() and .blend() encode each quoted prompt on its own: each is at least one chunk
    return max(_chunks_of(text), sum(_chunks_of(q) for q in quoted))


def check_chunks(field: str, chunks: int) -> None:
    """Refuse a prompt of more than MAX_PROMPT_CHUNKS chunks, naming its field."""
    if chunks > MAX_PROMPT_CHUNKS:
        raise InvalidValue(field, f"{chunks} chunks of {CHUNK_TOKENS} tokens",
                           f"at most {MAX_PROMPT_CHUNKS} chunks ({MAX_PROMPT_CHUNKS * CHUNK_TOKENS} tokens; "
                           "each BREAK starts a new chunk): a shorter prompt")


def is_weighted(parsed: ParsedPrompt) -> bool:
    """Whether any text carries a weight other than 1 (blends and weighted AND parts count)."""
    from compel.prompt_parser import Blend

    conjunction = parsed.conjunction
    if any(w != 1 for w in conjunction.weights):
        return True
    for prompt in conjunction.prompts:
        if isinstance(prompt, Blend):
            return True
        if any(f.weight != 1 for f in prompt.children):
            return True
    return False


def fragments(parsed: ParsedPrompt) -> list[tuple[str, float]]:
    """Flat (text, weight) view; BREAK / .and() boundaries appear as ('BREAK', -1) like A1111's."""
    from compel.prompt_parser import Blend

    out: list[tuple[str, float]] = []
    for i, prompt in enumerate(parsed.conjunction.prompts):
        if i:
            out.append(("BREAK", -1))
        if isinstance(prompt, Blend):
            for sub, weight in zip(prompt.prompts, prompt.weights):
                out.extend((f.text, f.weight * weight) for f in sub.children)
        else:
            out.extend((f.text, f.weight) for f in prompt.children)
    return out or [("", 1.0)]
