"""The embeddings folder: textual-inversion files read as A1111 1.10 reads them.

A file's stem is the embedding's name. Formats: A1111's `.pt` (`{"string_to_param": {"*": tensor}}`),
a diffusers concept (one tensor, e.g. `emb_params`), and SDXL's two tensors `clip_l` / `clip_g`.
`.safetensors` always; `.pt` / `.bin` only with --allow-pickle, and then through torch's weights-only
unpickler (no code runs). Sizes are checked before anything is read: the folder is listed, never crawled.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import InvalidValue, StudioError
from ..folders import inside, real_folder

if TYPE_CHECKING:
    import torch

log = logging.getLogger("studio")  # torch is imported where a file is read: PNG Info reads hashes without it
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".bin")
MAX_FOLDER_ENTRIES = 2_000  # entries looked at; a bigger folder is read this far
MAX_FILE_BYTES = 16 << 20  # an SDXL embedding of 75 vectors is 0.6 MB; more is no embedding
MAX_TOTAL_BYTES = 512 << 20  # all files read together: the rest of a bigger folder is left unread
MAX_VECTORS = 75  # one chunk: A1111 moves a longer one to the next chunk, here it is refused
HASH_DIGITS = 12  # A1111's TextualInversion shorthash: sha256[0:12]
XL_KEYS = ("clip_l", "clip_g")  # SDXL's two text encoders, in the pipeline's order


@dataclass(frozen=True, eq=False)
class Embedding:
    """One file's vectors: per text encoder ("" for a single-encoder file, clip_l / clip_g for SDXL)."""

    name: str
    path: Path
    vectors: Mapping[str, torch.Tensor] = field(repr=False)  # key -> (count, width), float32 on the CPU
    step: int | None = None
    sd_checkpoint: str | None = None
    sd_checkpoint_name: str | None = None
    hash: str = ""  # A1111's shorthash of the file

    @property
    def count(self) -> int:
        return next(iter(self.vectors.values())).shape[0]

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(v.shape[-1] for v in self.vectors.values())

    @property
    def shape(self) -> int:
        """A1111's `shape`: the vector width (SDXL: clip_g's plus clip_l's)."""
        return sum(self.widths)


def _as_rows(value: Any, name: str) -> torch.Tensor:
    import torch

    if not isinstance(value, torch.Tensor) or value.dim() not in (1, 2) or not value.is_floating_point():
        raise StudioError(f"Embedding {name}: not a textual-inversion embedding (no vector tensor in it)")
    rows = value.detach().to("cpu", torch.float32)
    rows = rows.unsqueeze(0) if rows.dim() == 1 else rows
    if not 1 <= rows.shape[0] <= MAX_VECTORS:
        raise StudioError(f"Embedding {name}: {rows.shape[0]} vectors; at most {MAX_VECTORS} are read")
    return rows


