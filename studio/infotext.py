"""A1111-style infotext ("parameters"): the text A1111, Civitai and other tools read from a PNG.

Written and read through the field table: each field says under which key, at which position of
the parameter line and when it appears, and how its value is read back. Reading follows A1111's
`parse_generation_parameters`: the last line holds `Key: value` pairs (values with commas, colons
or newlines are JSON-quoted), a line starting `Negative prompt:` starts the negative prompt,
everything before is the prompt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .fields import MISSING, TABLE, FieldTable, number_text
from .version import __version__

if TYPE_CHECKING:
    from .request import GenerationRequest

VERSION_KEY = "Version"
CFG_KEY, DISTILLED_KEY = "CFG scale", "Distilled CFG Scale"
# Keys only the engine knows the value of (not a request's field), and their place on A1111's line.
ENGINE_KEYS = {DISTILLED_KEY: 41, "Model hash": 85, "Lora hashes": 150, "TI hashes": 151, VERSION_KEY: 10_000}
# A1111's own pattern, kept as the specification `param_pairs` is tested against (not used: slow).
TRAILING_KEYS = ("Template: ", "Negative Template: ")  # sd-dynamic-prompts' lines after the parameter line
A1111_PARAM_PATTERN = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def quote(value: object) -> str:
    """A1111's quoting rule: values holding ',', ':' or a newline are written as JSON strings."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def join(prompt: str, negative_prompt: str, pairs: Iterable[tuple[str, object]]) -> str:
    """The three-part infotext: prompt, 'Negative prompt:' line (if any), 'Key: value' line."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in pairs if value not in (None, "")))
    return "\n".join(lines)


def format_infotext(request: GenerationRequest, index: int = 0, *, prompt: str | None = None,
                    negative_prompt: str | None = None, extras: Mapping[str, object] | None = None) -> str:
    """The infotext of image `index` of a request's batch, from the field table the request was made
    from. `prompt` / `negative_prompt` are the final prompts (styles applied); `extras` are what only
    the engine knows, by key of ENGINE_KEYS (Model hash, Lora hashes...)."""
    entries = [entry for f in request.FIELDS.request for entry in f.infotext_pairs(request, index)]
    known = {**(extras or {}), VERSION_KEY: f"studio {__version__}"}
    if DISTILLED_KEY in known:  # Forge's form for a guidance-distilled model (FLUX dev): the CFG scale
        # drove the distilled guidance, and `CFG scale` is the real CFG (1: off; true CFG when on)
        real = number_text(getattr(request, "true_cfg_scale", 1.0))
        entries = [(pos, key, real if key == CFG_KEY else value) for pos, key, value in entries]
    entries += [(ENGINE_KEYS[key], key, value) for key, value in known.items()]
    entries.sort(key=lambda entry: entry[0])  # stable: fields sharing a position keep table order
    return join(request.prompt if prompt is None else prompt,
                request.negative_prompt if negative_prompt is None else negative_prompt,
                [(key, value) for _, key, value in entries])


def fields_from_params(params: Mapping[str, str], table: FieldTable = TABLE) -> tuple[dict[str, Any], list[str]]:
    """The settings an infotext's parameter line gives, by field name, and notes about values that
    could not be read. Fields it does not mention are left out."""
    found: dict[str, Any] = {}
    notes: list[str] = []
    for f in table:
        try:
            value = f.from_infotext(params)
        except (ValueError, TypeError) as exc:
            notes.append(f"{f.name}: not readable from the infotext ({exc})")
            continue
        if value is not MISSING:
            found[f.name] = value
    return found, notes


def read_keys(table: FieldTable = TABLE) -> set[str]:
    """The parameter-line keys the studio reads: each field's keys (the table's), and the engine's."""
    return {spec.key for f in table for spec in f.infotext if spec.key} | set(ENGINE_KEYS)


