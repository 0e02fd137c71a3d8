"""Which embeddings a loaded model has, and how a prompt's tokens name them.

As A1111 does, an embedding is found in a prompt by its name's token ids (the name tokenized as a
word), longest name first, inside each weighted fragment; its place is then taken by one token per
vector, so `(name:1.2)` weights them all and the token count includes them. Those tokens carry
negative ids (`-1 - n` for the n-th vector of the model's table): never real words, swapped for the
vectors inside the text encoder (`inject.py`). Nothing of the tokenizer or text encoder is changed,
so a prompt without embeddings encodes exactly as before.

A model's vocabulary is kept per tokenizer (shared by the model's img2img / inpaint pipelines and
by the token counter's reader), replaced only when the folder's files change: attaching is idempotent.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .files import XL_KEYS, Embedding, FolderReader

if TYPE_CHECKING:
    import torch

# Per family: the pipeline's text encoders, and the file keys whose vectors go to each (A1111 reads
# textual inversion for SD 1.x/2.x and SDXL; other families' prompts keep the names as words).
ENCODERS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "sd15": (("text_encoder", ""),),
    "sdxl": (("text_encoder", XL_KEYS[0]), ("text_encoder_2", XL_KEYS[1])),
}


Entry = tuple[tuple[int, ...], int, str]  # a name's token ids, its index in `loaded` (-1: refused), the name


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The embeddings that fit one model (and those that do not), looked up by token ids."""

    shape: int  # the model's vector width as A1111 states it (SDXL: both encoders' together)
    loaded: tuple[Embedding, ...]
    skipped: tuple[Embedding, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)  # name -> why its file was not read
    lookup: Mapping[int, tuple[Entry, ...]] = field(default_factory=dict)  # by first token id, longest first
    tables: tuple[torch.Tensor, ...] = ()  # per text encoder: every loaded vector, (total, width)

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        """What the prompt-encoding cache must tell apart: which files, as they are now."""
        return tuple((e.name, e.hash) for e in self.loaded)

    @functools.cached_property
    def _starts(self) -> tuple[int, ...]:
        """Where each loaded embedding's vectors begin in the tables."""
        return tuple(itertools.accumulate((e.count for e in self.loaded[:-1]), initial=0)) if self.loaded else ()

    def _find(self, ids: Sequence[int], at: int) -> Entry | None:
        for entry in self.lookup.get(ids[at], ()):
            if tuple(ids[at:at + len(entry[0])]) == entry[0]:
                return entry
        return None

    def _scan(self, ids: Sequence[int]) -> Iterable[tuple[int, Entry | None]]:
        """(position, the name found there or None), stepping over each name found."""
        i = 0
        while i < len(ids):
            entry = self._find(ids, i) if self.lookup else None
            yield i, entry
            i += len(entry[0]) if entry is not None else 1

    def substitute(self, ids: Sequence[int]) -> list[int]:
        """One fragment's token ids with each embedding's name replaced by its vectors' ids."""
        if not self.lookup:
            return list(ids)
        starts = self._starts
        out: list[int] = []
        for i, entry in self._scan(ids):
            if entry is None or entry[1] < 0:
                out.append(ids[i])
            else:
                out.extend(-1 - (starts[entry[1]] + n) for n in range(self.loaded[entry[1]].count))
        return out

    def named(self, ids: Sequence[int]) -> tuple[list[Embedding], list[str]]:
        """The embeddings one fragment's token ids name, and the names of refused files it holds."""
        used: list[Embedding] = []
        refused: list[str] = []
        for _, entry in self._scan(ids):
            if entry is not None and entry[1] >= 0:
                used.append(self.loaded[entry[1]])
            elif entry is not None:
                refused.append(entry[2])
        return used, refused


def fits(embedding: Embedding, widths: Sequence[int], keys: Sequence[str]) -> bool:
    """A1111's rule: the vectors are as wide as the model's (else the file is skipped for it, no error)."""
    return tuple(embedding.vectors) == tuple(keys) and embedding.widths == tuple(widths)


