"""What the detailer looks for and with which detector: plain data, light to import (the field table reads it).

A target is a text query for an open-vocabulary detector (OWLv2, OWL-ViT); a region's score is its best
query's. ADetailer names a YOLO model file instead (`face_yolov8n.pt`): `target_of` reads the target
from such a name, so ADetailer's infotexts and API calls find the same kind of region here.
"""

from __future__ import annotations

DEFAULT_DETECTOR = "google/owlv2-base-patch16-ensemble"  # Apache-2.0, about 600 MB in fp32
TINY_DETECTOR = "builtin:owlv2"  # offline random weights (tests, demos): its boxes are random too
DETECTORS = (DEFAULT_DETECTOR, "google/owlv2-large-patch14-ensemble", "google/owlvit-base-patch32", TINY_DETECTOR)
TARGETS: dict[str, tuple[str, ...]] = {
    "face": ("a human face", "a face"),
    "hand": ("a human hand", "a hand"),
    "person": ("a person",),
}
DETAIL_TASKS = ("txt2img", "img2img")  # the tasks whose pictures it repaints (a post-pass, like hires fix)


def target_of(model_name: str) -> str | None:
    """The target an ADetailer model name stands for (`face_yolov8n.pt`, `mediapipe_face_full`,
    `hand_yolov9c.pt`, `person_yolov8s-seg.pt`), or None (a YOLO-World model: its classes say)."""
    name = model_name.strip().lower().removeprefix("mediapipe_")
    return next((target for target in TARGETS if name.startswith(target)), None)


def is_detector_name(value: str) -> bool:
    """Whether an `ADetailer model` value names a detector of ours (a hub id, a folder, a builtin), not one
    of ADetailer's YOLO or MediaPipe models."""
    text = value.strip()
    lowered = text.lower()
    if lowered.endswith((".pt", ".pth", ".onnx")) or lowered.startswith("mediapipe"):
        return False
    return text in DETECTORS or text.startswith("builtin:") or "/" in text or "\\" in text
