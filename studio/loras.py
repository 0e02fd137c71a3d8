"""LoRAs: A1111's `<lora:name:weight>` prompt tags, and where a named LoRA's file is.

A LoRA is named by its file name (without `.safetensors`) in the loras folder (searched one level
down too), by a path to a `.safetensors` file, or by a Hugging Face Hub id. Tags are removed from
the prompt before it is encoded; the infotext keeps the prompt as typed, as A1111 does, and lists
the files' hashes under `Lora hashes`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import naming
from .errors import InvalidValue, UnknownName

TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
WEIGHT_RANGE = (-4.0, 4.0)


def _weight(name: str, value: Any) -> float:
    allowed = f"a LoRA weight from {WEIGHT_RANGE[0]:g} to {WEIGHT_RANGE[1]:g}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"lora {name!r} weight", value, allowed) from None
    if isinstance(value, bool) or not math.isfinite(number) or not WEIGHT_RANGE[0] <= number <= WEIGHT_RANGE[1]:
        raise InvalidValue(f"lora {name!r} weight", value, allowed)
    return number


def parse_refs(refs: Any) -> tuple[tuple[str, float], ...]:
    """((name, weight), ...) from a request: pairs, or names alone (weight 1)."""
    if refs is None:
        return ()
    if isinstance(refs, (str, bytes)) or not isinstance(refs, Iterable):
        raise InvalidValue("loras", refs, "a list of [name, weight] pairs")
    out = []
    for ref in refs:
        if isinstance(ref, str):
            name, weight = ref, 1.0
        elif isinstance(ref, (list, tuple)) and len(ref) == 2 and isinstance(ref[0], str):
            name, weight = ref
        else:
            raise InvalidValue("loras", ref, "a [name, weight] pair")
        if not name.strip():
            raise InvalidValue("loras", ref, "a LoRA name")
        out.append((name.strip(), _weight(name, weight)))
    return tuple(out)


def extract(prompt: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The prompt without its `<lora:name:weight>` tags, and the tags' (name, weight) pairs.

    A1111 writes `<lora:name>` (weight 1), `<lora:name:0.8>`, and `<lora:name:0.8:0.5>` (text
    encoder and UNet weights); the last form uses the first weight for both here.
    """
    found = []
    for match in TAG.finditer(prompt):
        name, weight = match.group(1).strip(), match.group(2)
        found.append((name, _weight(name, weight if weight not in (None, "") else 1.0)))
    return TAG.sub("", prompt), tuple(found)


def combined(explicit: Iterable[tuple[str, float]], prompt: str) -> tuple[tuple[str, float], ...]:
    """Every LoRA of a request, one entry per name (a later mention replaces an earlier one)."""
    merged: dict[str, float] = {}
    for name, weight in [*explicit, *extract(prompt)[1]]:
        merged[name] = weight
    return tuple(merged.items())


@dataclass(frozen=True)
class LoraFile:
    name: str
    ref: str  # absolute path or hub id
    is_hub: bool


def available(folder: str | Path | None) -> list[str]:
    """LoRA names in the folder (top level and one down), sorted."""
    if folder is None or not Path(folder).expanduser().is_dir():
        return []
    root = Path(folder).expanduser()
    paths = sorted(root.glob("*.safetensors")) + sorted(root.glob("*/*.safetensors"))
    return sorted({p.stem for p in paths})


def find(name: str, folder: str | Path | None) -> LoraFile:
    """The file (or hub repo) a LoRA name refers to, or an error listing the LoRAs there are."""
    if folder is not None:
        root = Path(folder).expanduser()
        for candidate in [root / f"{name}.safetensors", *sorted(root.glob(f"*/{name}.safetensors"))]:
            if candidate.is_file() and candidate.resolve().is_relative_to(root.resolve()):
                return LoraFile(name, str(candidate.resolve()), False)
    path = Path(name).expanduser()
    if path.suffix.lower() == ".safetensors" and path.is_file():
        return LoraFile(path.stem, str(path.resolve()), False)
    if naming.is_hub_id(name) and not path.exists():
        return LoraFile(name, name, True)
    raise UnknownName("lora", name, available(folder) + ["a .safetensors path", "a Hub id (owner/name)"])
