"""A plot's run, as the service executes it: its cells' views pass through as they come (every cell saved
as its own PNG with its own infotext, "Batch k/n" progress, Stop ends the rest), and once every cell has
run, the grids are drawn from the cells' first images, saved as PNGs with the first cell's infotext and
A1111's `Script: X/Y/Z plot, X Type: ..., X Values: ...` added, and put first among the images, as A1111
returns them. A plot stopped before its last cell keeps its cells and draws no grid."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from PIL import Image

from ..infotext import quote
from ..outputs import OutputFolder
from ..xyz.grid import plot_grids


def grid_infotext(first: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """The first cell's infotext, its parameter line extended with the plot's pairs (A1111's keys)."""
    return first + ", " + ", ".join(f"{key}: {quote(value)}" for key, value in pairs)


def with_grids(views: Iterator[Any], plan: Any, outputs: OutputFolder, history_limit: int) -> Iterator[Any]:
    """The views of a plot's run (execute.py's RunViews), then one with its grids first among the images."""
    layout = plan.plot
    firsts: dict[int, Any] = {}  # cell -> its first saved image
    seen, view = 0, None
    try:
        for view in views:
            for image in view.saved[seen:]:  # new since the last view: the running batch's
                firsts.setdefault(layout.cells[view.batch], image)
            seen = len(view.saved)
            yield view
    finally:
        views.close()  # closed early (Stop, a hang-up): the run is cancelled at its yield, as without a plot
    if view is None:
        return
    if view.batch < len(plan) - 1 or view.status.startswith("Stopped") or not firsts:
        view.status = (f"{view.status} X/Y/Z plot: {len(firsts)} of {layout.count} cells done; no grid.").strip()
        view.changed = frozenset({"status"})
        yield view
        return
    cells = [Image.open(firsts[i].path) if i in firsts else None for i in range(layout.count)]
    first = firsts.get(0) or next(iter(firsts.values()))
    text = grid_infotext(first.infotext, layout.pairs)
    record = {**plan.requests[layout.cells.index(0) if 0 in layout.cells else 0].record(), **layout.settings}
    saved = [dataclasses.replace(first, path=outputs.servable(outputs.save_picture(grid, text, first.seed, record)),
                                 infotext=text)
             for grid in plot_grids(cells, layout.labels, layout.draw_legend, layout.margin)]
    view.saved = saved + view.saved
    view.history = ([image.path for image in saved][::-1] + view.history)[:history_limit]
    view.infotext, view.seed = text, first.seed
    nx, ny, nz = layout.shape
    view.status = f"{view.status} X/Y/Z plot: {nx}x{ny}" + (f"x{nz}" if nz > 1 else "") + " grid first."
    view.changed = frozenset({"images", "infotext", "seed", "status", "history"})
    yield view
