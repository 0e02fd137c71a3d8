"""The outputs folder: every finished image as a PNG with its metadata, in date sub-folders.

Files are numbered like A1111's (`00012-<seed>.png`) and written atomically. With no folder (e.g.
on a Space), images still go to a private temporary folder so the page and the API can serve the
very same PNG bytes, metadata included.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from datetime import date
from pathlib import Path

from PIL import Image

from .events import Result
from .metadata import png_bytes, write_atomic
from .pnginfo import BATCH_INDEX_KEY

_NUMBERED = re.compile(r"^(\d{5})-")


TEMPORARY_KEEP_S = 24 * 3600  # a temporary folder (--no-outputs) keeps a day of images, never more


class OutputFolder:
    def __init__(self, root: str | Path | None, max_bytes: int | None = None):
        self.keep = root is not None  # False: a temporary folder, not meant to be kept
        self.max_bytes = max_bytes  # past it, the oldest images go (a Space's /data has a quota)
        self.root = Path(root).expanduser().resolve() if root is not None else Path(tempfile.mkdtemp(prefix="studio-"))
        self._lock = threading.Lock()  # numbering is shared by every session's saves
        if not self.keep:  # removed with the process (or this object), pruned while it runs
            weakref.finalize(self, shutil.rmtree, str(self.root), True)
        # Gradio hands out copies from its own cache, named by content; it copies files from the
        # working folder and the temp folder only. Outputs elsewhere are staged in a temp folder, so
        # the outputs folder itself is never served by path (names there are guessable).
        self._servable = any(self.root.is_relative_to(Path(place).resolve())
                             for place in (os.getcwd(), tempfile.gettempdir()))
        self._stage: Path | None = None

    def servable(self, path: Path) -> str:
        """A path of this image Gradio may copy into its cache and serve."""
        if self._servable:
            return str(path)
        with self._lock:
            if self._stage is None:
                self._stage = Path(tempfile.mkdtemp(prefix="studio-serve-"))
                weakref.finalize(self, shutil.rmtree, str(self._stage), True)
            self._prune(self._stage)
            staged = self._stage / f"{os.urandom(8).hex()}-{path.name}"
        shutil.copyfile(path, staged)
        return str(staged)

    def _prune(self, folder: Path | None = None) -> None:
        """A temporary folder drops images older than TEMPORARY_KEEP_S (disk stays bounded)."""
        cutoff = time.time() - TEMPORARY_KEEP_S
        root = folder or self.root
        for path in [*root.glob("*.png"), *root.glob("*/*.png")]:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass
        for sub in root.iterdir():
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()

    def _next_number(self, folder: Path) -> int:
        numbers = [int(m.group(1)) for p in folder.glob("*.png") if (m := _NUMBERED.match(p.name))]
        return max(numbers, default=0) + 1

    def save(self, result: Result) -> list[Path]:
        """Write every image of a result; returns their paths, in order."""
        folder = self.root / date.today().isoformat()
        paths = []
        with self._lock:
            if not self.keep:
                self._prune()
            folder.mkdir(parents=True, exist_ok=True)
            number = self._next_number(folder)
            record = result.request.record()
            for i, (image, seed, infotext) in enumerate(zip(result.images, result.seeds, result.infotexts)):
                # The request that makes exactly this image is the whole batch (a batch of one with
                # this seed may differ in the last bits): it is stored with the image's place in it.
                request = {**record, BATCH_INDEX_KEY: i} if len(result.images) > 1 else record
                path = folder / f"{number + i:05d}-{seed}.png"
                paths.append(write_atomic(path, png_bytes(image, infotext, request)))
            if self.max_bytes is not None:
                self._trim(self.max_bytes, keep=set(paths))
        return paths

    def save_picture(self, image: Image.Image, infotext: str, seed: int, request: dict | None = None,
                     kind: str = "grid") -> Path:
        """One picture made of others (an X/Y/Z plot's grid), numbered with the rest: `00013-<seed>-grid.png`."""
        folder = self.root / date.today().isoformat()
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            path = write_atomic(folder / f"{self._next_number(folder):05d}-{seed}-{kind}.png",
                                png_bytes(image, infotext, request))
            if self.max_bytes is not None:
                self._trim(self.max_bytes, keep={path})
        return path

    def _trim(self, max_bytes: int, keep: set[Path]) -> None:
        """Delete the oldest images until the folder holds at most `max_bytes` (never the ones just
        written)."""
        files = []
        for path in self.root.glob("*/*.png"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime, path.name, stat.st_size, path))
        total = sum(size for _, _, size, _ in files)
        for _, _, size, path in sorted(files):
            if total <= max_bytes:
                break
            if path not in keep:
                path.unlink(missing_ok=True)
                total -= size
