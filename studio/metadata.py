"""PNG metadata: A1111's `parameters` text chunk plus our full request as JSON, written atomically
(a crash never leaves a half-written PNG under the final name) and read back from any upload.
What the text says is read by `studio/infotext.py`; what a PNG asks to regenerate, by
`studio/pnginfo.py`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from .errors import StudioError

PARAMETERS_KEY = "parameters"  # A1111's tEXt key, read by A1111, Civitai, ComfyUI and others
REQUEST_KEY = "studio-request"  # our full request as JSON, for exact regeneration
MAX_DECODE_PIXELS = 4096 * 4096  # larger pictures are read for their header chunks only
MAX_CHUNK_CHARS = 64_000  # two prompts at their cap and a parameter line; longer chunks are not read


class MetadataError(StudioError):
    """An upload is not a readable PNG (or image) at all."""


@dataclass(frozen=True)
class PngMetadata:
    infotext: str | None  # A1111 `parameters`, if any
    request: Mapping[str, Any] | None  # our full request, if the image is ours
    message: str  # what was found, in words


def read_png(data: bytes | str | os.PathLike) -> PngMetadata:
    """Read metadata from PNG bytes or a file; never raises for missing metadata, only for non-images."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            if image.width * image.height <= MAX_DECODE_PIXELS:
                image.load()  # text chunks after the pixel data are read only by load()
            info = dict(image.info)
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # PIL's message names its buffer object (`<_io.BytesIO object at 0x...>`): say what it means.
        reason = "not an image file" if isinstance(exc, UnidentifiedImageError) else f"{type(exc).__name__}: {exc}"
        raise MetadataError(f"not a readable image ({reason}); upload a PNG") from None
    too_long = [key for key in (PARAMETERS_KEY, REQUEST_KEY)
                if isinstance(info.get(key), str) and len(info[key]) > MAX_CHUNK_CHARS]
    text = info.get(PARAMETERS_KEY)
    text = text if isinstance(text, str) and PARAMETERS_KEY not in too_long else None
    request = None
    raw = info.get(REQUEST_KEY)
    if isinstance(raw, str) and REQUEST_KEY not in too_long:
        try:
            parsed = json.loads(raw)
            request = parsed if isinstance(parsed, dict) else None
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
            request = None
    if too_long:
        message = (f"This {kind or 'image'}'s {' and '.join(too_long)} text is longer than {MAX_CHUNK_CHARS} "
                   "characters: not read.")
    elif text is None and request is None:
        message = f"This {kind or 'image'} has no generation parameters (no A1111 'parameters' text)."
    elif request is not None:
        message = "Made by studio: the full request is stored, so it can be regenerated exactly."
    else:
        message = "A1111-style parameters found."
    return PngMetadata(text, request, message)


def png_bytes(image: Image.Image, infotext: str, request: Mapping[str, Any] | None = None) -> bytes:
    """The image as PNG with the `parameters` chunk (and our request JSON when given)."""
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text(PARAMETERS_KEY, infotext)  # as A1111 writes it (tEXt, or iTXt when not latin-1)
    if request is not None:
        chunks.add_itxt(REQUEST_KEY, json.dumps(dict(request), ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=chunks)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
