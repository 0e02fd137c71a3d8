"""An X/Y/Z plot's cells (studio/xyz/): its axes read and checked, then one cell per (x, y, z), each planned
as a call of its own (paths, fields, work; times batch count), and the number of cells and the grid's size
capped, before anything runs. plan.py makes them one Plan, its cost every cell's, carrying the `Layout` the
grids are drawn from once the cells have run (plot_run.py)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..config import StudioConfig
from ..engine.paths import check_model_name
from ..errors import InvalidValue, StudioError
from ..fields import DEFAULT_MODEL, MAX_SEED, Context, FieldTable
from ..models import resolve_model
from ..request import RequestBase
from ..xyz import axes as axes_
from ..xyz.fields import LETTERS, NAMES, OPTIONS

MAX_CELLS = 100  # x * y * z: a plot is one call, and one call is one turn of the device queue
MAX_GRID_PIXELS = 200_000_000  # A1111's img_max_size_mp: the grid is drawn in memory
PLOT_SETTINGS = frozenset({*NAMES, OPTIONS})


@dataclass(frozen=True)
class Options:
    """A1111's switches of the script (its API passes them; the page and /generate take the defaults)."""

    draw_legend: bool = True
    no_fixed_seeds: bool = False  # keep -1: every cell draws its own seed
    vary_seeds: tuple[bool, bool, bool] = (False, False, False)  # a seed per column / row / grid
    margin_size: int = 0  # pixels between cells

    @classmethod
    def read(cls, given: Any) -> "Options":
        given = given if isinstance(given, Mapping) else {}
        margin = given.get("margin_size", 0)
        if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin <= 500:
            raise InvalidValue("margin_size", margin, "pixels from 0 to 500")
        return cls(bool(given.get("draw_legend", True)), bool(given.get("no_fixed_seeds", False)),
                   tuple(bool(given.get(f"vary_seeds_{letter}", False)) for letter in LETTERS),  # type: ignore
                   int(margin))


@dataclass(frozen=True)
class AxisValues:
    letter: str
    axis: axes_.Axis
    text: str  # as given: the grid's infotext says it (`X Values`)
    values: tuple[Any, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.axis.label(value) for value in self.values)


@dataclass(frozen=True)
class Layout:
    """What the grid is drawn from: each axis's legends, which cell each of the plan's requests is, and
    what the grid's infotext adds (A1111's `Script: X/Y/Z plot, X Type: ..., X Values: ...`)."""

    labels: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # x, y, z
    cells: tuple[int, ...]  # per request: ix + iy * nx + iz * nx * ny
    pairs: tuple[tuple[str, str], ...]
    settings: Mapping[str, str] = field(default_factory=dict)  # x_type, x_values...: the grid's PNG records them
    draw_legend: bool = True
    margin: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(labels) for labels in self.labels)  # type: ignore[return-value]

    @property
    def count(self) -> int:
        nx, ny, nz = self.shape
        return nx * ny * nz


def asked(settings: Mapping[str, Any]) -> bool:
    """Whether a call's settings ask for a plot: an axis other than Nothing."""
    return any(str(settings.get(f"{letter}_type") or axes_.NOTHING).strip().casefold() != "nothing"
               for letter in LETTERS)


def read_axes(settings: Mapping[str, Any], table: FieldTable, context: Context,
              check_model: Callable[[str], Any] | None = None) -> list[AxisValues]:
    """The three axes, their values read and checked (Nothing: one value)."""
    found = []
    for letter in LETTERS:
        axis = axes_.find(settings.get(f"{letter}_type") or axes_.NOTHING, f"{letter}_type", table)
        text = settings.get(f"{letter}_values")
        text = "" if text is None else text
        found.append(AxisValues(letter, axis, text if isinstance(text, str) else str(text),
                                axes_.read(axis, text, letter, table, context, check_model)))
    for one, other in itertools.combinations(found, 2):
        if one.axis.kind != "nothing" and set(one.axis.fields) & set(other.axis.fields):
            raise InvalidValue(f"{other.letter}_type", other.axis.name, f"another setting than the "
                               f"{one.letter.upper()} axis's ({one.axis.name})")
    prompt_sr = [a for a in found if a.axis.kind == "prompt"]
    for plotted in prompt_sr:  # A1111's: the first value must be there to be replaced
        search = plotted.values[0]
        if search not in (settings.get("prompt") or "") and search not in (settings.get("negative_prompt") or ""):
            raise InvalidValue(f"{plotted.letter}_values", search, "a text the prompt or negative prompt holds "
                               "(Prompt S/R replaces its first value)")
    return found


def _seeded(plotted: AxisValues, options: Options) -> AxisValues:
    """-1 on a seed axis drawn once, before anything runs (A1111's fix_axis_seeds)."""
    if options.no_fixed_seeds or not set(plotted.axis.fields) & set(axes_.SEED_FIELDS):
        return plotted
    values = tuple(secrets.randbelow(MAX_SEED + 1) if value == -1 else value for value in plotted.values)
    return AxisValues(plotted.letter, plotted.axis, plotted.text, values)


