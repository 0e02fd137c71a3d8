"""A1111's X/Y/Z plot over its API: `script_name: "x/y/z plot"` and its positional `script_args`

    [x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values,
     z_values_dropdown, draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds,
     vary_seeds_x, vary_seeds_y, vary_seeds_z, margin_size, csv_mode]

(A1111 1.10), where each *_type is an index into A1111's axis list for the route: its `axis_options` with
the other route's own entries left out (scripts/xyz_grid.py). Those lists are reproduced here as A1111
has them; an axis the studio has a setting for maps to its axis (studio/xyz/axes.py), any other is refused
by name. A name instead of an index is taken too. The grid comes first among the response's images, then
every cell's (A1111's include_lone_images; its sub-grids come with several Z values)."""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import InvalidValue
from ..fields import TABLE
from . import axes as axes_
from .fields import OPTIONS
from .values import csv_text

BOTH, TXT2IMG, IMG2IMG = "both", "txt2img", "img2img"
# A1111's axis_options, in its order: (label, the route it is for).
AXIS_OPTIONS: tuple[tuple[str, str], ...] = (
    ("Nothing", BOTH), ("Seed", BOTH), ("Var. seed", BOTH), ("Var. strength", BOTH), ("Steps", BOTH),
    ("Hires steps", TXT2IMG), ("CFG Scale", BOTH), ("Image CFG Scale", IMG2IMG), ("Prompt S/R", BOTH),
    ("Prompt order", BOTH), ("Sampler", TXT2IMG), ("Hires sampler", TXT2IMG), ("Sampler", IMG2IMG),
    ("Checkpoint name", BOTH), ("Negative Guidance minimum sigma", BOTH), ("Sigma Churn", BOTH), ("Sigma min", BOTH),
    ("Sigma max", BOTH), ("Sigma noise", BOTH), ("Schedule type", BOTH), ("Schedule min sigma", BOTH),
    ("Schedule max sigma", BOTH), ("Schedule rho", BOTH), ("Eta", BOTH), ("Clip skip", BOTH), ("Denoising", BOTH),
    ("Initial noise multiplier", BOTH), ("Extra noise", BOTH), ("Hires upscaler", TXT2IMG),
    ("Cond. Image Mask Weight", IMG2IMG), ("VAE", BOTH), ("Styles", BOTH), ("UniPC Order", BOTH),
    ("Face restore", BOTH), ("Token merging ratio", BOTH), ("Token merging ratio high-res", BOTH),
    ("Always discard next-to-last sigma", BOTH), ("SGM noise multiplier", BOTH), ("Refiner checkpoint", BOTH),
    ("Refiner switch at", BOTH), ("RNG source", BOTH),
)
# On txt2img, A1111's "Denoising" is the hires pass's strength (its only denoising there).
ROUTE_AXES = {(TXT2IMG, "Denoising"): "Hires denoising strength"}
ARGS = ("x_type", "x_values", "x_values_dropdown", "y_type", "y_values", "y_values_dropdown", "z_type", "z_values",
        "z_values_dropdown", "draw_legend", "include_lone_images", "include_sub_grids", "no_fixed_seeds",
        "vary_seeds_x", "vary_seeds_y", "vary_seeds_z", "margin_size", "csv_mode")
DEFAULTS = (1, "", [], 0, "", [], 0, "", [], True, False, False, False, False, False, False, 0, False)


def axis_list(route: str) -> list[str]:
    """A1111's axis labels for a route, in the order its *_type indexes them."""
    return [label for label, where in AXIS_OPTIONS if where in (BOTH, route)]


def _axis(value: Any, route: str, where: str) -> axes_.Axis:
    labels = axis_list(route)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(labels):
            raise InvalidValue(where, value, f"an index into A1111's {route} axis list (0 to {len(labels) - 1})")
        label = labels[value]
    elif isinstance(value, str):
        label = value
    else:
        raise InvalidValue(where, value, f"an index into A1111's {route} axis list, or an axis's name")
    name = ROUTE_AXES.get((route, label), label)
    known = axes_.axes(TABLE)
    if name not in known and name in labels:
        here = [label for label in labels if label in known or (route, label) in ROUTE_AXES]
        raise InvalidValue(where, label, f"an axis this studio has a setting for: {', '.join(here)}")
    return axes_.find(name, where, TABLE)


def _args(args: Any) -> dict[str, Any]:
    """script_args by name: A1111's list by position (missing ones at A1111's defaults), or an object of them."""
    if isinstance(args, Mapping):
        return {name: args.get(name, default) for name, default in zip(ARGS, DEFAULTS)}
    if not isinstance(args, (list, tuple)):
        raise InvalidValue("script_args", type(args).__name__, "[" + ", ".join(ARGS) + "]")
    return dict(zip(ARGS, [*args, *DEFAULTS[len(args):]]))


def settings(args: Any, route: str) -> dict[str, Any]:
    """The studio's plot settings from A1111's script_args for a route (txt2img, img2img)."""
    named = _args(args)
    found: dict[str, Any] = {}
    for n, letter in enumerate("xyz"):
        axis = _axis(named[f"{letter}_type"], route, f"script_args[{3 * n}]")
        values, picked = named[f"{letter}_values"], named[f"{letter}_values_dropdown"]
        # A1111 reads a choice axis's dropdown unless csv_mode; a client that filled the text only is read so too
        if axis.kind == "choice" and not named["csv_mode"] and isinstance(picked, list) and picked:
            values = csv_text([str(value) for value in picked])
        if values is not None and not isinstance(values, str):
            values = csv_text([str(v) for v in values]) if isinstance(values, list) else str(values)
        found[f"{letter}_type"], found[f"{letter}_values"] = axis.name, values or ""
    found[OPTIONS] = {name: named[name] for name in ("draw_legend", "no_fixed_seeds", "vary_seeds_x", "vary_seeds_y",
                                                     "vary_seeds_z", "margin_size")}
    return found
