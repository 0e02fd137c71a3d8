"""sd-webui-controlnet's units in A1111's API (`alwayson_scripts.controlnet.args`): ControlNet units and
`ip-adapter*` image prompts read by each field's declared A1111 key, counted before any picture is
decoded, and a 422's field named by the key the caller sent."""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

from PIL import Image

from ...control.image_prompts import MAX_PROMPTS, MODULE_PREFIX, PROMPT
from ...control.units import CONTROL_MODES, MAX_UNITS, UNIT
from ...errors import InvalidValue
from ...fields import TABLE
from .pictures import decode_image

# The studio's fields as A1111's requests name them (each field declares its A1111 key in the field
# table): what a request's keys become, and what a 422's `loc` names (the field the caller sent).
A1111_NAMES = {f.name: f.a1111.key for f in TABLE if f.a1111 is not None and f.a1111.key is not None}
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize")  # 3: A1111's latent upscale


# sd-webui-controlnet's unit keys (each ControlUnit and ImagePrompt field declares its own): those taken as
# they are, and the ones converted below (the picture, the module, a mode given by its index).
UNIT_KEYS = {f.a1111.key: f.name for f in UNIT.fields if f.a1111 is not None and f.a1111.direct}
PROMPT_KEYS = {f.a1111.key: f.name for f in PROMPT.fields if f.a1111 is not None and f.a1111.direct}
UNIT_NAMES = {f.name: f.a1111.key for f in UNIT.fields if f.a1111 is not None and f.a1111.key is not None}
UNIT_PICTURES = ("image", "input_image", "mask", "mask_image")  # left out of the echo
INDEXED = {"resize_mode": RESIZE_MODES[:3], "control_mode": CONTROL_MODES}
# sd-webui-controlnet's union control types (its ControlNetUnionControlType labels) to the studio's.
UNION_LABELS = {"openpose": "openpose", "depth": "depth", "soft edge": "hed", "hard edge": "canny",
                "normal map": "normal", "segmentation": "segment", "tile": "tile", "inpaint": "repaint", "unknown": ""}


def _unit_args(script: Any) -> Iterator[tuple[int, Mapping[str, Any], bool]]:
    """(index in args, unit, whether it is an image prompt) for each unit switched on."""
    args = script.get("args") if isinstance(script, Mapping) else None
    if not isinstance(args, list):
        raise InvalidValue("alwayson_scripts.controlnet.args", type(args).__name__, "a list of units")
    for i, unit in enumerate(args):
        if not isinstance(unit, Mapping):
            raise InvalidValue(f"alwayson_scripts.controlnet.args[{i}]", type(unit).__name__, "a ControlNet unit object")
        if unit.get("enabled") is not False:
            yield i, unit, str(unit.get(UNIT_NAMES["module"]) or "none").startswith(MODULE_PREFIX)


def count_units(script: Any) -> None:
    """The units switched on counted before any picture is decoded: at most MAX_UNITS ControlNet units
    and MAX_PROMPTS image prompts (a request for more is refused, naming `args`)."""
    field = "alwayson_scripts.controlnet.args"
    active = list(_unit_args(script))
    prompts = sum(1 for _, _, is_prompt in active if is_prompt)
    if len(active) - prompts > MAX_UNITS:
        raise InvalidValue(field, f"{len(active) - prompts} ControlNet units switched on", f"at most {MAX_UNITS}")
    if prompts > MAX_PROMPTS:
        raise InvalidValue(field, f"{prompts} ip-adapter units switched on", f"at most {MAX_PROMPTS}")


def controlnet_units(script: Any, init_image: Image.Image | None = None, notes: list[str] | None = None,
                     need_image: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """sd-webui-controlnet's `alwayson_scripts.controlnet.args` units: ControlNet units and, for an
    `ip-adapter*` module, image prompts (as A1111's extension runs IP-Adapters). Units switched off
    (`enabled: false`) are left out; their other keys (low_vram, ...) change nothing here. A unit
    without a picture (webuiapi sends `"image": ""`) takes `init_image` as the extension does on img2img
    (said in `notes`); with `need_image` (txt2img: no init image) it is refused, naming its image."""
    count_units(script)
    units, prompts = [], []
    for i, unit, is_prompt in _unit_args(script):
        where = f"alwayson_scripts.controlnet.args[{i}]"
        picture = unit.get(UNIT_NAMES["image"], unit.get("input_image"))
        if isinstance(picture, Mapping):  # {"image": b64, "mask": b64}
            picture = picture.get("image")
        if picture is None or (isinstance(picture, str) and not picture.strip()):
            if init_image is not None:
                image = init_image
                if notes is not None:
                    notes.append(f"{where} has no image: it ran on the init image, as A1111's extension does")
            elif need_image:
                raise InvalidValue(f"{where}.image", picture, "a base64 image (txt2img has no init image to use)")
            else:
                image = None
        else:
            image = decode_image(f"{where}.image", picture)
        if is_prompt:
            prompts.append({"image": image, **{ours: unit[key] for key, ours in PROMPT_KEYS.items()
                                               if unit.get(key) is not None}})
            continue
        values = {ours: unit[key] for key, ours in UNIT_KEYS.items() if unit.get(key) is not None}
        for name, names in INDEXED.items():
            value = unit.get(UNIT_NAMES[name])
            if value is not None:
                values[name] = _indexed(f"{where}.{UNIT_NAMES[name]}", value, names) if isinstance(value, int) else value
        union = unit.get(UNIT_NAMES["union_type"])
        if union is not None:
            values["union_type"] = UNION_LABELS.get(union.lower(), union) if isinstance(union, str) else union
        units.append({**values, "image": image, "module": str(unit.get(UNIT_NAMES["module"]) or "none")})
    return units, prompts


ITEM = re.compile(r"^(controlnets|image_prompts)\[(\d+)\](?:\.(\w+))?$")


def a1111_field(field: str, payload: Any) -> str:
    """The key a caller sent, for a field the studio names: `controlnets[1].weight` is the weight of the
    second ControlNet unit switched on in `alwayson_scripts.controlnet.args` (an image prompt, of an
    ip-adapter one), named there by its A1111 key."""
    match = ITEM.match(field)
    if match is None:
        return A1111_NAMES.get(field, field)
    name, index, part = match.group(1), int(match.group(2)), match.group(3)
    scripts = payload.get("alwayson_scripts") if isinstance(payload, Mapping) else None
    script = next((v for k, v in scripts.items() if k.lower() == "controlnet"), None) \
        if isinstance(scripts, Mapping) else None
    try:
        places = [i for i, _, is_prompt in _unit_args(script) if is_prompt == (name == "image_prompts")]
    except InvalidValue:
        places = []
    if index >= len(places):
        return field
    record = PROMPT if name == "image_prompts" else UNIT
    spec = record.fields[part].a1111 if part in record.fields else None
    key = spec.key if spec is not None and spec.key else part
    return f"alwayson_scripts.controlnet.args[{places[index]}]" + (f".{key}" if key else "")


def _indexed(field: str, value: Any, names: tuple[str, ...]) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
        raise InvalidValue(field, value, f"0 to {len(names) - 1}")
    return names[value]
