"""Embedding vectors put into a CLIP text encoder's input, without changing the encoder.

The prompt's embedding tokens have negative ids (vocabulary.py). `WithVectors` hands the encoder
those ids as token 0 (A1111 does the same, so the EOS pooling still finds the end) and, through a
forward hook on the token-embedding layer, swaps the vectors in at those places. The hook is
installed once per layer and does nothing unless a `WithVectors` call on this thread set what to
swap (a context variable): a shared pipeline encodes plain prompts exactly as without it.
"""

from __future__ import annotations

import contextvars
import weakref
from typing import Any

import torch

from ..wrapped_encoder import EncoderWrapper

# (the token-embedding layer, which places of the ids, the vectors for them) during one encoder call
_SWAP: contextvars.ContextVar[tuple[Any, torch.Tensor, torch.Tensor] | None] = \
    contextvars.ContextVar("embedding_swap", default=None)
_HOOKED: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()


def token_embedding(encoder: Any) -> torch.nn.Module:
    """The token-embedding layer of a CLIP text encoder, through wrappers that keep it as `.inner`."""
    while not hasattr(encoder, "get_input_embeddings") and hasattr(encoder, "inner"):
        encoder = encoder.inner
    return encoder.get_input_embeddings()


def _swap(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
    swap = _SWAP.get()
    if swap is None or swap[0] is not module or output.shape[:-1] != swap[1].shape:
        return None
    output = output.clone()
    output[swap[1]] = swap[2].to(output.device, output.dtype)
    return output


def _hook(layer: torch.nn.Module) -> None:
    if layer not in _HOOKED:
        layer.register_forward_hook(_swap)
        _HOOKED.add(layer)


class WithVectors(EncoderWrapper):
    """A text encoder that reads negative token ids as rows of `vectors` (n-th row: id -1 - n)."""

    def __init__(self, text_encoder: Any, vectors: torch.Tensor):
        super().__init__(text_encoder)
        self.vectors = vectors
        self.layer = token_embedding(text_encoder)
        _hook(self.layer)

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False, return_dict=True):
        places = input_ids < 0
        if not bool(places.any()):
            return self.inner(input_ids, attention_mask, output_hidden_states=output_hidden_states,
                              return_dict=return_dict)
        rows = self.vectors[(-1 - input_ids[places]).to("cpu")]
        token = _SWAP.set((self.layer, places, rows))
        try:
            return self.inner(input_ids.clamp(min=0), attention_mask, output_hidden_states=output_hidden_states,
                              return_dict=return_dict)
        finally:
            _SWAP.reset(token)