def unused_params(params: Mapping[str, str], table: FieldTable = TABLE) -> dict[str, str]:
    """The pairs of an infotext no field reads (other tools' settings: Variation seed, ENSD, Emphasis,
    TI hashes...): what an import must name, since the studio's image will not follow them."""
    known = read_keys(table)
    return {key: value for key, value in params.items() if key not in known}


@dataclass(frozen=True)
class ParsedInfotext:
    prompt: str
    negative_prompt: str
    params: Mapping[str, str] = field(default_factory=dict)


def unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_word(c: str) -> bool:  # `\w`
    return c.isalnum() or c == "_"


def _is_key_char(c: str) -> bool:  # `[\w \-/]`
    return _is_word(c) or c in " -/"


def param_pairs(line: str) -> list[tuple[str, str]]:
    r"""A1111's parameter-line rule (its regex `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`),
    as a single left-to-right scan: the regex backtracks quadratically on long lines without pairs
    (60 000 letters took 30 s), which an uploaded PNG could use to stall the server."""
    pairs: list[tuple[str, str]] = []
    p, n = 0, len(line)
    while p < n:
        colon = line.find(":", p)
        if colon < 0:
            break
        start = colon
        while start > p and _is_key_char(line[start - 1]):
            start -= 1
        while start < colon and not _is_word(line[start]):
            start += 1  # the key starts with a word character
        if colon - start < 2:  # `\w[\w \-/]+`: two characters at least
            p = colon + 1
            continue
        key = line[start:colon]
        v = colon + 1
        while v < n and line[v].isspace():
            v += 1
        end = _quoted_end(line, v)
        if end is not None and (end == n or line[end] == ","):
            value, p = line[v:end], end + 1
        else:
            comma = line.find(",", v)
            comma = n if comma < 0 else comma
            value, p = line[v:comma], comma + 1
        pairs.append((key, value))
    return pairs


def _quoted_end(line: str, v: int) -> int | None:
    """The index after a JSON-ish quoted string starting at v (at least one character inside)."""
    if v >= len(line) or line[v] != '"':
        return None
    i = v + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == '"':
            return i + 1 if i > v + 1 else None
        i += 1
    return None


def _trailing_templates(lines: list[str]) -> tuple[list[str], dict[str, str]]:
    """sd-dynamic-prompts appends `Template: ...` and `Negative Template: ...` as lines after the parameter
    line: those lines read as its keys, where a parameter line (3 pairs or more) comes before them."""
    end = len(lines)
    while end > 1 and lines[end - 1].startswith(TRAILING_KEYS):
        end -= 1
    if end == len(lines) or len(param_pairs(lines[end - 1])) < 3:
        return lines, {}
    return lines[:end], {key: value for key, _, value in (line.partition(": ") for line in lines[end:])}


def parse_infotext(text: str) -> ParsedInfotext:
    """Split an A1111 infotext into prompt, negative prompt and the parameter line's pairs."""
    lines, trailing = _trailing_templates(text.strip().split("\n") if text else [""])
    last = lines[-1]
    found = param_pairs(last)
    params: dict[str, str] = {}
    if len(found) >= 3:  # A1111's rule: fewer than 3 pairs means the last line is prompt text
        params = {**{key.strip(): unquote(value.strip()) for key, value in found}, **trailing}
        lines = lines[:-1]
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.strip().startswith("Negative prompt:"):
            in_negative = True
            line = line.strip()[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    return ParsedInfotext("\n".join(prompt), "\n".join(negative), params)


def request_fields(info: ParsedInfotext, table: FieldTable = TABLE) -> tuple[dict[str, Any], list[str]]:
    """Request fields recoverable from an infotext (prompts included), and notes about what could
    not be used. `GenerationRequest(**fields)` takes them as they are."""
    found, notes = fields_from_params(info.params, table)
    found = {name: value for name, value in found.items() if table[name].scope == "request"}
    return {"prompt": info.prompt, "negative_prompt": info.negative_prompt, **found}, notes
