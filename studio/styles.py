"""Named prompt styles (`presets/styles/*.json`), applied as A1111 does.

A style's `prompt` holds `{prompt}` where the user's prompt goes (without it, the style is appended
after a comma); its `negative_prompt` is appended to the user's negative prompt. Several styles
apply in the order given. The final prompt is what is encoded, shown and saved.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .errors import UnknownName
from .models import PRESETS_DIR, PresetFileError

PLACEHOLDER = "{prompt}"


@dataclass(frozen=True)
class Style:
    name: str
    title: str
    prompt: str = ""
    negative_prompt: str = ""


def _join(first: str, second: str) -> str:
    first, second = first.strip().rstrip(","), second.strip()
    return f"{first}, {second}" if first and second else first or second


def apply_to(template: str, text: str) -> str:
    if PLACEHOLDER in template:
        return template.replace(PLACEHOLDER, text.strip())
    return _join(text, template)


@functools.cache
def styles(presets_dir: Path = PRESETS_DIR) -> Mapping[str, Style]:
    out: dict[str, Style] = {}
    for path in sorted((presets_dir / "styles").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            style = Style(str(data["name"]), str(data.get("title", data["name"])),
                          str(data.get("prompt", "")), str(data.get("negative_prompt", "")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PresetFileError(f"{path}: not a style (needs name, prompt, negative_prompt): {exc}") from None
        out[style.name] = style
    return out


def style_names() -> list[str]:
    return list(styles())


def apply_styles(prompt: str, negative_prompt: str, names: Iterable[str]) -> tuple[str, str]:
    """The final prompt and negative prompt after applying the named styles in order."""
    table = styles()
    for name in names:
        if name not in table:
            raise UnknownName("styles", name, list(table))
        style = table[name]
        prompt = apply_to(style.prompt, prompt) if style.prompt else prompt
        negative_prompt = _join(negative_prompt, style.negative_prompt)
    return prompt, negative_prompt
