"""A1111-style infotext ("parameters"): the text A1111, Civitai and other tools read from a PNG."""

from __future__ import annotations

import json
from typing import Iterable, Mapping

from . import __version__
from .samplers import AUTOMATIC


def quote(value: object) -> str:
    """A1111's quoting rule: values holding ',', ':' or a newline are written as JSON strings."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _number(value: float) -> str:
    return f"{value:g}"


def format_infotext(
    *,
    prompt: str,
    negative_prompt: str,
    steps: int,
    sampler: str,
    schedule: str,
    cfg_scale: float,
    seed: int,
    width: int,
    height: int,
    model: str,
    model_hash: str | None = None,
    extras: Mapping[str, object] | Iterable[tuple[str, object]] = (),
) -> str:
    """The three-part infotext: prompt, 'Negative prompt:' line (if any), 'Key: value' line."""
    fields: list[tuple[str, object]] = [
        ("Steps", steps),
        ("Sampler", sampler),
    ]
    if schedule != AUTOMATIC:
        fields.append(("Schedule type", schedule))
    fields += [
        ("CFG scale", _number(cfg_scale)),
        ("Seed", seed),
        ("Size", f"{width}x{height}"),
    ]
    if model_hash:
        fields.append(("Model hash", model_hash))
    fields.append(("Model", model))
    fields += list(extras.items() if isinstance(extras, Mapping) else extras)
    fields.append(("Version", f"studio {__version__}"))
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in fields if value not in (None, "")))
    return "\n".join(lines)
