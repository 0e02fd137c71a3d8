"""The detailer's settings, declared once (their block of the field table: studio/fields.py adds
`FIELDS`), under ADetailer's infotext keys (its adetailer/args.py `ALL_ARGS`) and API arguments.

ADetailer names a model file (`face_yolov8n.pt`); here `ADetailer model` is the detector (a Hub id, a
folder, `builtin:owlv2`) and `ADetailer model classes` (YOLO-World's text classes in ADetailer) is what it
looks for. An ADetailer infotext reads back with its target taken from its model's name and the detector
left as the form has it. Keys ADetailer leaves out at their defaults (an empty prompt, no separate
inpaint size) read back as those defaults.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .. import validation
from ..errors import InvalidValue
from ..field_spec import A1111, MISSING, Context, Field, Infotext, number_text
from .targets import DETAIL_TASKS, DETECTORS, TARGETS, TINY_DETECTOR, DEFAULT_DETECTOR, is_detector_name, target_of

MODEL_KEY, CLASSES_KEY, SIZE_KEY = "ADetailer model", "ADetailer model classes", "ADetailer use inpaint width height"
MAX_REGIONS = 8
# Each field's argument in ADetailer's API (`alwayson_scripts.ADetailer.args[2]`): studio/detail/a1111.py
AD_ARGS = {"detailer_model": "ad_model", "detailer_target": "ad_model_classes", "detailer_prompt": "ad_prompt",
           "detailer_negative_prompt": "ad_negative_prompt", "detailer_confidence": "ad_confidence",
           "detailer_max": "ad_mask_k_largest", "detailer_dilate": "ad_dilate_erode",
           "detailer_mask_blur": "ad_mask_blur", "detailer_strength": "ad_denoising_strength",
           "detailer_padding": "ad_inpaint_only_masked_padding", "detailer_width": "ad_inpaint_width",
           "detailer_height": "ad_inpaint_height"}


def on(request: Any) -> bool:
    return bool(request.detailer) and request.task in DETAIL_TASKS


def _api(name: str) -> A1111:
    where = "alwayson_scripts.ADetailer.args" if name == "detailer" else f"{AD_ARGS[name]} of ADetailer's args"
    return A1111(None, tasks=DETAIL_TASKS, note=where)


def _check_model(f: Field, value: Any, context: Context) -> str:
    allowed = f"a detector: {', '.join(DETECTORS)}, another OWLv2 / OWL-ViT Hub id (owner/name) or a folder"
    text = validation.text(f.name, value).strip()
    if not text or "\n" in text or len(text) > 500 or (text.startswith("builtin:") and text != TINY_DETECTOR):
        raise InvalidValue(f.name, value, allowed)
    return text


def _check_size(f: Field, value: Any, context: Context) -> int:
    """0 (the picture's own size), or a size the model takes."""
    number = validation.as_int(f.name, value, "0 (the picture's size) or a size the model takes")
    if number == 0:
        return 0
    return context.source.size_rule.check(f.name, number, context.source.name, context.source.size_range)


def _reader(key: str, parse: Callable[[str], Any], absent: Any) -> Callable[[Mapping[str, str]], Any]:
    """A key's value when the infotext has a detailer at all; ADetailer leaves a default value out."""
    def read(params: Mapping[str, str]) -> Any:
        if MODEL_KEY not in params:
            return MISSING
        return parse(params[key]) if key in params else absent
    return read


def _read_model(params: Mapping[str, str]) -> Any:
    value = params.get(MODEL_KEY)
    return value.strip() if value is not None and is_detector_name(value) else MISSING  # ADetailer's YOLO: ours


def _read_target(params: Mapping[str, str]) -> Any:
    if MODEL_KEY not in params:
        return MISSING
    classes = [c.strip().lower() for c in params.get(CLASSES_KEY, "").split(",") if c.strip()]
    found = next((c for c in classes if c in TARGETS), None) or target_of(params[MODEL_KEY])
    if found is None:
        raise ValueError(f"{MODEL_KEY} {params[MODEL_KEY]!r} looks for none of {', '.join(TARGETS)}")
    return found


def _read_size(key: str) -> Callable[[Mapping[str, str]], Any]:
    def read(params: Mapping[str, str]) -> Any:
        if MODEL_KEY not in params:
            return MISSING
        return int(params[key]) if params.get(SIZE_KEY) == "True" and key in params else 0
    return read


def _size_write(part: int) -> Callable[[Any, int], Any]:
    def write(request: Any, index: int) -> Any:
        sides = (request.detailer_width, request.detailer_height)
        return sides[part] if on(request) and sides[0] else None
    return write


def _size_field(name: str, label: str, part: int, key: str, position: int) -> Field:
    flag = (Infotext(SIZE_KEY, position - 1, write=lambda r, i: True if on(r) and r.detailer_width else None,
                     read=lambda p: MISSING),) if part == 0 else ()
    return Field(name, "int", 0, label, range=(0, 4096), range_note=" (0 = the picture's size)", check=_check_size,
                 widget="number", tasks=DETAIL_TASKS, help="0: the picture's; else a size the model takes",
                 infotext=flag + (Infotext(key, position, write=_size_write(part), read=_read_size(key)),),
                 a1111=_api(name))


FIELDS: tuple[Field, ...] = (
    Field("detailer", "bool", False, "Detailer: find faces, hands or people and repaint each one", widget="checkbox",
          tasks=DETAIL_TASKS, help="after text to image or image to image (at strength 0: the detailer alone)",
          infotext=(Infotext(None, read=lambda p: MODEL_KEY in p, note=MODEL_KEY),), a1111=_api("detailer")),
    Field("detailer_target", "choice", "face", "Detect", choices=tuple(TARGETS), widget="radio", tasks=DETAIL_TASKS,
          help="what the detector looks for (its text query)",
          infotext=(Infotext(CLASSES_KEY, 401, when=on, read=_read_target),), a1111=_api("detailer_target")),
    Field("detailer_model", "text", DEFAULT_DETECTOR, "Detector", check=_check_model, widget="dropdown",
          choices=DETECTORS, tasks=DETAIL_TASKS, page={"allow_custom_value": True},  # the list, or any other
          help=f"an OWLv2 or OWL-ViT model: a Hub id or a folder; {TINY_DETECTOR}: offline, random boxes",
          infotext=(Infotext(MODEL_KEY, 400, when=on, read=_read_model),), a1111=_api("detailer_model")),
    Field("detailer_prompt", "text", "", "Detailer prompt", widget="textbox", tasks=DETAIL_TASKS,
          page={"lines": 2, "placeholder": "empty: the prompt; [PROMPT] stands for it"},
          infotext=(Infotext("ADetailer prompt", 403, when=lambda r: on(r) and bool(r.detailer_prompt),
                             read=_reader("ADetailer prompt", str, "")),), a1111=_api("detailer_prompt")),
    Field("detailer_negative_prompt", "text", "", "Detailer negative prompt", widget="textbox", tasks=DETAIL_TASKS,
          page={"lines": 1, "placeholder": "empty: the negative prompt"},
          infotext=(Infotext("ADetailer negative prompt", 404,
                             when=lambda r: on(r) and bool(r.detailer_negative_prompt),
                             read=_reader("ADetailer negative prompt", str, "")),),
          a1111=_api("detailer_negative_prompt")),
    Field("detailer_confidence", "float", 0.3, "Detection confidence", range=(0.0, 1.0), widget="slider", step=0.01,
          tasks=DETAIL_TASKS, help="regions scoring above it are repainted",
          infotext=(Infotext("ADetailer confidence", 405, when=on, format=number_text,
                             read=_reader("ADetailer confidence", float, 0.3)),), a1111=_api("detailer_confidence")),
    Field("detailer_max", "int", 4, "Regions at most", range=(1, MAX_REGIONS), widget="slider", step=1,
          tasks=DETAIL_TASKS, help="the largest first; the cost counts this many",
          infotext=(Infotext("ADetailer mask only top k largest", 406, when=on, parse=int),),
          a1111=_api("detailer_max")),
    Field("detailer_dilate", "int", 4, "Mask erosion (-) / dilation (+)", range=(-128, 128), widget="slider", step=4,
          tasks=DETAIL_TASKS, help="pixels: the box's mask grows by half of it on each side (shrinks when negative)",
          infotext=(Infotext("ADetailer dilate erode", 411, when=on, parse=int,
                             read=_reader("ADetailer dilate erode", int, 4)),), a1111=_api("detailer_dilate")),
    Field("detailer_mask_blur", "int", 4, "Detailer mask blur", range=(0, 64), widget="slider", step=1,
          tasks=DETAIL_TASKS,
          infotext=(Infotext("ADetailer mask blur", 413, when=on, parse=int,
                             read=_reader("ADetailer mask blur", int, 4)),),
          a1111=_api("detailer_mask_blur")),
    Field("detailer_strength", "float", 0.4, "Detailer denoising strength", range=(0.0, 1.0), widget="slider",
          step=0.01, tasks=DETAIL_TASKS,
          infotext=(Infotext("ADetailer denoising strength", 414, when=on, format=number_text,
                             read=_reader("ADetailer denoising strength", float, 0.4)),),
          a1111=_api("detailer_strength")),
    Field("detailer_padding", "int", 32, "Detailer inpaint padding, pixels", range=(0, 256), widget="slider", step=4,
          tasks=DETAIL_TASKS, help="around each region: the context it is repainted with (only masked)",
          infotext=(Infotext("ADetailer inpaint only masked", 415, write=lambda r, i: True if on(r) else None,
                             read=lambda p: MISSING),
                    Infotext("ADetailer inpaint padding", 416, when=on, parse=int,
                             read=_reader("ADetailer inpaint padding", int, 32))),
          a1111=_api("detailer_padding")),
    _size_field("detailer_width", "Detailer inpaint width", 0, "ADetailer inpaint width", 418),
    _size_field("detailer_height", "Detailer inpaint height", 1, "ADetailer inpaint height", 419),
)
