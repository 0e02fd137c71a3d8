"""Face restoration's settings (A1111's "Restore faces"), declared once: their block of the field table
(studio/fields.py adds `FIELDS`), its request rule and its cost. Light: no torch here.

A1111 writes `Face restoration: GFPGAN` (the restorer's name) after txt2img / img2img; here the value is
the face restorer's name, a file of the upscalers folder, or `GFPGAN` for the default (the folder's first
face restoration model: every one that runs here is a GFPGAN). Its visibility, detector and confidence are
written only where they are not their defaults. The Upscale task (A1111's Extras) writes A1111's
`GFPGAN visibility` and `Postprocess face restorer` instead (studio/tasks/upscale.py).
"""

from __future__ import annotations

from typing import Any, Mapping

from .. import validation
from ..detail.targets import DEFAULT_DETECTOR, DETECTORS, TINY_DETECTOR
from ..errors import InvalidValue
from ..field_spec import A1111, MISSING, Context, Field, Infotext, number_text
from .faces import MAX_FACES, TASKS, on

KEY = "Face restoration"
A1111_NAME = "GFPGAN"  # A1111's value of KEY: here the folder's first face restoration model
# A GFPGANv1Clean forward at 512 px (86M parameters) is 0.40 TFLOP (torch's FlopCounterMode); it took
# 5.6 s on one core of the dev CPU. ESRGAN's measured 8.2 megapixel-steps for 33 TFLOP make a megapixel-step
# about 4 TFLOP: 0.1 a face. Doubled, as StyleGAN's modulated (grouped) convolutions run at about half
# the rate of plain ones on a CPU.
FACE_COST = 0.2
DETECTION_COST = 0.5  # as the detailer's (studio/tasks/detail.py): OWLv2 base over a 960 px square


def _generation(request: Any) -> bool:
    """Written on the generation's line (the upscale task writes A1111's Extras keys)."""
    return on(request) and request.task != "upscale"


def _check_restorer(f: Field, value: Any, context: Context) -> str:
    from . import builtin, check_name

    text = validation.text(f.name, value).strip()
    if not text or text.casefold() == A1111_NAME.casefold():
        return ""
    if builtin(text) is not None:
        raise InvalidValue(f.name, text, "a face restoration model (GFPGAN) of the upscalers folder, by file name")
    return check_name(f.name, text)


def _check_detector(f: Field, value: Any, context: Context) -> str:
    text = validation.text(f.name, value).strip()
    if not text or "\n" in text or len(text) > 500 or (text.startswith("builtin:") and text != TINY_DETECTOR):
        raise InvalidValue(f.name, value, f"a detector: {', '.join(DETECTORS)}, another OWLv2 / OWL-ViT Hub id "
                                          "(owner/name) or a folder")
    return text


def _read(key: str, parse: Any, absent: Any) -> Any:
    def read(params: Mapping[str, str]) -> Any:
        if KEY not in params:
            return MISSING
        return parse(params[key]) if key in params else absent
    return read


def _api(note: str) -> A1111:
    return A1111(None, tasks=TASKS, note=note)


FIELDS: tuple[Field, ...] = (
    Field("restore_faces", "bool", False, "Restore faces", widget="checkbox", tasks=TASKS,
          help="GFPGAN over each face the detector finds (a face restoration model of the upscalers folder)",
          infotext=(Infotext(KEY, 65, write=lambda r, i: (r.face_restorer or A1111_NAME) if _generation(r) else None,
                             read=lambda p: KEY in p),),
          a1111=_api("gfpgan_visibility of /sdapi/v1/extra-single-image; txt2img's restore_faces is reported "
                     "as ignored there")),
    Field("face_restorer", "text", "", "Face restorer", widget="dropdown", tasks=TASKS, check=_check_restorer,
          page={"allow_custom_value": True},
          help="a face restoration model of the upscalers folder (GFPGAN); empty: the folder's first",
          infotext=(Infotext(None, read=lambda p: MISSING if KEY not in p or p[KEY].strip().casefold() ==
                             A1111_NAME.casefold() else p[KEY].strip(), note=KEY),),
          a1111=_api("the face restorer: the folder's first face restoration model")),
    Field("face_restore_visibility", "float", 1.0, "Face restoration visibility", range=(0.0, 1.0),
          widget="slider", step=0.05, tasks=TASKS, help="how much of the restored face is blended in",
          infotext=(Infotext("Face restoration visibility", 66, format=number_text,
                             when=lambda r: _generation(r) and r.face_restore_visibility < 1,
                             read=_read("Face restoration visibility", float, 1.0)),),
          a1111=_api("gfpgan_visibility of /sdapi/v1/extra-single-image")),
    Field("face_detector", "text", DEFAULT_DETECTOR, "Face detector", check=_check_detector, widget="dropdown",
          choices=DETECTORS, tasks=TASKS, page={"allow_custom_value": True},
          help=f"an OWLv2 or OWL-ViT model that finds the faces; {TINY_DETECTOR}: offline, random boxes",
          infotext=(Infotext("Face restoration detector", 67,
                             when=lambda r: _generation(r) and r.face_detector != DEFAULT_DETECTOR,
                             read=_read("Face restoration detector", str.strip, DEFAULT_DETECTOR)),),
          a1111=_api("the detector: OWLv2 base")),
    Field("face_confidence", "float", 0.3, "Face detection confidence", range=(0.0, 1.0), widget="slider",
          step=0.01, tasks=TASKS, help="faces scoring above it are restored",
          infotext=(Infotext("Face restoration confidence", 68, format=number_text,
                             when=lambda r: _generation(r) and r.face_confidence != 0.3,
                             read=_read("Face restoration confidence", float, 0.3)),),
          a1111=_api("the detection confidence: 0.3")),
)


def check(request: Any, context: Context) -> None:
    """A request rule: face restoration runs after text or image to image, and in an upscale."""
    if request.restore_faces and request.task not in TASKS:
        raise InvalidValue("restore_faces", True, f"off for task {request.task}: it runs after text to image or "
                                                  "image to image, and in an upscale (tasks "
                                                  f"{', '.join(TASKS)})")


def cost(request: Any) -> float:
    """Megapixel-steps: each picture's detection and MAX_FACES faces of 512 px through the restorer."""
    if not on(request) or request.face_restore_visibility <= 0:
        return 0.0
    pictures = 1 if request.task == "upscale" else request.batch_size
    return pictures * (DETECTION_COST + MAX_FACES * FACE_COST)
