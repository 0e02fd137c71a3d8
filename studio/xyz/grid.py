"""A plot's grids, drawn as A1111's images.image_grid and images.draw_grid_annotations draw them: the
cells in rows (one row per Y value), each X value's legend above its column and each Y value's to the left
(the left margin is 3/4 of a cell, the font (w + h) / 25 of a cell); with several Z values, the grids side
by side under their Z legends. Cells of different sizes (a Size axis) are centred in the largest."""

from __future__ import annotations

import functools
import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

FONT = "DejaVuSans.ttf"
ACTIVE = (0, 0, 0)


@functools.lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:  # no DejaVu on this system: Pillow's own scalable font
        return ImageFont.load_default(size=size)


def image_grid(cells: Sequence[Image.Image | None], rows: int, size: tuple[int, int] | None = None) -> Image.Image:
    """The cells row by row (None: a black cell, as A1111 draws a cell that made no image)."""
    present = [cell for cell in cells if cell is not None]
    width, height = size or (max(c.width for c in present), max(c.height for c in present))
    cols = math.ceil(len(cells) / rows)
    grid = Image.new("RGB", (cols * width, rows * height), "black")
    for i, cell in enumerate(cells):
        if cell is not None:
            grid.paste(cell.convert("RGB"), (i % cols * width + (width - cell.width) // 2,
                                             i // cols * height + (height - cell.height) // 2))
    return grid


def _wrap(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.ImageFont, width: int) -> list[str]:
    """Words in lines that fit `width` (a word longer than that stands alone)."""
    lines: list[str] = []
    for word in text.split(" "):
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=face) <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines or [""]


def annotate(grid: Image.Image, width: int, height: int, top: Sequence[str], left: Sequence[str],
             margin: int = 0) -> Image.Image:
    """The grid with `top` legends over its columns and `left` legends beside its rows, on white;
    `margin` pixels between cells. No legend on a side (all empty): no room taken for it."""
    cols, rows = grid.width // width, grid.height // height
    size = (width + height) // 25
    face, spacing = font(max(size, 8)), size // 2
    pad_left = width * 3 // 4 if any(left) else 0
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    top_lines = [_wrap(measure, text, face, width) if text else [] for text in top]
    left_lines = [_wrap(measure, text, face, pad_left) if text else [] for text in left]

    def block(lines: list[str]) -> int:
        heights = [measure.textbbox((0, 0), line, font=face)[3] for line in lines]
        return sum(heights) + spacing * max(len(lines) - 1, 0)

    top_heights, left_heights = [block(lines) for lines in top_lines], [block(lines) for lines in left_lines]
    pad_top = max(top_heights) + spacing * 2 if any(top_heights) else 0
    result = Image.new("RGB", (grid.width + pad_left + margin * (cols - 1), grid.height + pad_top + margin * (rows - 1)),
                       "white")
    for row in range(rows):
        for col in range(cols):
            cell = grid.crop((width * col, height * row, width * (col + 1), height * (row + 1)))
            result.paste(cell, (pad_left + (width + margin) * col, pad_top + (height + margin) * row))
    draw = ImageDraw.Draw(result)

    def write(x: float, y: float, lines: list[str]) -> None:
        for line in lines:
            draw.text((x, y), line, font=face, fill=ACTIVE, anchor="ma")  # centred on x, from the top
            y += measure.textbbox((0, 0), line, font=face)[3] + spacing

    for col, lines in enumerate(top_lines[:cols]):
        write(pad_left + (width + margin) * col + width / 2, pad_top / 2 - top_heights[col] / 2, lines)
    for row, lines in enumerate(left_lines[:rows]):
        write(pad_left / 2, pad_top + (height + margin) * row + height / 2 - left_heights[row] / 2, lines)
    return result


def plot_grids(cells: Sequence[Image.Image | None], labels: tuple[Sequence[str], Sequence[str], Sequence[str]],
               legend: bool = True, margin: int = 0) -> list[Image.Image]:
    """A plot's pictures, first the one shown: with one Z value its grid; with several, the grids side by
    side under their Z legends, then each grid. `cells` in plot order: ix + iy * nx + iz * nx * ny."""
    xs, ys, zs = labels
    present = [cell for cell in cells if cell is not None]
    size = (max(c.width for c in present), max(c.height for c in present))
    per_grid = len(xs) * len(ys)
    grids = []
    for iz in range(len(zs)):
        grid = image_grid(cells[iz * per_grid:(iz + 1) * per_grid], rows=len(ys), size=size)
        grids.append(annotate(grid, *size, xs, ys, margin) if legend else grid)
    if len(grids) == 1:
        return grids
    sub = (max(g.width for g in grids), max(g.height for g in grids))
    together = image_grid(grids, rows=1, size=sub)
    if legend:
        together = annotate(together, *sub, zs, [""])
    return [together, *grids]
