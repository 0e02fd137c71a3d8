"""Names typed by people: one place for how they are matched and what a Hub id looks like.

Every registry (samplers, schedules, presets, syntaxes, preview methods, choices of a field)
matches names the same way: case-insensitive, surrounding and repeated spaces ignored.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(text: str) -> bool:
    """`owner/name` as the Hugging Face Hub spells repository ids."""
    return isinstance(text, str) and HUB_ID.match(text) is not None


def fold(name: object) -> str | None:
    """The matching key of a name ('dpm++ 2m  karras' and 'DPM++ 2M Karras' match); None for
    anything that is not text (bytes, numbers, lists name nothing)."""
    if not isinstance(name, str):
        return None
    return re.sub(r"\s+", " ", name.strip()).casefold()


def index(names: Iterable[str], aliases: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
    """A lookup from folded names (and aliases) to the canonical spelling."""
    table: dict[str, str] = {}
    for name in names:
        for spelling in (name, *((aliases or {}).get(name, ()))):
            table[fold(spelling)] = name
    return table


def find(value: object, names: Iterable[str]) -> str | None:
    """The canonical spelling of `value` among `names`, or None."""
    key = fold(value)
    if key is None:
        return None
    return next((name for name in names if fold(name) == key), None)
