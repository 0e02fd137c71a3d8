"""ControlNet units as a request holds them: checked, recorded without their picture, and written and
read as A1111's ControlNet extension writes them in the infotext:

    ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny, Weight: 1.0, Resize Mode: Crop and Resize,
    Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0,
    Pixel Perfect: False, Control Mode: Balanced"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .. import validation
from ..errors import InvalidValue
from ..images import RESIZE_MODES
from .preprocessors import DEFAULT_RESOLUTION, RESOLUTION_RANGE, find

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


@dataclass(frozen=True)
class ControlUnit:
    image: Any = None  # the picture (preprocessed by `module`), or a ready control map with "none"
    module: str = "none"
    model: str = ""
    weight: float = 1.0
    guidance_start: float = 0.0  # the fraction of the steps where it starts steering
    guidance_end: float = 1.0
    resize_mode: str = "Crop and resize"
    processor_res: int = DEFAULT_RESOLUTION
    threshold_a: float | None = None  # the module's numbers (None: its defaults)
    threshold_b: float | None = None
    pixel_perfect: bool = False  # processor_res from the image and the generation size
    control_mode: str = CONTROL_MODES[0]
    union_type: str = ""  # a union ControlNet's control type ("": the preprocessor's)

    def active(self) -> bool:
        return self.weight > 0 and self.guidance_end > self.guidance_start

    def record(self) -> dict[str, Any]:
        """JSON-safe, the picture described (never stored, as the request's input images)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "image"}
        data["image"] = None if self.image is None else {"width": self.image.width, "height": self.image.height,
                                                        "stored": False}
        return data

    def infotext(self) -> str:
        a, b = (-1 if v is None else v for v in (self.threshold_a, self.threshold_b))
        return ", ".join(f"{key}: {value}" for key, value in (
            ("Module", self.module), ("Model", self.model), ("Weight", self.weight),
            ("Resize Mode", A1111_RESIZE[self.resize_mode]), ("Processor Res", self.processor_res),
            ("Threshold A", float(a)), ("Threshold B", float(b)),
            ("Guidance Start", self.guidance_start), ("Guidance End", self.guidance_end),
            ("Pixel Perfect", self.pixel_perfect), ("Control Mode", self.control_mode),
            *((("Union Control Type", self.union_type),) if self.union_type else ())))


FIELDS = {f.name for f in dataclasses.fields(ControlUnit)}


def parse_unit(value: Any, index: int) -> ControlUnit:
    """One unit from a ControlUnit or a mapping (the API's, a PNG's record); every field checked and
    named `controlnets[i].field`."""
    where = f"controlnets[{index}]"
    if isinstance(value, ControlUnit):
        value = {f: getattr(value, f) for f in FIELDS}
    if not isinstance(value, Mapping):
        raise InvalidValue(where, type(value).__name__, "a unit: {image, module, model, weight, ...}")
    unknown = sorted(set(value) - FIELDS)
    if unknown:
        raise InvalidValue(f"{where}.{unknown[0]}", value[unknown[0]], "one of " + ", ".join(sorted(FIELDS)))
    data = {**{f.name: f.default for f in dataclasses.fields(ControlUnit)},
            **{k: v for k, v in value.items() if v is not None}}
    resize = {a1111: ours for ours, a1111 in A1111_RESIZE.items()}.get(data["resize_mode"], data["resize_mode"])
    unit = ControlUnit(
        # A PNG's record describes the picture it never stored: it has to be given again.
        image=None if data["image"] is None or isinstance(data["image"], dict)
        else validation.image(f"{where}.image", data["image"]),
        module=find_module(f"{where}.module", data["module"]),
        model=validation.text(f"{where}.model", data["model"]).strip(),
        weight=validation.float_in_range(f"{where}.weight", data["weight"], *WEIGHT_RANGE),
        guidance_start=validation.float_in_range(f"{where}.guidance_start", data["guidance_start"], 0.0, 1.0),
        guidance_end=validation.float_in_range(f"{where}.guidance_end", data["guidance_end"], 0.0, 1.0),
        resize_mode=validation.choice(f"{where}.resize_mode", resize, list(RESIZE_MODES)),
        processor_res=validation.int_in_range(f"{where}.processor_res", data["processor_res"], *RESOLUTION_RANGE),
        threshold_a=None if data["threshold_a"] is None else validation.float_in_range(
            f"{where}.threshold_a", data["threshold_a"], -1e9, 1e9),
        threshold_b=None if data["threshold_b"] is None else validation.float_in_range(
            f"{where}.threshold_b", data["threshold_b"], -1e9, 1e9),
        pixel_perfect=validation.boolean(f"{where}.pixel_perfect", data["pixel_perfect"]),
        control_mode=validation.choice(f"{where}.control_mode", data["control_mode"], CONTROL_MODES),
        union_type=validation.choice(f"{where}.union_type", data["union_type"], UNION_NAMES)
        if data["union_type"] != "" else "",
    )
    if not unit.model:
        raise InvalidValue(f"{where}.model", "", "a ControlNet: a hub id, a folder or a .safetensors file")
    if unit.guidance_start > unit.guidance_end:
        raise InvalidValue(f"{where}.guidance_start", unit.guidance_start, f"at most guidance_end ({unit.guidance_end:g})")
    pre = find(unit.module)
    try:
        a, b = pre.check(*(None if v == -1 else v for v in (unit.threshold_a, unit.threshold_b)))  # -1: A1111's none
    except InvalidValue as exc:
        raise InvalidValue(f"{where}.{exc.field}", exc.value, exc.allowed) from None
    # The module's numbers as they will be used (its defaults filled in; None where it has none): a unit
    # read back from its infotext is then equal to the one that was written.
    return dataclasses.replace(unit, threshold_a=a if pre.a else None, threshold_b=b if pre.b else None)


def find_module(field: str, name: Any) -> str:
    try:
        return find(validation.text(field, name).strip()).name
    except InvalidValue as exc:
        raise InvalidValue(field, name, exc.allowed) from None


def parse_units(value: Any) -> tuple[ControlUnit, ...]:
    return validation.items("controlnets", value, MAX_UNITS, "units", parse_unit)


def from_infotext(text: str) -> dict[str, Any]:
    """A unit's settings from its `ControlNet N` value (its picture is never in a PNG)."""
    pairs = {}
    for part in text.split(", "):
        key, sep, value = part.partition(": ")
        if sep:
            pairs[key.strip()] = value.strip()
    if "Model" not in pairs:
        raise ValueError(f"{text!r} names no Model")
    number = {k: float(pairs[k]) for k in ("Weight", "Guidance Start", "Guidance End", "Threshold A", "Threshold B")
              if k in pairs}
    return {"module": pairs.get("Module", "none"), "model": pairs["Model"], "weight": number.get("Weight", 1.0),
            "guidance_start": number.get("Guidance Start", 0.0), "guidance_end": number.get("Guidance End", 1.0),
            "resize_mode": pairs.get("Resize Mode", "Crop and Resize"),
            "processor_res": int(float(pairs.get("Processor Res", DEFAULT_RESOLUTION))),
            "threshold_a": None if number.get("Threshold A", -1) == -1 else number["Threshold A"],
            "threshold_b": None if number.get("Threshold B", -1) == -1 else number["Threshold B"],
            "pixel_perfect": pairs.get("Pixel Perfect", "False") == "True",
            "control_mode": pairs.get("Control Mode", CONTROL_MODES[0]),
            "union_type": pairs.get("Union Control Type", "")}
