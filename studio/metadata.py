"""PNG metadata: A1111's `parameters` infotext (read and write) plus our full request as JSON.

Reading follows A1111's `parse_generation_parameters`: the last line holds `Key: value` pairs
(values with commas, colons or newlines are JSON-quoted), a line starting `Negative prompt:` starts
the negative prompt, everything before is the prompt. Writing is atomic: a crash never leaves a
half-written PNG under the final name.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .errors import StudioError

PARAMETERS_KEY = "parameters"  # A1111's tEXt key, read by A1111, Civitai, ComfyUI and others
REQUEST_KEY = "studio-request"  # our full request as JSON, for exact regeneration
# A1111's own pattern, kept as the specification `param_pairs` is tested against (not used: slow).
A1111_PARAM_PATTERN = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_RE_SIZE = re.compile(r"^(\d+)x(\d+)$")


MAX_DECODE_PIXELS = 4096 * 4096  # larger pictures are read for their header chunks only


class MetadataError(StudioError):
    """An upload is not a readable PNG (or image) at all."""


@dataclass(frozen=True)
class Infotext:
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
    """A1111's parameter-line rule (its regex `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`),
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


def parse_infotext(text: str) -> Infotext:
    """Split an A1111 infotext into prompt, negative prompt and the parameter line's pairs."""
    lines = text.strip().split("\n") if text else [""]
    last = lines[-1]
    found = param_pairs(last)
    params: dict[str, str] = {}
    if len(found) >= 3:  # A1111's rule: fewer than 3 pairs means the last line is prompt text
        params = {key.strip(): unquote(value.strip()) for key, value in found}
        lines = lines[:-1]
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.strip().startswith("Negative prompt:"):
            in_negative = True
            line = line.strip()[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    return Infotext("\n".join(prompt), "\n".join(negative), params)


# A1111 key -> (request field, converter). Data, so a new key is one line.
FIELDS: dict[str, tuple[str, Any]] = {
    "Steps": ("steps", int),
    "Sampler": ("sampler", str),
    "Schedule type": ("schedule", str),
    "CFG scale": ("cfg_scale", float),
    "Seed": ("seed", int),
    "Model": ("model", str),
    "Clip skip": ("clip_skip", int),
    "Prompt syntax": ("prompt_syntax", str),
}


def request_fields(info: Infotext) -> tuple[dict[str, Any], list[str]]:
    """Request fields recoverable from an infotext, and notes about what could not be used."""
    fields: dict[str, Any] = {"prompt": info.prompt, "negative_prompt": info.negative_prompt}
    notes: list[str] = []
    for key, (name, convert) in FIELDS.items():
        if key in info.params:
            try:
                fields[name] = convert(info.params[key])
            except ValueError:
                notes.append(f"{key}: {info.params[key]!r} is not a valid {convert.__name__}")
    size = _RE_SIZE.match(info.params.get("Size", ""))
    if size:
        fields["width"], fields["height"] = int(size.group(1)), int(size.group(2))
    elif "Size" in info.params:
        notes.append(f"Size: {info.params['Size']!r} is not WIDTHxHEIGHT")
    if info.params.get("RNG", "").upper() == "CPU":
        fields["rng"] = "cpu"
    return fields, notes


@dataclass(frozen=True)
class PngMetadata:
    infotext: str | None  # A1111 `parameters`, if any
    request: Mapping[str, Any] | None  # our full request, if the image is ours
    message: str  # what was found, in words


def read_png(data: bytes | str | os.PathLike) -> PngMetadata:
    """Read metadata from PNG bytes or a file; never raises for missing metadata, only for non-images."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            if image.width * image.height <= MAX_DECODE_PIXELS:
                image.load()  # text chunks after the pixel data are read only by load()
            info = dict(image.info)
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MetadataError(f"not a readable image ({type(exc).__name__}: {exc}); upload a PNG") from None
    text = info.get(PARAMETERS_KEY)
    text = text if isinstance(text, str) else None
    request = None
    raw = info.get(REQUEST_KEY)
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
            request = parsed if isinstance(parsed, dict) else None
        except ValueError:
            request = None
    if text is None and request is None:
        message = f"This {kind or 'image'} has no generation parameters (no A1111 'parameters' text)."
    elif request is not None:
        message = "Made by studio: the full request is stored, so it can be regenerated exactly."
    else:
        message = "A1111-style parameters found."
    return PngMetadata(text, request, message)


# The generation form's fields a PNG can fill, and the type each must have (bool is not an int here).
FORM_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,), "negative_prompt": (str,), "model": (str,), "sampler": (str,), "schedule": (str,),
    "steps": (int,), "cfg_scale": (int, float), "seed": (int,), "width": (int,), "height": (int,),
    "prompt_syntax": (str,), "clip_skip": (int,),
}


def form_fields(meta: PngMetadata) -> tuple[dict[str, Any], list[str]]:
    """The form settings a PNG holds (our request JSON first, else its A1111 infotext), each of the
    right type: a hostile or broken value is left out with a note, never sent to the form."""
    notes: list[str] = []
    if meta.request is not None:
        found = {k: v for k, v in meta.request.items() if k in FORM_TYPES}
    elif meta.infotext is not None:
        found, notes = request_fields(parse_infotext(meta.infotext))
    else:
        found = {}
    fields: dict[str, Any] = {}
    for name, value in found.items():
        if name not in FORM_TYPES:
            continue
        wrong = isinstance(value, bool) or not isinstance(value, FORM_TYPES[name])
        if wrong or (isinstance(value, float) and not math.isfinite(value)):
            notes.append(f"{name}: {str(value)[:40]!r} ignored (not a valid {FORM_TYPES[name][0].__name__})")
            continue
        fields[name] = value
    return fields, notes


def png_bytes(image: Image.Image, infotext: str, request: Mapping[str, Any] | None = None) -> bytes:
    """The image as PNG with the `parameters` chunk (and our request JSON when given)."""
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text(PARAMETERS_KEY, infotext)  # as A1111 writes it (tEXt, or iTXt when not latin-1)
    if request is not None:
        chunks.add_itxt(REQUEST_KEY, json.dumps(dict(request), ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=chunks)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
