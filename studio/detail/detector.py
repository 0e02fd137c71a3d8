"""Open-vocabulary detectors from `transformers`: OWLv2 (`Owlv2ForObjectDetection`) and OWL-ViT, both
Apache-2.0, loaded from a Hub id or a local folder, or the offline tiny one (`builtin:owlv2`).

Pictures go through the model's *Pil* image processor (its fast one needs torchvision, which this torch
build lacks); the text queries through its CLIP tokenizer. One detector stays loaded on the model's
device, the last one asked for. `Detector.detect` answers with boxes in the picture's pixels: the
overlapping boxes of one object reduced to the best (masks.suppress), the largest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from ..cache import LRUCache
from ..devices import DeviceChoice
from ..errors import InvalidValue, ModelLoadError
from ..hub import hub_or_cache, plain
from ..models import hub_id
from .masks import Box, clipped, largest, suppress
from .targets import TINY_DETECTOR

# model_type in the folder's config.json -> (model class, its Pil image processor class), from transformers
KINDS = {"owlv2": ("Owlv2ForObjectDetection", "Owlv2ImageProcessorPil"),
         "owlvit": ("OwlViTForObjectDetection", "OwlViTImageProcessorPil")}
HUB_FILES = ["*.json", "*.txt", "*.safetensors"]  # configs, the tokenizer, the weights (never a pickle)


@dataclass(eq=False)
class Detector:
    name: str
    model: Any  # Owlv2ForObjectDetection or OwlViTForObjectDetection, in eval mode
    image_processor: Any  # its Pil image processor: resizing, padding, post-processing
    tokenizer: Any  # CLIP's
    text_length: int  # tokens per query (OWL's position embeddings: 16)

    def to(self, device: DeviceChoice) -> "Detector":
        self.model.to(device=device.device, dtype=device.dtype)
        return self

    def detect(self, picture: Image.Image, queries: Sequence[str], threshold: float,
               count: int | None = None) -> list[Box]:
        """The regions (up to `count`) whose best query scores above `threshold`, the largest first."""
        import torch

        parameter = next(self.model.parameters())
        text = self.tokenizer(list(queries), padding="max_length", max_length=self.text_length, truncation=True,
                              return_tensors="pt")
        pixels = self.image_processor(images=picture.convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            output = self.model(input_ids=text["input_ids"].to(parameter.device),
                                attention_mask=text["attention_mask"].to(parameter.device),
                                pixel_values=pixels.to(device=parameter.device, dtype=parameter.dtype))
        output.logits, output.pred_boxes = output.logits.float(), output.pred_boxes.float()
        found = self.image_processor.post_process_object_detection(
            output, threshold=threshold, target_sizes=[(picture.height, picture.width)])[0]
        boxes = (clipped(corners, score, picture.size)
                 for corners, score in zip(found["boxes"].tolist(), found["scores"].tolist()))
        return largest(suppress([box for box in boxes if box is not None]), count)


# The last detector asked for, on its device (OWLv2 base: about 600 MB in fp32, 300 MB in half precision).
_LOADED: LRUCache[Detector] = LRUCache(1)


def load(ref: str, device: DeviceChoice) -> Detector:
    """The detector `ref` names (a Hub id, a folder, `builtin:owlv2`) on `device`, loaded once."""
    return _LOADED.get_or_load((ref, device.device, device.dtype_name), lambda: build(ref).to(device))[0]


def is_loaded(ref: str, device: DeviceChoice) -> bool:
    return _LOADED.peek((ref, device.device, device.dtype_name)) is not None


def build(ref: str) -> Detector:
    """The detector on the CPU as its files hold it (the tiny one built)."""
    if ref == TINY_DETECTOR:
        from .tiny import TEXT_LENGTH, build_tiny_owlv2

        return Detector(TINY_DETECTOR, *build_tiny_owlv2(), TEXT_LENGTH)
    if ref.startswith("builtin:"):
        raise InvalidValue("detailer_model", ref, f"{TINY_DETECTOR}, a Hub id (owner/name) or a folder")
    if hub_id(ref):
        return hub_or_cache(f"detailer_model: detector {ref}", lambda local: from_folder(ref, _snapshot(ref, local)))
    if not Path(ref).is_dir():
        raise ModelLoadError(f"detailer_model: detector {ref!r} is neither a Hub id (owner/name) nor a folder "
                             "with an OWLv2 or OWL-ViT model")
    return from_folder(ref, ref)


def _snapshot(ref: str, local: bool) -> str:
    """A Hub repository's folder (configs, tokenizer, safetensors weights), from the cache or downloaded."""
    from huggingface_hub import snapshot_download

    # Never from_pretrained(ref): a folder of that name in the working directory would win over the Hub.
    return snapshot_download(ref, allow_patterns=HUB_FILES, local_files_only=local)


def from_folder(name: str, folder: str) -> Detector:
    """An OWLv2 or OWL-ViT model from a folder of its files (config.json says which)."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"detailer_model: detector {name} has no readable config.json: {plain(exc)}") from exc
    kind = KINDS.get(config.model_type)
    if kind is None:
        raise ModelLoadError(f"detailer_model: detector {name} is a {config.model_type!r} model; the detailer runs "
                             f"{' or '.join(KINDS)} (open-vocabulary detection)")
    model_class, processor_class = getattr(transformers, kind[0]), getattr(transformers, kind[1])
    try:
        model = model_class.from_pretrained(folder, use_safetensors=True).eval()
        processor = processor_class.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"detailer_model: detector {name} could not be loaded: {plain(exc)}") from exc
    return Detector(name, model, processor, tokenizer, int(config.text_config.max_position_embeddings))

