"""An axis's values as A1111's X/Y/Z plot reads them (its scripts/xyz_grid.py `process_axis`): a
comma-separated list with CSV quoting (`"a, b", c`), where a number axis also takes ranges:

    1-5            -> 1, 2, 3, 4, 5          (ints: both ends included)
    10-30 (+5)     -> 10, 15, 20, 25, 30     (a step, signed as A1111 wants it)
    1-3 [5]        -> 1, 1, 2, 2, 3          (a count, spread evenly; ints truncated as A1111's)
    0.5-1.5 (+0.5) -> 0.5, 1.0, 1.5          (floats likewise; 1-2 [3] -> 1.0, 1.5, 2.0)

Pure functions: the axis (studio/xyz/axes.py) checks each value with its field's own check after.
"""

from __future__ import annotations

import csv
import re
from io import StringIO

import numpy as np

# A1111's own patterns (xyz_grid.py), kept as they are so the same text gives the same values.
RANGE = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*")
RANGE_FLOAT = re.compile(r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\(([+-]\d+(?:.\d*)?)\s*\))?\s*")
RANGE_COUNT = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*])?\s*")
RANGE_COUNT_FLOAT = re.compile(r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\[(\d+(?:.\d*)?)\s*])?\s*")
MAX_EXPANDED = 1000  # values one range may give before the plot's cell cap refuses it: a typo stays cheap


def split(text: str) -> list[str]:
    """Comma-separated values, CSV-quoted where a value holds a comma; each stripped."""
    rows = csv.reader(StringIO(text), skipinitialspace=False)
    return [value.strip() for row in rows for value in row]


def _number(text: str) -> float:
    return float(text.replace(" ", ""))


def _guarded(count: float) -> int:
    if count > MAX_EXPANDED:
        raise ValueError(f"a range of {count:.0f} values (at most {MAX_EXPANDED})")
    return int(count)


def expand_ints(values: list[str]) -> list[str | int]:
    """Int ranges expanded; other values left as text for the field's check."""
    out: list[str | int] = []
    for value in values:
        stepped, counted = RANGE.fullmatch(value), RANGE_COUNT.fullmatch(value)
        if stepped is not None:
            start, end = int(_number(stepped.group(1))), int(_number(stepped.group(2))) + 1
            step = int(stepped.group(3)) if stepped.group(3) is not None else 1
            if step == 0:
                raise ValueError(f"{value!r}: a step of 0")
            _guarded(max(0, (end - start) / step))
            out += list(range(start, end, step))
        elif counted is not None:
            start, end = int(_number(counted.group(1))), int(_number(counted.group(2)))
            count = _guarded(int(counted.group(3)) if counted.group(3) is not None else 1)
            out += [int(x) for x in np.linspace(start=start, stop=end, num=count).tolist()]
        else:
            out.append(value)
    return out


def expand_floats(values: list[str]) -> list[str | float]:
    """Float ranges expanded (A1111's arange: the end included when a step lands on it)."""
    out: list[str | float] = []
    for value in values:
        stepped, counted = RANGE_FLOAT.fullmatch(value), RANGE_COUNT_FLOAT.fullmatch(value)
        if stepped is not None:
            start, end = _number(stepped.group(1)), _number(stepped.group(2))
            step = float(stepped.group(3)) if stepped.group(3) is not None else 1.0
            if step == 0:
                raise ValueError(f"{value!r}: a step of 0")
            _guarded(max(0.0, (end + step - start) / step))
            out += [round(x, 8) for x in np.arange(start, end + step, step).tolist()]
        elif counted is not None:
            start, end = _number(counted.group(1)), _number(counted.group(2))
            count = _guarded(int(float(counted.group(3))) if counted.group(3) is not None else 1)
            out += [round(x, 8) for x in np.linspace(start=start, stop=end, num=count).tolist()]
        else:
            out.append(value)
    return out


def csv_text(values: list[str]) -> str:
    """Values written back as one CSV line (A1111's list_to_csv_string): a dropdown's picks as text."""
    with StringIO() as out:
        csv.writer(out).writerow(values)
        return out.getvalue().strip()
