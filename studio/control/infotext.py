"""The infotext's `ControlNet N` lines, numbered as A1111's extension numbers its units: a request's
ControlNet units first, then its image prompts (IP-Adapter units there), and read back into each by
their module (an `ip-adapter_*` module makes an image prompt)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from .image_prompts import MAX_PROMPTS, MODULE_PREFIX, from_unit
from .units import MAX_UNITS, UNIT

if TYPE_CHECKING:
    from ..request import GenerationRequest

MAX_LINES = MAX_UNITS + MAX_PROMPTS


def line(k: int) -> Callable[[GenerationRequest, int], str | None]:
    """The writer of line `ControlNet k` (None past the request's units and prompts)."""
    def write(request: GenerationRequest, index: int) -> str | None:
        lines = [u.infotext() for u in request.controlnets] + [p.infotext() for p in request.image_prompts]
        return lines[k] if k < len(lines) else None

    return write


def _lines(params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every `ControlNet N` line, in order."""
    found = sorted((int(key.split()[1]), value) for key, value in params.items()
                   if key.startswith("ControlNet ") and key.split()[1].isdigit())
    units = [UNIT.read_line(value) for _, value in found]
    for (_, value), unit in zip(found, units):
        if "model" not in unit:
            raise ValueError(f"{value!r} names no Model")
    return units


def read_units(params: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    """The ControlNet units (their pictures are given again: PNGs never hold them)."""
    return tuple(u for u in _lines(params) if not u.get("module", "none").startswith(MODULE_PREFIX))


def read_image_prompts(params: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    return tuple(from_unit(u) for u in _lines(params) if u.get("module", "none").startswith(MODULE_PREFIX))
