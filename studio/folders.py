"""What the studio's model folders (LoRAs, embeddings, ControlNets) share: a folder opened only if it
is one, and its entries followed only where a link stays inside it."""

from __future__ import annotations

import os
from pathlib import Path


def real_folder(folder: str | Path | None) -> Path | None:
    """The folder's real path, or None when it is not set or not a folder."""
    if folder is None:
        return None
    root = Path(folder).expanduser()
    return root.resolve() if root.is_dir() else None


def inside(entry: os.DirEntry, base: Path, real_root: Path) -> Path | None:
    """An entry's real path if it is inside the folder, else None. Only a link can lead out of the
    folder: only links are resolved (one call each)."""
    real = Path(entry.path).resolve() if entry.is_symlink() else base / entry.name
    return real if real.is_relative_to(real_root) else None
