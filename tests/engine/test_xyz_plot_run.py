"""An X/Y/Z plot run end to end on the tiny model through the service every door uses: one call, its cells
saved each with its own infotext, the labelled grid first; Stop during the plot ends it (no grid)."""

from __future__ import annotations

import pytest
from PIL import Image

from studio import pnginfo
from studio.infotext import parse_infotext
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.service import Service

BASE = {"model": "tiny", "prompt": "a red cube", "steps": 3, "width": 64, "height": 64, "seed": 11, "sampler": "Euler"}


@pytest.fixture
def service(studio, tmp_path):
    return Service(studio, OutputFolder(tmp_path))


def test_a_2x2_plot_saves_every_cell_and_a_labelled_grid_first(service):
    plan = service.plan({**BASE, "x_type": "Steps", "x_values": "2, 3", "y_type": "Sampler",
                         "y_values": "Euler, Euler a"})
    statuses = []
    for view in service.execute("caller", plan):
        statuses.append(view.status)
    assert len(view.saved) == 1 + 4 and any(s.startswith("Batch 2/4 · Step") for s in statuses)
    grid, cells = view.saved[0], view.saved[1:]
    pictures = [Image.open(image.path) for image in view.saved]
    assert all(p.size == (64, 64) for p in pictures[1:])
    assert pictures[0].size == (2 * 64 + 64 * 3 // 4, pictures[0].height) and pictures[0].height > 2 * 64
    params = [parse_infotext(image.infotext).params for image in cells]
    assert [(p["Steps"], p["Sampler"]) for p in params] == [("2", "Euler"), ("3", "Euler"), ("2", "Euler a"),
                                                            ("3", "Euler a")]
    assert {p["Seed"] for p in params} == {"11"}  # one seed: the cells differ by their axes only
    shown = parse_infotext(grid.infotext).params
    assert (shown["Script"], shown["X Type"], shown["X Values"], shown["Y Type"]) == ("X/Y/Z plot", "Steps", "2, 3",
                                                                                   "Sampler")
    assert shown["Steps"] == "2" and view.infotext == grid.infotext and view.history[0] == grid.path
    assert Image.open(grid.path).text["parameters"] == grid.infotext  # the PNG says it too
    recalled = pnginfo.recall(read_png(grid.path))  # PNG Info on the grid puts the plot back
    assert {name: recalled.fields[name] for name in ("x_type", "x_values", "y_type", "y_values", "z_type")} == \
        {"x_type": "Steps", "x_values": "2, 3", "y_type": "Sampler", "y_values": "Euler, Euler a", "z_type": "Nothing"}
    assert not recalled.notes and recalled.fields["steps"] == 2
    assert pnginfo.recall(read_png(cells[0].path)).fields["x_type"] == "Nothing"  # a cell's clears it
    assert "grid first" in view.status


def test_stop_during_a_plot_ends_it_without_a_grid(service):
    plan = service.plan({**BASE, "steps": 40, "x_type": "CFG Scale", "x_values": "3, 5, 7"})
    for view in service.execute("caller", plan):
        if view.step >= 1:
            service.jobs.cancel("caller")
    assert view.saved == [] and view.status.startswith("Stopped at step")
    assert "0 of 3 cells done; no grid" in view.status
    assert service.jobs.running_count("caller") == 0
