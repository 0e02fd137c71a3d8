"""The model family registry: one entry per architecture (`sd.py`: SD 1.x/2.x and SDXL; `sd3.py`: SD3 / 3.5; `flux.py`: FLUX.1; `zimage.py`: Z-Image; `klein.py`: FLUX.2 Klein;
`kontext.py`: FLUX.1 Kontext; `qwen.py`: Qwen-Image and Qwen-Image-Edit; `qwen21.py`: Qwen-Image 2.1).

A family says which diffusers pipelines run it, how its prompts are encoded, its latent format
(channels, scale, shift, packing, preview factors, tiny decoder), its samplers, its size rule and
its offline tiny builder. Adding a family is one entry here plus its prompt encoder.
"""

from __future__ import annotations

from typing import Iterable

from ..errors import UnknownName
from .base import Family, LatentFormat, PreviewData, SizeRule
from .flux import FLUX
from .klein import KLEIN
from .kontext import KONTEXT
from .qwen import QWEN_EDIT, QWEN_IMAGE
from .qwen21 import QWEN_IMAGE21
from .sd import SD15, SDXL
from .sd3 import SD3
from .zimage import ZIMAGE

FAMILIES: dict[str, Family] = {f.name: f for f in (SD15, SDXL, SD3, FLUX, ZIMAGE, KLEIN, KONTEXT, QWEN_IMAGE,
                                                   QWEN_EDIT, QWEN_IMAGE21)}
# Every family's latent format by name (`latents.py`'s, and any a family module keeps with it: Qwen-Image 2.1's)
LATENT_FORMATS: dict[str, LatentFormat] = {f.latent.name: f.latent for f in FAMILIES.values()}

__all__ = ["FAMILIES", "Family", "LatentFormat", "PreviewData", "SizeRule", "LATENT_FORMATS", "family",
           "family_of_pipeline", "family_of_checkpoint"]


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise UnknownName("family", name, list(FAMILIES))
    return FAMILIES[name]


def family_of_pipeline(class_name: str) -> Family | None:
    """The family whose text-to-image or inpainting-model pipeline class this is."""
    for fam in FAMILIES.values():
        if class_name in (fam.pipeline, fam.inpaint_model_pipeline):
            return fam
    return None


def family_of_checkpoint(keys: Iterable[str]) -> Family | None:
    """The family of a single-file checkpoint, from its tensor names."""
    names = list(keys)
    for fam in sorted(FAMILIES.values(), key=lambda f: f.detect_order):
        if any(k.startswith(fam.checkpoint_keys) for k in names):
            return fam
    return None
