"""ControlNet units as a request holds them: checked, recorded without their picture, and written and
read as A1111's ControlNet extension writes them in the infotext:

    ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny, Weight: 1.0, Resize Mode: Crop and Resize,
    Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0,
    Pixel Perfect: False, Control Mode: Balanced"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import validation
from ..errors import InvalidValue
from ..field_spec import A1111, Context, Field, Infotext, Record, part
from ..images import RESIZE_MODES
from .preprocessors import DEFAULT_RESOLUTION, PREPROCESSORS, RESOLUTION_RANGE, find

MAX_UNITS = 3
WEIGHT_RANGE = (0.0, 2.0)
# A1111's extension capitalises its resize modes; both spellings are read.
A1111_RESIZE = {"Just resize": "Just Resize", "Crop and resize": "Crop and Resize", "Resize and fill": "Resize and Fill"}
# A1111's: Balanced steers as trained; the other two weigh the ControlNet's layers down towards the
# outside (0.825 per layer from the middle block), and "ControlNet is more important" steers only the
# prompt's half of a CFG batch, so CFG pushes the image towards the control (studio/control/pipes.py).
CONTROL_MODES = ("Balanced", "My prompt is more important", "ControlNet is more important")
# Union ControlNets' control types by kind: the model's mode numbers in order, and the preprocessors
# that pick each when a unit names none (xinsir's SDXL promax; InstantX's and Shakker-Labs' FLUX unions).
UNION_TYPES = {
    "ControlNetUnionModel": (("openpose", ("openpose",)), ("depth", ("depth_anything_v2",)),
                             ("hed", ("softedge_hed", "scribble")), ("canny", ("canny", "lineart_realistic")),
                             ("normal", ("normal_bae",)), ("segment", ()), ("tile", ("tile_resample", "blur_gaussian")),
                             ("repaint", ())),
    "FluxControlNetModel": (("canny", ("canny",)), ("tile", ("tile_resample",)), ("depth", ("depth_anything_v2",)),
                            ("blur", ("blur_gaussian",)), ("pose", ("openpose",)), ("gray", ("recolor_luminance",)),
                            ("lq", ())),
}
UNION_NAMES = sorted({name for types in UNION_TYPES.values() for name, _ in types})


def union_index(kind: str, unit: "ControlUnit", field: str) -> int:
    """The mode number a union ControlNet of `kind` runs the unit with: its union_type's, or the one its
    preprocessor picks."""
    types = UNION_TYPES[kind]
    for number, (name, modules) in enumerate(types):
        if unit.union_type == name or (not unit.union_type and unit.module in modules):
            return number
    names = ", ".join(name for name, _ in types)
    if unit.union_type:
        raise InvalidValue(field, unit.union_type, f"a control type of this union ControlNet: {names}")
    raise InvalidValue(field, "", f"a control type ({names}): preprocessor {unit.module} picks none on a union "
                                  "ControlNet")


def picture_check(f: Field, value: Any, context: Context) -> Any:
    # A PNG's record describes the picture it never stored: it has to be given again.
    return None if value is None or isinstance(value, dict) else validation.image(f.name, value)


def _module(f: Field, value: Any, context: Context) -> str:
    try:
        return find(validation.text(f.name, value).strip()).name
    except InvalidValue as exc:
        raise InvalidValue(f.name, value, exc.allowed) from None


def _model(f: Field, value: Any, context: Context) -> str:
    return validation.text(f.name, value).strip()


def _threshold(f: Field, value: Any, context: Context) -> float | None:
    return None if value is None else validation.float_in_range(f.name, value, -1e9, 1e9)


def _resize(f: Field, value: Any, context: Context) -> str:
    return validation.choice(f.name, A1111_READ.get(value, value) if isinstance(value, str) else value, f.choice_list())


def _union(f: Field, value: Any, context: Context) -> str:
    return "" if value == "" else validation.choice(f.name, value, f.choice_list())


def _threshold_text(value: float | None) -> float:
    return float(-1 if value is None else value)  # -1: A1111's "none"


def _threshold_read(text: str) -> float | None:
    return None if float(text) == -1 else float(text)


def _is_union(unit: "ControlUnit") -> bool:
    return bool(unit.union_type)


A1111_READ = {a1111: ours for ours, a1111 in A1111_RESIZE.items()}


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet unit: its fields declared once here (checks, infotext keys in A1111's extension's
    order, A1111's API names, page controls); UNIT below derives the rest."""

    image: Any = part("image", None, "Picture (upload one, or draw a sketch)", check=picture_check, widget="canvas",
                      help="the picture (preprocessed by `module`), or a ready control map with module none",
                      a1111=A1111("image", converted=True, note="base64; or input_image, or {image, mask}"))
    module: str = part("choice", "none", "Preprocessor", choices=lambda: list(PREPROCESSORS), check=_module,
                       widget="dropdown", page={"value": "canny"},
                       infotext=(Infotext("Module", 1),),
                       a1111=A1111("module", converted=True, note="an ip-adapter* module makes an image prompt"))
    model: str = part("text", "", "ControlNet model", check=_model, widget="dropdown",
                      help="the controlnets folder's, a hub id, a folder or .safetensors file",
                      page={"allow_custom_value": True, "value": None}, infotext=(Infotext("Model", 2),),
                      a1111=A1111("model"))
    weight: float = part("float", 1.0, "Weight", range=WEIGHT_RANGE, widget="slider", step=0.05,
                         infotext=(Infotext("Weight", 3, parse=float),), a1111=A1111("weight"))
    guidance_start: float = part("float", 0.0, "Starting step", range=(0.0, 1.0), widget="slider", step=0.01,
                                 help="the fraction of the steps where it starts steering",
                                 infotext=(Infotext("Guidance Start", 8, parse=float),), a1111=A1111("guidance_start"))
    guidance_end: float = part("float", 1.0, "Ending step", range=(0.0, 1.0), widget="slider", step=0.01,
                               infotext=(Infotext("Guidance End", 9, parse=float),), a1111=A1111("guidance_end"))
    resize_mode: str = part("choice", "Crop and resize", "Resize mode", choices=tuple(RESIZE_MODES), check=_resize,
                            widget="dropdown", infotext=(Infotext("Resize Mode", 4, format=A1111_RESIZE.get),),
                            a1111=A1111("resize_mode", converted=True, note="a name or its index"))
    processor_res: int = part("int", DEFAULT_RESOLUTION, "Preprocessor resolution", range=RESOLUTION_RANGE,
                              widget="slider", step=8,
                              infotext=(Infotext("Processor Res", 5, parse=lambda v: int(float(v))),),
                              a1111=A1111("processor_res"))
    threshold_a: float | None = part("float", None, "Threshold A", check=_threshold, widget="threshold",
                                     help="the module's first number (none: its default)",
                                     infotext=(Infotext("Threshold A", 6, format=_threshold_text,
                                                        parse=_threshold_read),),
                                     a1111=A1111("threshold_a"))
    threshold_b: float | None = part("float", None, "Threshold B", check=_threshold, widget="threshold",
                                     help="the module's second number (none: its default)",
                                     infotext=(Infotext("Threshold B", 7, format=_threshold_text,
                                                        parse=_threshold_read),),
                                     a1111=A1111("threshold_b"))
    pixel_perfect: bool = part("bool", False, "Pixel perfect", widget="checkbox",
                               help="processor_res from the picture and the generation size",
                               infotext=(Infotext("Pixel Perfect", 10, parse=lambda v: v == "True"),),
                               a1111=A1111("pixel_perfect"))
    control_mode: str = part("choice", CONTROL_MODES[0], "Control mode", choices=CONTROL_MODES, widget="radio",
                             infotext=(Infotext("Control Mode", 11),),
                             a1111=A1111("control_mode", converted=True, note="a name or its index"))
    union_type: str = part("choice", "", "Union control type", choices=UNION_NAMES, check=_union, widget="dropdown",
                           help="union ControlNets only; none: the preprocessor's",
                           page={"choices": [("from the preprocessor", ""), *((t, t) for t in UNION_NAMES)]},
                           infotext=(Infotext("Union Control Type", 12, when=_is_union),),
                           a1111=A1111("union_control_type", converted=True, note="or its A1111 label: Hard Edge..."))

    def active(self) -> bool:
        return self.weight > 0 and self.guidance_end > self.guidance_start

    def record(self) -> dict[str, Any]:
        return UNIT.record(self)

    def infotext(self) -> str:
        return UNIT.line(self)


