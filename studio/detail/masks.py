"""Boxes found by a detector, and the masks the detailer repaints them through: pure functions on numbers
and PIL images, no model.

A detector answers with many overlapping boxes for one object (OWL predicts a box per image patch):
`suppress` keeps the best of each cluster, as ADetailer's YOLO models do inside. `largest` orders what is
left as ADetailer's "mask only top k largest" does. A box's mask is the box grown (or shrunk) by ADetailer's
"dilate erode" and softened by the inpainting mask blur.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PIL import Image

from .. import images

OVERLAP = 0.3  # boxes overlapping a better one by more than this (IoU) are the same object


@dataclass(frozen=True)
class Box:
    """A region found in a picture, in its pixels (right and bottom exclusive), with the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def overlap(self, other: "Box") -> float:
        """Intersection over union."""
        width = min(self.right, other.right) - max(self.left, other.left)
        height = min(self.bottom, other.bottom) - max(self.top, other.top)
        shared = max(0, width) * max(0, height)
        union = self.area + other.area - shared
        return shared / union if union else 0.0


def clipped(corners: Sequence[float], score: float, size: tuple[int, int]) -> Box | None:
    """A detector's (x0, y0, x1, y1) inside a picture of `size`, in whole pixels; None when nothing is left."""
    width, height = size
    left, top = max(0, int(corners[0])), max(0, int(corners[1]))
    right, bottom = min(width, int(round(corners[2]))), min(height, int(round(corners[3])))
    return Box(left, top, right, bottom, float(score)) if right > left and bottom > top else None


def suppress(boxes: Sequence[Box], overlap: float = OVERLAP) -> list[Box]:
    """Greedy non-maximum suppression: best score first, dropping boxes that overlap a kept one."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: (-b.score, b.top, b.left)):
        if all(box.overlap(other) <= overlap for other in kept):
            kept.append(box)
    return kept


def largest(boxes: Sequence[Box], count: int | None = None) -> list[Box]:
    """The `count` (None: all) largest boxes, largest first (ties: the better score, then top to bottom, left
    to right)."""
    return sorted(boxes, key=lambda b: (-b.area, -b.score, b.top, b.left))[:count]


def region_mask(size: tuple[int, int], box: Box, dilate: int, blur: int) -> Image.Image:
    """A box's mask over a picture of `size`: white inside the box grown by `dilate` pixels (shrunk when
    negative; ADetailer dilates with a `dilate`-wide kernel, so by half of it on each side), then blurred
    as an inpainting mask is (`blur` pixels). A box shrunk past nothing keeps its middle pixel."""
    grow = abs(dilate) // 2 * (1 if dilate >= 0 else -1)
    left, top = max(0, box.left - grow), max(0, box.top - grow)
    right, bottom = min(size[0], box.right + grow), min(size[1], box.bottom + grow)
    if right <= left or bottom <= top:
        middle = ((box.left + box.right) // 2, (box.top + box.bottom) // 2)
        left, top, right, bottom = middle[0], middle[1], middle[0] + 1, middle[1] + 1
    mask = Image.new("L", size, 0)
    mask.paste(255, (left, top, right, bottom))
    return images.prepare_mask(mask, size, "Just resize", False, blur)