def build(tokenizer: Any, widths: Sequence[int], keys: Sequence[str], found: Mapping[str, Embedding],
          refused: Mapping[str, str]) -> Vocabulary:
    """The vocabulary of a model whose encoders are `widths` wide and read the files' `keys`."""
    import torch

    loaded = [e for e in found.values() if fits(e, widths, keys)]
    skipped = [e for e in found.values() if not fits(e, widths, keys)]
    lookup: dict[int, list[Entry]] = {}
    for index, name in [(i, e.name) for i, e in enumerate(loaded)] + [(-1, n) for n in refused]:
        ids = tuple(tokenizer([name], add_special_tokens=False, truncation=False)["input_ids"][0])
        if ids:
            lookup.setdefault(ids[0], []).append((ids, index, name))
    ordered = {first: tuple(sorted(entries, key=lambda entry: -len(entry[0]))) for first, entries in lookup.items()}
    tables = tuple(torch.cat([e.vectors[key] for e in loaded]) if loaded else torch.zeros(0, width)
                   for key, width in zip(keys, widths))
    return Vocabulary(sum(widths), tuple(loaded), tuple(skipped), dict(refused), ordered, tables)


# -- per model -----------------------------------------------------------------------------------

_READER = FolderReader()
_LOCK = threading.Lock()
# tokenizer -> (the files it was built from, the vocabulary)
_BY_TOKENIZER: "weakref.WeakKeyDictionary[Any, tuple[tuple, Vocabulary]]" = weakref.WeakKeyDictionary()
# (widths, keys) of the model attached last (A1111's current model), for the API's loaded / skipped
_CURRENT: list[tuple[tuple[int, ...], tuple[str, ...]]] = []


def attach(pipe: Any, family: str, folder: str | Path | None, allow_pickle: bool) -> Vocabulary | None:
    """The folder's embeddings made known to a loaded model (None: its family reads none). Idempotent:
    the same files give back the vocabulary the model has, so its encodings stay cached."""
    encoders = ENCODERS.get(family)
    tokenizer = getattr(pipe, "tokenizer", None)
    if encoders is None or tokenizer is None:
        return None
    widths = [int(getattr(pipe, name).config.hidden_size) for name, _ in encoders]
    keys = [key for _, key in encoders]
    with _LOCK:
        found, refused = _READER.scan(folder, allow_pickle)
        files = (tuple((name, e.hash) for name, e in found.items()), tuple(refused.items()))
        have = _BY_TOKENIZER.get(tokenizer)
        if have is None or have[0] != files:
            have = _BY_TOKENIZER[tokenizer] = (files, build(tokenizer, widths, keys, found, refused))
        _CURRENT[:] = [(tuple(widths), tuple(keys))]
        return have[1]


def of(pipe: Any) -> Vocabulary | None:
    """The vocabulary attached to this model (its pipelines or its token counter's reader share the
    tokenizer), or None."""
    tokenizer = getattr(pipe, "tokenizer", None)
    have = None if tokenizer is None else _BY_TOKENIZER.get(tokenizer)
    return None if have is None else have[1]


def cache_key(pipe: Any) -> tuple[tuple[str, str], ...]:
    """The part of a prompt-encoding cache key that says which embeddings the model has."""
    vocabulary = of(pipe)
    return () if vocabulary is None else vocabulary.key


def listing(folder: str | Path | None, allow_pickle: bool) -> dict[str, dict[str, Any]]:
    """A1111's /sdapi/v1/embeddings: the folder's embeddings, loaded or skipped for the current model's
    vector width (with no model yet, every one is loaded, as A1111 answers before a model is)."""
    with _LOCK:
        found, _ = _READER.scan(folder, allow_pickle)
        current = _CURRENT[0] if _CURRENT else None
    out: dict[str, dict[str, Any]] = {"loaded": {}, "skipped": {}}
    for name, e in found.items():
        out["loaded" if current is None or fits(e, *current) else "skipped"][name] = {
            "step": e.step, "sd_checkpoint": e.sd_checkpoint, "sd_checkpoint_name": e.sd_checkpoint_name,
            "shape": e.shape, "vectors": e.count}
    return out


def folder_files(folder: str | Path | None, allow_pickle: bool) -> tuple[dict[str, Embedding], dict[str, str]]:
    """The folder's readable embeddings and the files it refused (the page's list, PNG Info)."""
    with _LOCK:
        return _READER.scan(folder, allow_pickle)
