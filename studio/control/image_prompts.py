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
from ..field_spec import A1111, Context, Field, Record, part
from . import units
from .folder import HASH, family_by_name  # A1111 writes "ip-adapter_sd15 [6a3f6166]"
from .units import ControlUnit

MAX_PROMPTS = 4  # Fooocus offers four
WEIGHT_RANGE = (0.0, 2.0)
MODULE_PREFIX = "ip-adapter"  # A1111's IP-Adapter preprocessors all start so

# A1111's preprocessor for the IP-Adapters it knows (which CLIP vision model encodes the picture);
# any other adapter is written with its automatic one.
A1111_MODULES = {"ip-adapter_sdxl": "ip-adapter_clip_g"}
CLIP_H = ("ip-adapter_sd15", "ip-adapter_sd15_light", "ip-adapter-plus_sd15", "ip-adapter-plus-face_sd15",
          "ip-adapter_sdxl_vit-h", "ip-adapter-plus_sdxl_vit-h", "ip-adapter-plus-face_sdxl_vit-h")
A1111_MODULES.update(dict.fromkeys(CLIP_H, "ip-adapter_clip_h"))


def _model(f: Field, value: Any, context: Context) -> str:
    model = validation.text(f.name, value).strip()
    if not model:
        raise InvalidValue(f.name, "", _to_pick(context.source))
    return model


def _to_pick(source: Any) -> str:
    """What to pick: the adapters made for the model's family (the tiny model's own first)."""
    family = source.family
    names = [name for name in (*A1111_MODULES, "XLabs-AI/flux-ip-adapter") if family_by_name(name) == family]
    if not names:
        return "an IP-Adapter made for the model (ip-adapter_sd15, ip-adapter_sdxl, XLabs-AI/flux-ip-adapter...)"
    if source.kind == "builtin":
        names.insert(0, f"builtin:ip-adapter/{family}")
    return f"an IP-Adapter made for {family} models: {', '.join(names)}, or a .safetensors / .bin file"


@dataclass(frozen=True)
class ImagePrompt:
    """One image prompt: its fields declared once here; PROMPT below derives the rest."""

    image: Any = part("image", None, "Reference picture (a picture here turns it on)", check=units.picture_check,
                      widget="image",
                      a1111=A1111("image", converted=True, note="base64, in a unit of module ip-adapter*"))
    model: str = part("text", "", "IP-Adapter", check=_model, widget="dropdown",
                      help="made for the model's family; or a .safetensors / .bin file",
                      page={"allow_custom_value": True, "value": None}, a1111=A1111("model"))
    weight: float = part("float", 1.0, "Weight", range=WEIGHT_RANGE, widget="slider", step=0.05, a1111=A1111("weight"))

    def active(self) -> bool:
        return self.weight > 0

    def record(self) -> dict[str, Any]:
        return PROMPT.record(self)

    def infotext(self) -> str:
        """As A1111's extension writes an IP-Adapter unit."""
        return ControlUnit(module=A1111_MODULES.get(self.model, "ip-adapter-auto"), model=self.model,
                           weight=self.weight).infotext()


PROMPT = Record(ImagePrompt, MAX_PROMPTS, "image prompt")
FIELDS = tuple(PROMPT.fields.by_name)


def parse_prompts(value: Any, context: Context) -> tuple[ImagePrompt, ...]:
    return PROMPT.parse_all("image_prompts", value, context)


def from_unit(unit: Mapping[str, Any]) -> dict[str, Any]:
    """An image prompt's settings from an IP-Adapter `ControlNet N` unit (its picture is never in a PNG)."""
    return {"model": HASH.sub("", unit["model"]), "weight": unit.get("weight", 1.0)}