def vectors_of(data: Any, name: str) -> dict[str, torch.Tensor]:
    """The vectors of a loaded file's contents, by A1111's rules (one term per file)."""
    import torch

    if not isinstance(data, Mapping) or not data:
        raise StudioError(f"Embedding {name}: not a textual-inversion embedding")
    if all(key in data for key in XL_KEYS):
        rows = {key: _as_rows(data[key], name) for key in XL_KEYS}
        if rows["clip_l"].shape[0] != rows["clip_g"].shape[0]:
            raise StudioError(f"Embedding {name}: clip_l and clip_g hold different numbers of vectors")
        return rows
    if "string_to_param" in data:  # A1111's own .pt
        params = data["string_to_param"]
        if not isinstance(params, Mapping) or len(params) != 1:
            raise StudioError(f"Embedding {name}: its file holds {len(params) if isinstance(params, Mapping) else 0} "
                              "terms; an embedding has one")
        return {"": _as_rows(next(iter(params.values())), name)}
    tensors = [value for value in data.values() if isinstance(value, torch.Tensor)]
    if len(tensors) != 1:  # a diffusers concept: one tensor, whatever its key ("emb_params", the token)
        raise StudioError(f"Embedding {name}: {len(tensors)} tensors in the file; an embedding has one")
    return {"": _as_rows(tensors[0], name)}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read(path: Path, allow_pickle: bool) -> Embedding:
    """An embedding file, read. A pickled one without --allow-pickle is refused by name."""
    name, suffix = path.stem, path.suffix.lower()
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise StudioError(f"Embedding {path.name}: {size} bytes; an embedding file is at most {MAX_FILE_BYTES}")
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise InvalidValue("embedding", path.name, "a .safetensors file (pickled .pt/.bin files need --allow-pickle)")
    import torch

    try:
        with open(path, "rb") as f:  # read once, at most the limit (the file may have grown since its stat)
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise StudioError(f"Embedding {path.name}: over {MAX_FILE_BYTES} bytes; an embedding file is smaller")
        if suffix in SAFE_SUFFIXES:
            from safetensors.torch import load

            data: Any = load(raw)
        else:
            data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except StudioError:
        raise
    except Exception as exc:  # a damaged file: safetensors' and the unpickler's own errors
        raise StudioError(f"Embedding {path.name}: its file could not be read ({type(exc).__name__})") from None
    step = data.get("step") if isinstance(data, Mapping) else None
    return Embedding(name, path, vectors_of(data, name),
                     step=step if isinstance(step, int) and not isinstance(step, bool) else None,
                     # A1111 1.10 writes sd_checkpoint; its first versions wrote hash
                     sd_checkpoint=_text(data.get("sd_checkpoint", data.get("hash"))) if isinstance(data, Mapping) else None,
                     sd_checkpoint_name=_text(data.get("sd_checkpoint_name")) if isinstance(data, Mapping) else None,
                     hash=hashlib.sha256(raw).hexdigest()[:HASH_DIGITS])  # A1111's hashes.sha256 of the file


def files(folder: str | Path | None) -> dict[str, Path]:
    """name -> file for the embedding files at the top of the folder (.safetensors, .pt, .bin), names
    sorted; a link that leads outside the folder is left out, as an empty file is (A1111 skips those)."""
    real_root = real_folder(folder)
    if real_root is None:
        return {}
    found: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(real_root), key=lambda e: e.name)[:MAX_FOLDER_ENTRIES]
    except OSError:
        return {}
    for entry in entries:
        suffix = Path(entry.name).suffix.lower()
        if entry.name.startswith(".") or suffix not in SAFE_SUFFIXES + PICKLE_SUFFIXES:
            continue
        real = inside(entry, real_root, real_root)
        try:
            if real is not None and real.is_file() and real.stat().st_size > 0:
                found.setdefault(Path(entry.name).stem, real)  # a.safetensors before a.pt: sorted by name
        except OSError:
            continue
    return found


class FolderReader:
    """The folder's embeddings, each file read once per (size, modification time)."""

    def __init__(self) -> None:
        self._read: dict[Path, tuple[tuple[int, int, bool], Embedding | str]] = {}

    def scan(self, folder: str | Path | None, allow_pickle: bool) -> tuple[dict[str, Embedding], dict[str, str]]:
        """(name -> embedding, name -> why its file was not read)."""
        good: dict[str, Embedding] = {}
        bad: dict[str, str] = {}
        listed = files(folder)
        total = 0
        for name, path in listed.items():
            try:
                stat = path.stat()
            except OSError:
                continue
            total += stat.st_size
            if total > MAX_TOTAL_BYTES:  # checked before reading, as each file's own size is
                bad[name] = f"Embedding {path.name}: not read, the folder's files pass {MAX_TOTAL_BYTES >> 20} MB"
                continue
            stamp = (stat.st_size, stat.st_mtime_ns, allow_pickle)
            kept = self._read.get(path)
            if kept is None or kept[0] != stamp:
                try:
                    entry: Embedding | str = read(path, allow_pickle)
                except StudioError as exc:
                    entry = str(exc)
                except OSError as exc:  # unreadable (permissions, a file removed meanwhile)
                    entry = f"Embedding {path.name}: its file could not be read ({type(exc).__name__})"
                    log.warning("%s", entry)
                kept = self._read[path] = (stamp, entry)
            if isinstance(kept[1], str):
                bad[name] = kept[1]
            else:
                good[name] = kept[1]
        if len(self._read) > 2 * MAX_FOLDER_ENTRIES:  # files taken away (or another studio's folder)
            kept_paths = set(listed.values())
            self._read = {p: entry for p, entry in self._read.items() if p in kept_paths}
        return good, bad
