"""LoRAs: A1111's `<lora:name:weight>` prompt tags, and where a named LoRA's file is.

A LoRA is named by its file name (without `.safetensors`) in the loras folder (searched one level
down too), by a path to a `.safetensors` file, or by a Hugging Face Hub id. Tags are removed from
the prompt before it is encoded; the infotext keeps the prompt as typed, as A1111 does, and lists
the files' hashes under `Lora hashes`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidValue, UnknownName
from .folders import inside, real_folder

# A1111's tag pattern, kept as the specification `find_tags` is tested against (not used: a run of
# unclosed "<lora:" made it quadratic, 100 KB froze the server for 17 s).
TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
WEIGHT_RANGE = (-4.0, 4.0)
MAX_NAME_CHARS = 255  # a file name; longer is no LoRA
MAX_FOLDER_ENTRIES = 2_000  # a loras folder is listed, never crawled without end


@dataclass(frozen=True)
class Tag:
    start: int
    end: int  # the text from start to end is the whole tag
    name: str
    weight: str | None  # as written; None: no weight given


def find_tags(text: str) -> list[Tag]:
    """The `<lora:name[:weight[:...]]>` tags of a text (case-insensitive), as A1111's regex finds them,
    in one pass: a tag runs to the first '>' after it, and with no '>' left nothing more can match."""
    tags: list[Tag] = []
    gt = -1  # the next '>' at or after the current position, reused while it lies ahead
    i = text.find("<")
    while 0 <= i < len(text):
        body = i + 6
        if text[i + 1:body].lower() == "lora:":
            if gt < body:
                gt = text.find(">", body)
                if gt < 0:
                    break
            colon = text.find(":", body, gt)
            name_end = gt if colon < 0 else colon
            if name_end > body:  # a name of one character at least; only then is the tag read whole
                weight = None
                if colon >= 0:
                    second = text.find(":", colon + 1, gt)
                    weight = text[colon + 1:gt if second < 0 else second]
                tags.append(Tag(i, gt + 1, text[body:name_end], weight))
                i = text.find("<", gt + 1)
                continue
        i = text.find("<", i + 1)
    return tags


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
    if not isinstance(refs, (list, tuple)):
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
    found, kept, start = [], [], 0
    for tag in find_tags(prompt):
        name = tag.name.strip()
        found.append((name, _weight(name, tag.weight if tag.weight not in (None, "") else 1.0)))
        kept.append(prompt[start:tag.start])
        start = tag.end
    kept.append(prompt[start:])
    return "".join(kept), tuple(found)


@dataclass(frozen=True)
class LoraFile:
    name: str
    ref: str  # absolute path or hub id
    is_hub: bool


def folder_loras(folder: str | Path | None) -> dict[str, Path]:
    """name -> file for the `.safetensors` files at the top of the folder and one folder down (a file
    in a sub-folder is also named `sub/name`; the top level wins a shared name). Names are exact, never
    patterns, and a file or folder whose link leads outside the folder is left out."""
    real_root = real_folder(folder)
    if real_root is None:
        return {}
    found: dict[str, Path] = {}
    bases = [("", real_root)]  # (sub-folder name, its real path): the top level, then one level down
    seen = 0
    for sub, base in bases:
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                return found
            if entry.name.startswith("."):
                continue
            real = inside(entry, base, real_root)
            if real is None:
                continue
            if not sub and entry.is_dir():
                bases.append((entry.name, real))
            elif entry.is_file() and Path(entry.name).suffix.lower() == ".safetensors":
                stem = Path(entry.name).stem
                for key in ([stem] if not sub else [f"{sub}/{stem}", stem]):
                    found.setdefault(key, real)
    return found


def available(folder: str | Path | None) -> list[str]:
    """LoRA names in the folder (top level and one down), sorted."""
    return sorted(name for name in folder_loras(folder) if "/" not in name)


def find(name: str, folder: str | Path | None) -> LoraFile:
    """The file (or hub repo) a LoRA name refers to, or an error listing the LoRAs there are."""
    if len(name) > MAX_NAME_CHARS:
        raise InvalidValue("lora", f"<{len(name)} characters>", f"a LoRA name of at most {MAX_NAME_CHARS} characters")
    in_folder = folder_loras(folder).get(name)
    if in_folder is not None:
        return LoraFile(name, str(in_folder), False)
    from .models import hub_id  # (models imports this module's neighbours; here only when a name is looked up)

    if hub_id(name):  # owner/name is a Hub repo, whatever lies on disk: no answer tells a folder exists
        return LoraFile(name, name, True)
    path = Path(name).expanduser()
    if path.suffix.lower() == ".safetensors" and path.is_file():
        return LoraFile(path.stem, str(path.resolve()), False)
    raise UnknownName("lora", name, available(folder) + ["a .safetensors path", "a Hub id (owner/name)"])
