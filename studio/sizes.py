"""Image sizes: aspect-ratio presets that keep a model's pixel budget, in multiples of 8."""

from __future__ import annotations

import math

from .errors import UnknownName

# Portrait and landscape pairs, as Fooocus and SDXL's training buckets list them.
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "4:3": (4, 3), "3:4": (3, 4),
    "3:2": (3, 2), "2:3": (2, 3),
    "16:9": (16, 9), "9:16": (9, 16),
    "21:9": (21, 9), "9:21": (9, 21),
}


def snap(value: float, low: int, high: int, multiple: int = 8) -> int:
    """The nearest size a model takes: the multiple of `multiple` nearest to `value` (200 in
    multiples of 16: 192, not the model's default), kept from `low` to `high`."""
    first, last = multiple * math.ceil(low / multiple), multiple * (high // multiple)
    return int(min(last, max(first, multiple * round(value / multiple))))


def size_for_aspect(ratio: str, area: int, low: int, high: int, multiple: int = 8) -> tuple[int, int]:
    """(width, height) with the given aspect ratio and about `area` pixels, multiples of `multiple`
    (the family's: 8 for SD, 16 for FLUX) in range.

    Keeping the area (the model's default width x height) is what keeps quality: SD 1.5 is trained
    near 512x512 pixels, SDXL near 1024x1024, whatever the shape.
    """
    if ratio not in ASPECT_RATIOS:
        raise UnknownName("aspect ratio", ratio, list(ASPECT_RATIOS))
    w, h = ASPECT_RATIOS[ratio]
    width = math.sqrt(area * w / h)
    return snap(width, low, high, multiple), snap(width * h / w, low, high, multiple)