def _rules(unit: ControlUnit, where: str, context: Context) -> ControlUnit:
    """The rules between a unit's fields; the module's numbers as they will be used (its defaults
    filled in; None where it has none): a unit read back from its infotext is then equal to the one
    that was written."""
    if not unit.model:
        raise InvalidValue(f"{where}.model", "", "a ControlNet: a hub id, a folder or a .safetensors file")
    if unit.guidance_start > unit.guidance_end:
        raise InvalidValue(f"{where}.guidance_start", unit.guidance_start,
                           f"at most guidance_end ({unit.guidance_end:g})")
    pre = find(unit.module)
    try:
        a, b = pre.check(*(None if v == -1 else v for v in (unit.threshold_a, unit.threshold_b)))  # -1: A1111's none
    except InvalidValue as exc:
        raise InvalidValue(f"{where}.{exc.field}", exc.value, exc.allowed) from None
    return dataclasses.replace(unit, threshold_a=a if pre.a else None, threshold_b=b if pre.b else None)


UNIT = Record(ControlUnit, MAX_UNITS, "ControlNet unit", _rules)
FIELDS = set(UNIT.fields.by_name)


def parse_units(value: Any, context: Context) -> tuple[ControlUnit, ...]:
    return UNIT.parse_all("controlnets", value, context)
