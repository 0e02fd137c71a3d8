"""A1111's img2img scripts over its API (`script_name`, `script_args`), for the ones the studio has as
settings of its own: "Poor man's outpainting" (the outpaint task) and "SD upscale" (image to image in
tiles), and on both routes "X/Y/Z plot" (studio/xyz/). Any other script is reported in `info.ignored`."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ... import validation
from ...errors import InvalidValue
from ...tasks import outpaint
from ...xyz import a1111 as xyz_a1111


def _outpainting(args: Sequence[Any], settings: dict[str, Any], upscalers: Sequence[str]) -> dict[str, Any]:
    """[pixels, mask_blur, inpainting_fill, directions]: the init image extended."""
    return {**outpaint.from_a1111_script(args), "outpaint_image": settings.pop("init_image", None)}


def _sd_upscale(args: Sequence[Any], settings: dict[str, Any], upscalers: Sequence[str]) -> dict[str, Any]:
    """[info, overlap, upscaler_index, scale_factor], the index into GET /sdapi/v1/upscalers (a name works
    too; "None" is A1111's plain resize, Lanczos)."""
    if not isinstance(args, (list, tuple)):
        raise InvalidValue("script_args", type(args).__name__, "[info, overlap, upscaler_index, scale_factor]")
    _, overlap, upscaler, scale = [*args, *(None, 64, 1, 2.0)[len(args):]][:4]
    if isinstance(upscaler, int) and not isinstance(upscaler, bool):
        upscaler = upscalers[validation.int_in_range("script_args[2]", upscaler, 0, len(upscalers) - 1,
                                                     f" (an index into {', '.join(upscalers)})")]
    if not isinstance(upscaler, str):
        raise InvalidValue("script_args[2]", upscaler, "an upscaler's index or name (GET /sdapi/v1/upscalers)")
    name = upscaler
    return {"sd_upscale": True, "sd_upscale_overlap": validation.int_in_range("script_args[1]", overlap, 0, 256),
            "sd_upscale_upscaler": "Lanczos" if name.strip().casefold() == "none" else name,
            "sd_upscale_scale": validation.float_in_range("script_args[3]", scale, 1.0, 4.0)}


def _xyz_plot(args: Sequence[Any], settings: dict[str, Any], upscalers: Sequence[str]) -> dict[str, Any]:
    """A1111's positional script_args, its axis indices read in the route's list (studio/xyz/a1111.py)."""
    return xyz_a1111.settings(args, "txt2img" if settings.get("task") in (None, "txt2img") else "img2img")


SCRIPTS: dict[str, Callable[[Sequence[Any], dict[str, Any], Sequence[str]], dict[str, Any]]] = {
    "poor man's outpainting": _outpainting, "sd upscale": _sd_upscale, "x/y/z plot": _xyz_plot}
EVERY_ROUTE = ("x/y/z plot",)  # the others are img2img's scripts


def apply(payload: Mapping[str, Any], settings: dict[str, Any], upscalers: Callable[[], Sequence[str]]) -> bool:
    """The request's script read into `settings` where the studio has it; whether it was."""
    name = payload.get("script_name")
    script = SCRIPTS.get(name.strip().casefold()) if isinstance(name, str) else None
    if script is None:
        return False
    if settings.get("task") != "img2img" and name.strip().casefold() not in EVERY_ROUTE:
        raise InvalidValue("script_name", name, "an img2img script: on /sdapi/v1/img2img with init_images and no mask")
    settings.update(script(payload.get("script_args") or [], settings, upscalers()))
    return True