def processing_order(plotted: list[AxisValues]) -> list[int]:
    """The axes from outermost to innermost loop: z, y, x, except that the costliest axis to change (a
    model: a load) goes outermost, as A1111's does."""
    order = [2, 1, 0]
    return sorted(order, key=lambda i: -plotted[i].axis.cost)


def plot_cells(settings: Mapping[str, Any], config: StudioConfig, table: FieldTable,
               plan_cell: Callable[[dict[str, Any]], Sequence[RequestBase]]) -> tuple[list[RequestBase], Layout]:
    """A plot's requests, cell after cell (`plan_cell`: a call's checked requests), and its Layout."""
    check_model_name(settings.get("model"), config.allowed_roots)
    options = Options.read(settings.get(OPTIONS))
    base = {name: value for name, value in settings.items() if name not in PLOT_SETTINGS}
    context = Context(resolve_model(base.get("model") or DEFAULT_MODEL))
    roots = config.allowed_roots
    plotted = [_seeded(a, options) for a in read_axes(settings, table, context,
                                                      lambda name: check_model_name(name, roots))]
    nx, ny, nz = (len(a.values) for a in plotted)
    if nx * ny * nz > MAX_CELLS:
        raise InvalidValue("X/Y/Z plot", f"{nx} x {ny} x {nz} = {nx * ny * nz} cells", f"at most {MAX_CELLS} cells")
    if not options.no_fixed_seeds and base.get("seed") in (None, -1):
        base["seed"] = secrets.randbelow(MAX_SEED + 1)  # one seed for every cell: they differ by the axes only
    requests, cells, pixels = [], [], 0
    for picks in itertools.product(*(range(len(plotted[i].values)) for i in processing_order(plotted))):
        index = dict(zip(processing_order(plotted), picks))
        ix, iy, iz = index[0], index[1], index[2]
        cell = dict(base)
        for i, plot in enumerate(plotted):
            plot.axis.apply(cell, plot.values[index[i]], plot.values)
        if isinstance(cell.get("seed"), int) and cell["seed"] != -1:
            cell["seed"] = (cell["seed"] + sum(step for on, step in zip(
                options.vary_seeds, (ix, iy * nx, iz * nx * ny)) if on)) % (MAX_SEED + 1)
        where = ", ".join(f"{p.letter.upper()} {p.labels[index[i]] or '-'}" for i, p in enumerate(plotted)
                          if p.axis.kind != "nothing")
        try:  # each cell planned as a call of its own (paths, fields, work, wildcards), the cost summed after
            batches = plan_cell(cell)
            _does_something(plotted, batches[0], table)
        except InvalidValue as exc:  # a value an axis set: named by the axis's values, where the user typed it
            owner = next((f"{p.letter}_values" for p in plotted if exc.field in p.axis.fields), None)
            field, allowed = (owner, f"{exc.allowed} for {exc.field}") if owner else (exc.field, exc.allowed)
            raise InvalidValue(field, exc.value, f"{allowed} (in the plot's cell {where})") from None
        except StudioError as exc:
            raise StudioError(f"the plot's cell {where}: {exc}") from None
        requests += list(batches)
        cells += [ix + iy * nx + iz * nx * ny] * len(batches)
        first = batches[0]
        side = max(first.hires_size if first.hires else (first.width, first.height))
        pixels += side * side  # a cell's place in the grid: its larger side squared
    if pixels > MAX_GRID_PIXELS:
        raise InvalidValue("X/Y/Z plot", f"a grid of {pixels / 1e6:.0f} megapixels", f"at most "
                           f"{MAX_GRID_PIXELS / 1e6:.0f} megapixels (fewer cells or smaller images)")
    return requests, Layout((plotted[0].labels, plotted[1].labels, plotted[2].labels), tuple(cells),
                            _pairs(plotted, options), {key: value for p in plotted for key, value in
                                                       ((f"{p.letter}_type", p.axis.name), (f"{p.letter}_values", p.text))},
                            options.draw_legend, options.margin_size)


def _does_something(plotted: list[AxisValues], request: Any, table: FieldTable) -> None:
    """An axis whose setting the request's task does not use would draw the same picture in every cell."""
    for plot in plotted:
        for name in plot.axis.fields:
            if request.task not in table[name].tasks:
                raise InvalidValue(f"{plot.letter}_type", plot.axis.name,
                                   f"a setting {request.task} uses ({plot.axis.name} is for {', '.join(table[name].tasks)})")


def _pairs(plotted: list[AxisValues], options: Options) -> tuple[tuple[str, str], ...]:
    """What the grid's infotext adds, under A1111's keys."""
    pairs = [("Script", "X/Y/Z plot")]
    for plot in plotted:
        if plot.axis.kind == "nothing":
            continue
        name = plot.letter.upper()
        pairs += [(f"{name} Type", plot.axis.name), (f"{name} Values", plot.text)]
        if set(plot.axis.fields) & set(axes_.SEED_FIELDS) and not options.no_fixed_seeds:
            pairs.append((f"Fixed {name} Values", ", ".join(str(v) for v in plot.values)))
    return tuple(pairs)
