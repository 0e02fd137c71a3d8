"""The outputs folder: every finished image as a PNG with its metadata, in date sub-folders.

Files are numbered like A1111's (`00012-<seed>.png`) and written atomically. With no folder (e.g.
on a Space), images still go to a private temporary folder so the page and the API can serve the
very same PNG bytes, metadata included.
"""

from __future__ import annotations

import re
import tempfile
import threading
from datetime import date
from pathlib import Path

from .events import Result
from .metadata import png_bytes, write_atomic
from .pnginfo import BATCH_INDEX_KEY

_NUMBERED = re.compile(r"^(\d{5})-")


class OutputFolder:
    def __init__(self, root: str | Path | None):
        self.keep = root is not None  # False: a temporary folder, not meant to be kept
        self.root = Path(root).expanduser().resolve() if root is not None else Path(tempfile.mkdtemp(prefix="studio-"))
        self._lock = threading.Lock()  # numbering is shared by every session's saves

    def _next_number(self, folder: Path) -> int:
        numbers = [int(m.group(1)) for p in folder.glob("*.png") if (m := _NUMBERED.match(p.name))]
        return max(numbers, default=0) + 1

    def save(self, result: Result) -> list[Path]:
        """Write every image of a result; returns their paths, in order."""
        folder = self.root / date.today().isoformat()
        paths = []
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            number = self._next_number(folder)
            record = result.request.record()
            for i, (image, seed, infotext) in enumerate(zip(result.images, result.seeds, result.infotexts)):
                # The request that makes exactly this image is the whole batch (a batch of one with
                # this seed may differ in the last bits): it is stored with the image's place in it.
                request = {**record, BATCH_INDEX_KEY: i} if len(result.images) > 1 else record
                path = folder / f"{number + i:05d}-{seed}.png"
                paths.append(write_atomic(path, png_bytes(image, infotext, request)))
        return paths
