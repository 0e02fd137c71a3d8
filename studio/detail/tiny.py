"""The offline tiny OWLv2 (`builtin:owlv2`): a random-weight open-vocabulary detector with the real
model's code paths (its tokenizer, both towers, the class and box heads, the image processor's padding and
post-processing), built in well under a second. Its scores are random, so its boxes are: tests ask with a
low confidence to get boxes, the same ones every time.

Its box head's last layer is zero, so each box is the image patch it was predicted from (1/8 of the
picture's longer side, a side), as a trained model's boxes stay near their objects: random boxes are then
small, separate regions rather than thin slivers across the picture.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Owlv2Config, Owlv2ForObjectDetection
from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

from ..tiny import TINY_SEED, tiny_tokenizer

IMAGE_SIZE, PATCH = 64, 8  # 8x8 patches: 64 candidate boxes
TEXT_LENGTH = 16  # OWL's query length
START, END = 512, 513  # the generated tokenizer's <|startoftext|> and <|endoftext|> (studio/tiny.py)


def tiny_owlv2_config() -> Owlv2Config:
    text = dict(vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=TEXT_LENGTH, bos_token_id=START, eos_token_id=END, pad_token_id=END)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  image_size=IMAGE_SIZE, patch_size=PATCH)
    return Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)


def build_tiny_owlv2() -> tuple[Owlv2ForObjectDetection, Owlv2ImageProcessorPil, Any]:
    """The tiny detector's model (on the CPU, fp32, the same weights every time), image processor and tokenizer
    (detector.build makes them a Detector reading TEXT_LENGTH tokens a query)."""
    with torch.random.fork_rng(devices=[]):  # never disturb the caller's global RNG
        torch.manual_seed(TINY_SEED)
        model = Owlv2ForObjectDetection(tiny_owlv2_config()).eval()
    with torch.no_grad():
        model.box_head.dense2.weight.zero_()  # each box is its patch's: random scores pick among them
        model.box_head.dense2.bias.zero_()
    processor = Owlv2ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return model, processor, tiny_tokenizer()
