"""sd-webui-controlnet's own routes (`/controlnet/...`), with its response shapes: clients such as
webuiapi's `ControlNetInterface` ask them for the ControlNets and preprocessors before they fill in a
unit's `model` and `module`, and `/controlnet/detect` shows a preprocessor's control map alone.

The lists come from the studio's registries (the preprocessors, the controlnets folder, the known
ControlNets); detect runs `preprocess`, the page's "Preview map", with the unit pictures' limits.
"""

from __future__ import annotations

from typing import Any, Mapping

from PIL import Image

from ... import validation
from ...config import StudioConfig
from ...control.folder import a1111_names
from ...control.preprocessors import DEFAULT_RESOLUTION, PREPROCESSORS, RESOLUTION_RANGE, Preprocessor, Slider, preprocess
from ...control.units import MAX_UNITS
from ...errors import InvalidValue, UnknownName
from ...control.known import KNOWN_MODELS
from . import pictures, translate

API_VERSION = 2  # the extension's external_code.get_api_version()
# The pictures one detect call takes: as many as a request's units (the extension takes any number;
# each is a preprocessor run, so the work one call asks for stays bounded).
MAX_DETECT_IMAGES = MAX_UNITS
# The extension's key for the pictures, then webuiapi's (its controlnet_detect sends `controlnet_images`).
IMAGE_KEYS = ("controlnet_input_images", "controlnet_images")
MAX_PICTURE_CHARS = pictures.MAX_PICTURE_CHARS  # base64 of the page's largest upload, a data: prefix
RESOLUTION_SLIDER = {"name": "Preprocessor Resolution", "value": DEFAULT_RESOLUTION, "min": RESOLUTION_RANGE[0],
                     "max": RESOLUTION_RANGE[1], "step": 8}
NONE = -1  # the extension's "not given": the preprocessor's default


def model_list(config: StudioConfig) -> list[str]:
    """The controlnets folder's files as A1111 names them (`name [hash]`; pickled ones only when the
    studio allows pickles), then the ControlNets the page offers (hub ids, the tiny models' builtins)."""
    names = list(a1111_names(config.controlnets_dir, config.allow_pickle))
    return [*names, *(name for name in KNOWN_MODELS if name not in names)]


def _slider(slider: Slider) -> dict[str, Any]:
    """The extension's slider JSON; whole steps where the bounds and default are whole (thresholds)."""
    whole = all(float(v).is_integer() for v in (slider.low, slider.high, slider.default))
    return {"name": slider.label, "value": slider.default, "min": slider.low, "max": slider.high,
            "step": 1 if whole else 0.01}


def _detail(pre: Preprocessor) -> dict[str, Any]:
    # "none" reads the picture as it is: no resolution (the extension hides that slider for it too).
    sliders = ([] if pre.name == "none" else [RESOLUTION_SLIDER]) + [_slider(s) for s in (pre.a, pre.b) if s]
    return {"model_free": False, "sliders": sliders}  # model_free: a module that needs no ControlNet (none here)


def module_list(alias_names: bool = False) -> dict[str, Any]:
    """GET /controlnet/module_list: the preprocessors by name (or by their titles: `alias_names`) and
    each one's sliders."""
    key = (lambda p: p.title) if alias_names else (lambda p: p.name)
    return {"module_list": [key(p) for p in PREPROCESSORS.values()],
            "module_detail": {key(p): _detail(p) for p in PREPROCESSORS.values()}}


def find_module(value: Any) -> Preprocessor:
    """A preprocessor by its name or title (module_list gives either)."""
    for pre in PREPROCESSORS.values():
        if value in (pre.name, pre.title):
            return pre
    raise UnknownName("controlnet_module", value, list(PREPROCESSORS))


def picture(field: str, value: Any) -> Image.Image:
    """A base64 picture, refused by its length and by its header's size before it is decoded
    (translate.decode_image), and by the unit pictures' limits (validation.image)."""
    return validation.image(field, translate.decode_image(field, value))


def _number(field: str, value: Any) -> float | None:
    if value is None or value == NONE:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(field, value, "a number (-1: the module's default)")
    return float(value)


def _resolution(value: Any) -> int:
    if value is None or value == NONE:
        return DEFAULT_RESOLUTION
    low, high = RESOLUTION_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidValue("controlnet_processor_res", value, f"{low} to {high} pixels (-1: {DEFAULT_RESOLUTION})")
    return int(value)


def map_size(image: Image.Image, resolution: int) -> tuple[int, int]:
    """The map's size: the picture's with its short side at `resolution`, multiples of 8 (the size
    the preprocessor reads it at: preprocessors.at_resolution), as the extension answers."""
    scale = resolution / min(image.size)
    width, height = (max(8, 8 * round(v * scale / 8)) for v in image.size)
    return width, height


def detect(body: Any) -> dict[str, Any]:
    """POST /controlnet/detect: each picture's control map by `controlnet_module`, as base64 PNGs."""
    if not isinstance(body, Mapping):
        raise InvalidValue("body", type(body).__name__, '{"controlnet_module", "controlnet_input_images": [...]}')
    # 1. Check everything before any picture is decoded.
    key = next((k for k in IMAGE_KEYS if body.get(k)), IMAGE_KEYS[0])
    given = body.get(key)
    if not isinstance(given, list) or not given:
        raise InvalidValue(key, given if not isinstance(given, list) else "[]",
                           f"a list of 1 to {MAX_DETECT_IMAGES} base64 pictures")
    if len(given) > MAX_DETECT_IMAGES:
        raise InvalidValue(key, f"{len(given)} pictures", f"at most {MAX_DETECT_IMAGES}")
    pre = find_module(body.get("controlnet_module", "none"))
    resolution = _resolution(body.get("controlnet_processor_res"))
    a, b = (_number(f"controlnet_threshold_{n}", body.get(f"controlnet_threshold_{n}")) for n in "ab")
    try:
        pre.check(a, b)
    except InvalidValue as exc:
        raise InvalidValue(f"controlnet_{exc.field}", exc.value, exc.allowed) from None
    # 2. Decode, then preprocess each at its own size.
    pictures = [picture(f"{key}[{i}]", value) for i, value in enumerate(given)]
    images = []
    for image in pictures:
        try:
            found = preprocess(image, pre.name, map_size(image, resolution), "Just resize", resolution, a, b)
        except InvalidValue as exc:  # the rules between the numbers (canny's low <= high)
            raise InvalidValue(f"controlnet_{exc.field}", exc.value, exc.allowed) from None
        images.append(translate.encode_picture(found))
    return {"images": images, "info": "Success"}
