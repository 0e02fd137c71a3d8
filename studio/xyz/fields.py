"""The X/Y/Z plot's settings, declared once (their block of the field table: studio/fields.py adds
`FIELDS`): for each axis, its type (an axis name: studio/xyz/axes.py) and its values (A1111's syntax). Per
click, as batch count is: never a request's field, never in a cell's PNG; a grid's infotext says them under
A1111's keys (`X Type`, `X Values`), so PNG Info and History put a plot back, and an image without them
clears it. /generate takes them as parameters; A1111's API as `script_name: "x/y/z plot"`."""

from __future__ import annotations

from typing import Callable

from ..field_spec import A1111, Field, Infotext

LETTERS = ("x", "y", "z")
OPTIONS = "xyz_options"  # A1111's other script_args by name (studio/xyz/a1111.py): the API's only, not settings
VALUES_HELP = ("comma-separated (CSV quoting: \"a, b\"); numbers take ranges: 1-5, 10-30 (+5), 1-3 [5] (a count), "
               "0.5-1 (+0.25); -1 seeds are drawn once; Prompt S/R: the first value is searched in the prompts and "
               "each value replaces it")


def _type(letter: str, index: int, axis_names: Callable[[], list[str]]) -> Field:
    key = f"{letter.upper()} Type"
    return Field(f"{letter}_type", "choice", "Nothing", f"{letter.upper()} type", choices=axis_names,
                 widget="dropdown", scope="run", record=False,
                 help=f"the setting the plot's {letter.upper()} axis varies (Nothing: no {letter.upper()} axis)",
                 infotext=(Infotext(None, read=lambda p: p.get(key, "Nothing"), note=f"{key} of a plot's grid"),),
                 a1111=A1111(None, note=f'script_args[{index}] of script_name "x/y/z plot" (an index into '
                                        "A1111's axis list)"))


def _values(letter: str, index: int) -> Field:
    key = f"{letter.upper()} Values"
    return Field(f"{letter}_values", "text", "", f"{letter.upper()} values", widget="textbox", scope="run",
                 record=False, help=VALUES_HELP, page={"lines": 1, "placeholder": "e.g. 10, 20, 30 or 10-30 (+10)"},
                 infotext=(Infotext(None, read=lambda p: p.get(key, ""), note=f"{key} of a plot's grid"),),
                 a1111=A1111(None, note=f'script_args[{index}] of script_name "x/y/z plot"'))


def fields(axis_names: Callable[[], list[str]]) -> tuple[Field, ...]:
    """The plot's fields; `axis_names`: the axes of the table they join (studio/xyz/axes.py derives them
    from it, so the table passes them in)."""
    return tuple(field for n, letter in enumerate(LETTERS)
                 for field in (_type(letter, 3 * n, axis_names), _values(letter, 3 * n + 1)))


NAMES = tuple(name for letter in LETTERS for name in (f"{letter}_type", f"{letter}_values"))
