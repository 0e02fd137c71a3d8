"""What a generation's prompts used of the embeddings: A1111's `TI hashes` in the infotext, notices
for names whose file was refused, and PNG Info's notes on an image's embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .. import prompts
from .files import Embedding
from .vocabulary import folder_files, of

TI_HASHES_KEY = "TI hashes"


def named_in(pipe: Any, parsed: Iterable[Any]) -> tuple[list[Embedding], list[str]]:
    """The embeddings the parsed prompts name (each once, in order) and the refused files' names."""
    vocabulary = of(pipe)
    if vocabulary is None or not vocabulary.lookup:
        return [], []
    texts = [text for p in parsed for text, weight in prompts.fragments(p) if weight != -1 and text]
    ids = pipe.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"] if texts else []
    used: dict[str, Embedding] = {}
    refused: dict[str, None] = {}
    for one in ids:
        found, bad = vocabulary.named(one)
        used.update((e.name, e) for e in found if e.name not in used)
        refused.update((name, None) for name in bad)
    return list(used.values()), list(refused)


def ti_hashes(pipe: Any, parsed: Iterable[Any]) -> dict[str, str]:
    """{"TI hashes": "name: hash, ..."} for the embeddings used (A1111 drops ':' and ',' from names)."""
    used, _ = named_in(pipe, parsed)
    pairs = [f"{e.name.replace(':', '').replace(',', '')}: {e.hash}" for e in used if e.hash]
    return {TI_HASHES_KEY: ", ".join(pairs)} if pairs else {}


def refused_notices(pipe: Any, parsed: Iterable[Any]) -> tuple[str, ...]:
    """Why an embedding the prompt names was not used (its file was refused): the name stayed words."""
    vocabulary = of(pipe)
    _, refused = named_in(pipe, parsed)
    return tuple(f"{vocabulary.refused[name]}; its name was read as words" for name in refused) if vocabulary else ()


def parse_hashes(text: str) -> dict[str, str]:
    """`name: hash, name2: hash2` -> {name: hash}."""
    named: dict[str, str] = {}
    for pair in text.split(","):
        name, sep, digest = pair.rpartition(":")
        if sep and name.strip():
            named[name.strip()] = digest.strip()
    return named


def png_notes(hashes: str, folder: str | Path | None, allow_pickle: bool) -> list[str]:
    """PNG Info's notes on an image's `TI hashes`: an embedding the folder lacks, one whose file differs,
    one whose file is refused here."""
    named = parse_hashes(hashes)
    if not named:
        return []
    found, refused = folder_files(folder, allow_pickle)
    where = "the embeddings folder" if folder is not None else "an embeddings folder (the studio has none: --embeddings-dir)"
    notes = []
    for name, digest in named.items():
        shown = name if len(name) <= 60 else name[:59] + "…"
        if name in refused:
            notes.append(f"Embedding {shown}: {refused[name]}")
        elif name not in found:
            notes.append(f"Embedding {shown} (hash {digest[:16]}): not in {where}; its name will be read as words")
        elif digest and found[name].hash != digest:
            notes.append(f"Embedding {shown}: the folder's file has hash {found[name].hash}, the image was made with "
                         f"{digest[:16]}: the image may differ")
    return notes
