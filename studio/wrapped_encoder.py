"""A text encoder seen through a wrapper, for the prompt encoders (studio/conditioning.py) and the
textual-inversion vectors (studio/embeddings/inject.py)."""

from __future__ import annotations

from typing import Any

import torch


class EncoderWrapper(torch.nn.Module):
    """A text encoder seen through a wrapper (clip skip, textual-inversion vectors): compel and the
    pipelines read its device and dtype as the encoder's own."""

    def __init__(self, text_encoder: Any):
        super().__init__()
        self.inner = text_encoder

    @property
    def device(self) -> torch.device:
        return self.inner.device

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype
