"""The pictures a request to the A1111 door carries (init images, masks, ControlNet units, Extras,
PNG Info), decoded in one place: measured before they are decoded, every failure an InvalidValue
naming the field."""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any

from PIL import Image

from ...errors import InvalidValue
from ...validation import MAX_INPUT_PIXELS

# One picture a request carries: the page's largest upload (web/bounded.MAX_BLOB_BYTES: a 4096 px photo as
# PNG fits), as base64 with a `data:` prefix. Longer text is refused before it is decoded.
MAX_PICTURE_BYTES = 16 * 2**20
MAX_PICTURE_CHARS = MAX_PICTURE_BYTES * 4 // 3 + 64


def decode_image(field: str, value: Any) -> Image.Image:
    """A picture as A1111 takes it: base64, optionally behind `data:image/...;base64,` (URLs are not
    fetched: the studio reaches nothing on the network for a request). Measured before it is decoded:
    its text at most MAX_PICTURE_CHARS (before b64decode), its header's size at most MAX_INPUT_PIXELS
    (before `load()`); a decompression bomb or a broken file is an InvalidValue naming `field`."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, type(value).__name__ if not isinstance(value, str) else "", "a base64 image")
    if len(value) > MAX_PICTURE_CHARS:
        raise InvalidValue(field, f"{len(value)} characters", f"a picture of at most {MAX_PICTURE_BYTES >> 20} MiB "
                                                              f"({MAX_PICTURE_CHARS} base64 characters)")
    text = value.strip()
    if text.startswith(("http://", "https://")):
        raise InvalidValue(field, text[:40], "a base64 image (the studio fetches no URLs)")
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        with warnings.catch_warnings():  # a bomb is refused below by its size, with the field named
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(base64.b64decode(text)))  # the header only
    except Image.DecompressionBombError as exc:  # past twice PIL's limit, far past ours
        raise InvalidValue(field, str(exc).split(" exceeds")[0], f"at most {MAX_INPUT_PIXELS} pixels") from None
    except Exception as exc:  # binascii.Error, UnidentifiedImageError, whatever a hostile header raises
        raise InvalidValue(field, text[:20] + "...", f"a base64 PNG, JPEG or WebP ({type(exc).__name__})") from None
    if picture.width * picture.height > MAX_INPUT_PIXELS:
        raise InvalidValue(field, f"{picture.width}x{picture.height}", f"at most {MAX_INPUT_PIXELS} pixels")
    try:
        picture.load()
    except Exception as exc:  # truncated, lying, or a decoder's own error: the caller's file, not a 500
        raise InvalidValue(field, text[:20] + "...", f"a whole PNG, JPEG or WebP ({type(exc).__name__})") from None
    return picture
