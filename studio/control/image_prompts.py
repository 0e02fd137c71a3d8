"""Image prompts (IP-Adapter) as a request holds them: a reference picture, the IP-Adapter that reads
it and a weight each; checked, recorded without the picture, and written in the infotext as A1111's
ControlNet extension writes an IP-Adapter unit (a `ControlNet N` line whose module is an
`ip-adapter_*` one), so its PNGs and ours read back the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import validation
from ..errors import InvalidValue
from .folder import HASH  # A1111 writes "ip-adapter_sd15 [6a3f6166]"
from .units import ControlUnit

MAX_PROMPTS = 4  # Fooocus offers four
WEIGHT_RANGE = (0.0, 2.0)
MODULE_PREFIX = "ip-adapter"  # A1111's IP-Adapter preprocessors all start so
FIELDS = ("image", "model", "weight")

# A1111's preprocessor for the IP-Adapters it knows (which CLIP vision model encodes the picture);
# any other adapter is written with its automatic one.
A1111_MODULES = {"ip-adapter_sdxl": "ip-adapter_clip_g"}
CLIP_H = ("ip-adapter_sd15", "ip-adapter_sd15_light", "ip-adapter-plus_sd15", "ip-adapter-plus-face_sd15",
          "ip-adapter_sdxl_vit-h", "ip-adapter-plus_sdxl_vit-h", "ip-adapter-plus-face_sdxl_vit-h")
A1111_MODULES.update(dict.fromkeys(CLIP_H, "ip-adapter_clip_h"))


@dataclass(frozen=True)
class ImagePrompt:
    image: Any = None  # the reference picture
    model: str = ""  # the IP-Adapter: a known name, a .safetensors / .bin file or builtin:ip-adapter/<family>
    weight: float = 1.0

    def active(self) -> bool:
        return self.weight > 0

    def record(self) -> dict[str, Any]:
        """JSON-safe, the picture described (never stored, as the request's input images)."""
        image = None if self.image is None else {"width": self.image.width, "height": self.image.height,
                                                 "stored": False}
        return {"image": image, "model": self.model, "weight": self.weight}

    def infotext(self) -> str:
        """As A1111's extension writes an IP-Adapter unit."""
        return ControlUnit(module=A1111_MODULES.get(self.model, "ip-adapter-auto"), model=self.model,
                           weight=self.weight).infotext()


def parse_prompt(value: Any, index: int) -> ImagePrompt:
    where = f"image_prompts[{index}]"
    if isinstance(value, ImagePrompt):
        value = value.record() | {"image": value.image}
    if not isinstance(value, Mapping):
        raise InvalidValue(where, type(value).__name__, "an image prompt: {image, model, weight}")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise InvalidValue(f"{where}.{unknown[0]}", value[unknown[0]], "one of " + ", ".join(FIELDS))
    image = value.get("image")
    model = validation.text(f"{where}.model", value.get("model") or "").strip()
    if not model:
        raise InvalidValue(f"{where}.model", "", "an IP-Adapter: " + ", ".join(sorted(A1111_MODULES)) +
                           ", XLabs-AI/flux-ip-adapter, a .safetensors or .bin file, or builtin:ip-adapter/sd15, "
                           "sdxl or flux")
    return ImagePrompt(
        # A PNG's record describes the picture it never stored: it has to be given again.
        image=None if image is None or isinstance(image, dict) else validation.image(f"{where}.image", image),
        model=model,
        weight=validation.float_in_range(f"{where}.weight", 1.0 if value.get("weight") is None else value["weight"],
                                         *WEIGHT_RANGE))


def parse_prompts(value: Any) -> tuple[ImagePrompt, ...]:
    return validation.items("image_prompts", value, MAX_PROMPTS, "image prompts", parse_prompt)


def from_unit(unit: Mapping[str, Any]) -> dict[str, Any]:
    """An image prompt's settings from an IP-Adapter `ControlNet N` unit (its picture is never in a PNG)."""
    return {"model": HASH.sub("", unit["model"]), "weight": unit["weight"]}
