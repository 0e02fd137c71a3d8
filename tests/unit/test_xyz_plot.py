"""A1111's X/Y/Z plot (studio/xyz/): values read as A1111 reads them (its own examples), axes derived from
the field table, every value checked before anything runs, a plot planned as one call (its cells, their
summed cost, a cap on cells), and the grid's layout with its legends."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from studio.config import StudioConfig
from studio.errors import InvalidValue
from studio.field_spec import Field
from studio.fields import TABLE, Context
from studio.models import resolve_model
from studio.service.plan import make_plan
from studio.service.plot import MAX_CELLS
from studio.service.plot_run import grid_infotext
from studio.xyz import a1111, axes, grid, values

BASE = {"model": "tiny", "prompt": "a red cube", "steps": 4, "width": 64, "height": 64, "seed": 11, "sampler": "Euler"}
CONTEXT = Context(resolve_model("tiny"))


def read(axis: str, text: str) -> tuple:
    return axes.read(axes.find(axis, "x_type", TABLE), text, "x", TABLE, CONTEXT)


# -- values as A1111 reads them -----------------------------------------------------------------------

def test_int_ranges_as_a1111s_examples():
    assert values.expand_ints(values.split("1-5")) == [1, 2, 3, 4, 5]
    assert values.expand_ints(values.split("1-5 (+2)")) == [1, 3, 5]
    assert values.expand_ints(values.split("10-5 (-3)")) == [10, 7]
    assert values.expand_ints(values.split("1-3 [5]")) == [1, 1, 2, 2, 3]  # a count, truncated as A1111's
    assert values.expand_ints(values.split("10-30 (+5), 100")) == [10, 15, 20, 25, 30, "100"]


def test_float_ranges_and_csv_quoting():
    assert values.expand_floats(values.split("0.25-1 (+0.25)")) == [0.25, 0.5, 0.75, 1.0]
    assert values.expand_floats(values.split("1-2 [3]")) == [1.0, 1.5, 2.0]
    assert values.split('"a, b", c ,d') == ["a, b", "c", "d"]
    assert values.csv_text(["Euler", "a, b"]) == 'Euler,"a, b"'
    with pytest.raises(ValueError, match="at most"):
        values.expand_ints(["1-99999999"])  # a typo stays cheap: refused before it is a list


def test_axis_values_are_checked_by_their_fields_own_check():
    assert read("Steps", "2-4") == (2, 3, 4)
    assert read("CFG Scale", "3, 7.5") == (3.0, 7.5)
    assert read("sampler", "euler, Euler a") == ("Euler", "Euler a")  # a field's name works too
    assert read("Size", "64x96, 128") == ((64, 96), (128, 128))
    assert read("Hires fix", "true, no") == (True, False)
    with pytest.raises(InvalidValue, match=r"x_values: '0' .*1 to 150 .*X axis, Steps") as caught:
        read("Steps", "0, 5")  # the steps field's own range
    assert caught.value.field == "x_values"
    with pytest.raises(InvalidValue, match=r"'Bogus'.*Schedule type"):
        read("Schedule type", "Karras, Bogus")  # names the value and the choices
    with pytest.raises(InvalidValue, match="x_values: 'ten'"):
        read("Steps", "ten")
    with pytest.raises(InvalidValue, match="x_type: 'Sigma churn'.*an axis: Nothing, Prompt S/R"):
        axes.find("Sigma churn", "x_type", TABLE)


# -- axes from the table --------------------------------------------------------------------------------

def test_axes_derive_from_the_field_table_under_a1111s_names():
    names = list(axes.axes(TABLE))
    assert names[:2] == ["Nothing", "Prompt S/R"]
    for label, field in (("Steps", "steps"), ("CFG Scale", "cfg_scale"), ("Sampler", "sampler"),
                         ("Checkpoint name", "model"), ("Denoising", "denoising_strength"), ("Clip skip", "clip_skip"),
                         ("Hires steps", "hires_steps"), ("Hires upscaler", "hires_upscaler"), ("Seed", "seed")):
        assert axes.axes(TABLE)[label].fields == (field,)
    assert "Size" in names and "Prompt" not in names and "Task" not in names  # text and the task are no axes
    added = TABLE.with_fields(Field("eta", "float", 0.0, "Eta", range=(0.0, 1.0), widget="slider"))
    assert axes.axes(added)["Eta"].fields == ("eta",)  # a new setting is an axis without more code


def test_a1111_index_lists_are_its_axis_options_per_route():
    txt, img = a1111.axis_list("txt2img"), a1111.axis_list("img2img")
    assert txt[:8] == ["Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale",
                       "Prompt S/R"]
    assert img[:8] == ["Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "CFG Scale", "Image CFG Scale",
                       "Prompt S/R"]
    assert (txt.index("Sampler"), txt.index("Checkpoint name"), txt[-1]) == (9, 11, "RNG source")
    found = a1111.settings([4, "10-30 (+10)", [], 11, "tiny", [], 0, "", [], True, False, False, False, False,
                            False, False, 4, False], "txt2img")
    assert (found["x_type"], found["y_type"], found["z_type"]) == ("Steps", "Checkpoint name", "Nothing")
    assert found["xyz_options"]["margin_size"] == 4
    with pytest.raises(InvalidValue, match="'Sigma Churn'.*has a setting for"):
        a1111.settings([13, "1"], "txt2img")


# -- a plot's plan ------------------------------------------------------------------------------------

def test_a_plot_is_one_plan_of_its_cells_times_batch_count_with_their_summed_cost():
    plan = make_plan({**BASE, "x_type": "Steps", "x_values": "2, 4", "y_type": "CFG Scale", "y_values": "3, 7",
                      "batch_count": 2}, StudioConfig())
    assert len(plan) == 8 and plan.plot.shape == (2, 2, 1) and plan.plot.cells == (0, 0, 1, 1, 2, 2, 3, 3)
    assert [(r.steps, r.cfg_scale) for r in plan][::2] == [(2, 3.0), (4, 3.0), (2, 7.0), (4, 7.0)]
    assert {r.seed for r in plan[::2]} == {11} and {r.seed for r in plan[1::2]} == {12}  # same noise per cell
    assert plan.cost == pytest.approx(sum(r.cost() for r in plan))
    assert plan.plot.labels[0] == ("Steps: 2", "Steps: 4")
    cell = plan[2].cost()  # 4 steps: each cell alone passes the cap, the plot (their sum) does not
    with pytest.raises(InvalidValue, match=r"cost: '\d+ megapixel-steps'") as caught:
        make_plan({**BASE, "x_type": "Steps", "x_values": "4, 4"}, StudioConfig(max_cost=cell * 1.5))
    assert "cell" not in str(caught.value)


def test_a_plot_refuses_too_many_cells_a_missing_search_text_and_a_setting_its_task_does_not_use():
    with pytest.raises(InvalidValue, match=f"at most {MAX_CELLS} cells"):
        make_plan({**BASE, "x_type": "Steps", "x_values": "1-11", "y_type": "Seed", "y_values": "1-10"},
                  StudioConfig())
    with pytest.raises(InvalidValue, match="x_values: 'blue'.*Prompt S/R"):
        make_plan({**BASE, "x_type": "Prompt S/R", "x_values": "blue, green"}, StudioConfig())
    with pytest.raises(InvalidValue, match="y_type: 'Mask blur'.*txt2img"):
        make_plan({**BASE, "x_type": "Steps", "x_values": "2", "y_type": "Mask blur", "y_values": "4, 8"},
                  StudioConfig())
    with pytest.raises(InvalidValue, match="y_type.*another setting than the X axis"):
        make_plan({**BASE, "x_type": "Steps", "x_values": "2", "y_type": "steps", "y_values": "3"}, StudioConfig())


def test_prompt_sr_replaces_in_both_prompts_and_seeds_are_drawn_once():
    plan = make_plan({**BASE, "prompt": "a cube <lora:x:0.5>", "negative_prompt": "blur <lora:x:0.5>",
                      "x_type": "Prompt S/R", "x_values": "<lora:x:0.5>, <lora:x:1>", "seed": -1,
                      "y_type": "Seed", "y_values": "-1, 5"}, StudioConfig())
    first, second = plan[0].prompt, plan[1].prompt
    assert (first, second) == ("a cube <lora:x:0.5>", "a cube <lora:x:1>") and plan[1].negative_prompt.endswith("x:1>")
    seeds = [r.seed for r in plan]
    assert seeds[0] == seeds[1] != -1 and seeds[2:] == [5, 5]  # -1 drawn once, before anything runs
    assert ("Fixed Y Values", f"{seeds[0]}, 5") in plan.plot.pairs


def test_a_plot_without_axes_is_a_plain_call():
    assert make_plan({**BASE, "x_type": "Nothing", "x_values": "junk"}, StudioConfig()).plot is None


# -- the grid ----------------------------------------------------------------------------------------

def test_grid_layout_leaves_room_for_its_legends():
    cells = [Image.new("RGB", (64, 48), (i * 40, 0, 0)) for i in range(6)]
    labels = (("Steps: 2", "Steps: 4", "Steps: 8"), ("CFG Scale: 3", "CFG Scale: 7"), ("",))
    (plain,) = grid.plot_grids(cells, labels, legend=False)
    assert plain.size == (3 * 64, 2 * 48)
    (drawn,) = grid.plot_grids(cells, labels)
    pad_left = 64 * 3 // 4
    assert drawn.width == 3 * 64 + pad_left and drawn.height > 2 * 48
    assert drawn.getpixel((pad_left + 1, drawn.height - 1)) == cells[3].getpixel((0, 0))  # row 2, column 1
    spaced = grid.plot_grids(cells, labels, margin=10)[0]
    assert spaced.size == (drawn.width + 2 * 10, drawn.height + 10)
    no_rows = grid.plot_grids(cells[:3], (labels[0], ("",), ("",)))[0]
    assert no_rows.width == 3 * 64  # no Y legend: no room taken for it


def test_several_z_values_give_a_grid_of_grids_first():
    cells = [Image.new("RGB", (32, 32)) for _ in range(4)]
    pictures = grid.plot_grids(cells, (("a", "b"), ("",), ("Seed: 1", "Seed: 2")), legend=True)
    assert len(pictures) == 3 and pictures[0].width == pictures[1].width + pictures[2].width
    assert pictures[0].height > pictures[1].height  # the Z legends above


def test_the_grids_infotext_is_the_first_cells_and_the_plots():
    text = grid_infotext("a cube\nSteps: 2, Seed: 11", (("Script", "X/Y/Z plot"), ("X Values", "2, 4")))
    assert text == 'a cube\nSteps: 2, Seed: 11, Script: X/Y/Z plot, X Values: "2, 4"'
    restored = {f.name: f.from_infotext({"X Type": "Steps", "X Values": "2, 4"}) for f in TABLE
                if f.name in ("x_type", "x_values", "y_type")}
    assert restored == {"x_type": "Steps", "x_values": "2, 4", "y_type": "Nothing"}


def test_plot_fields_are_per_click_and_never_a_requests():
    for name in ("x_type", "x_values", "z_values"):
        assert TABLE[name].scope == "run" and dataclasses.replace(TABLE[name]).record is False


def test_the_pages_panel_title_says_which_axes_are_set():
    from studio.web import xyz_view

    assert xyz_view.title("Nothing", "Nothing", "Nothing") == "X/Y/Z plot"
    assert xyz_view.title("Steps", "Nothing", "CFG Scale") == "X/Y/Z plot: Steps × CFG Scale"
    assert xyz_view.hint(TABLE, "Steps").startswith("integers from 1 to 150")  # under the values box
    assert "Euler a" in xyz_view.hint(TABLE, "sampler") and xyz_view.hint(TABLE, "bogus") == ""
