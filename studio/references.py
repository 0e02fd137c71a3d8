"""Reference pictures of an edit by instruction ("put the cat of picture 2 on the sofa of picture 1"):
each a Record item (`{"image": ...}`), checked like every input picture, never stored. The infotext
names each by a short hash of its pixels and its size (`References: "1a2b3c4d5e 1024x768, ..."`), so
a PNG says which pictures it was made from; PNG Info restores the rest, and the same pictures given
again make the same image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .control.units import picture_check
from .errors import InvalidValue
from .field_spec import A1111, Context, Record, part

MAX_REFERENCES = 4  # the most any family reads (FLUX.2 Klein); each family says its own (Family.references)
HASH_LENGTH = 10  # hex digits, as A1111's short model hashes
READ_PIXELS = 1024 * 1024  # the edit pipelines shrink a larger reference to about a megapixel
# What the edit pipelines can read (FLUX.2's refuses less, deep inside a run): a stranger's 8 x 65000
# strip is refused here by name, before any model loads.
MIN_SIDE = 64
MAX_ASPECT = 8


@dataclass(frozen=True)
class Reference:
    """One reference picture: its fields declared once here; REFERENCE below derives the rest."""

    image: Any = part("image", None, "Reference picture", check=picture_check, widget="image",
                      a1111=A1111("image", converted=True, note="img2img's init_images on an edit model"))


def _finish(item: Reference, where: str, context: Context) -> Reference:
    picture = item.image
    if picture is None:  # a PNG's record describes the picture: it must be given again
        raise InvalidValue(f"{where}.image", None, "a picture (references are never stored: give it again)")
    short, long = sorted(picture.size)
    if short < MIN_SIDE or long > MAX_ASPECT * short:
        raise InvalidValue(f"{where}.image", f"{picture.width}x{picture.height}",
                           f"a picture at least {MIN_SIDE} px on each side, at most {MAX_ASPECT}:1")
    return item


REFERENCE = Record(Reference, MAX_REFERENCES, "reference picture", finish=_finish)


def parse_references(value: Any, context: Context) -> tuple[Reference, ...]:
    return REFERENCE.parse_all("references", value, context)


def digest(picture: Any) -> str:
    """A short hash of a picture's pixels (its mode and size included): the same picture, the same name."""
    header = f"{picture.mode} {picture.width}x{picture.height}".encode()
    return hashlib.sha256(header + picture.tobytes()).hexdigest()[:HASH_LENGTH]


def infotext(references: tuple[Reference, ...]) -> str:
    return ", ".join(f"{digest(r.image)} {r.image.width}x{r.image.height}" for r in references)


def fitted_size(picture: Any, area: int, multiple: int, low: int, high: int) -> tuple[int, int]:
    """The output size an edit takes from its first reference, as the edit pipelines size theirs: the
    picture's aspect at no more than `area` pixels (the model's default size squared), each side a
    multiple of `multiple` within low..high."""
    width, height = picture.width, picture.height
    scale = min(1.0, (area / (width * height)) ** 0.5)

    def side(value: float) -> int:
        return max(low, min(high, int(value * scale) // multiple * multiple))

    return side(width), side(height)
