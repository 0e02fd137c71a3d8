"""Prompts read by an LLM text encoder (Z-Image's Qwen3, FLUX.2 Klein's Qwen3, Qwen-Image's Qwen2.5-VL).

An LLM does not take token weights (ComfyUI turns weighting off for them too): the prompt's syntax is
removed and its plain words are encoded exactly as the family's pipeline encodes a prompt (its own
method, so the embeddings are the pipeline's bit for bit); a prompt that had weights says they were
ignored (`weighted=False` on the family). `AND` parts are read as one text. Each family gives the
pipeline call that encodes one text (`encode(pipe, text)` -> its embeddings) and how the chat
template is applied for the token count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .t5 import plain_text

if TYPE_CHECKING:
    from ..conditioning import Conditioning

# (pipe, plain text, reference pictures) -> its embeddings, or (embeddings, mask), as the pipeline makes them.
# The pictures are an edit's (Qwen-Image-Edit's encoder sees them); () for every other encoding.
EncodeText = Callable[[Any, str, tuple], Any]


class LLMPromptEncoder:
    """Parsed prompts -> the LLM's embeddings of their plain text (`encode(pipe, text)`)."""

    def __init__(self, pipe: Any, clip_skip: int = 1, encode: EncodeText | None = None):
        if encode is None:
            raise TypeError("LLMPromptEncoder needs the family's encode(pipe, text)")
        self.pipe, self._encode = pipe, encode

    def encode(self, parsed: Any, pictures: tuple = ()) -> Conditioning:
        return self._conditioning(plain_text(parsed), pictures)

    def empty(self) -> Conditioning:
        return self._conditioning("", ())

    def _conditioning(self, text: str, pictures: tuple) -> Conditioning:
        import torch

        from ..conditioning import Conditioning

        with torch.no_grad():
            made = self._encode(self.pipe, text, pictures)
        return Conditioning(made[0], mask=made[1]) if isinstance(made, tuple) else Conditioning(made)


def encoder_for(encode: EncodeText) -> Callable[[Any, int], LLMPromptEncoder]:
    """A family's prompt_encoder: (pipe, clip_skip) -> an LLMPromptEncoder with its encode."""
    return lambda pipe, clip_skip=1: LLMPromptEncoder(pipe, clip_skip, encode)


def chat_token_counts(thinking: bool) -> Callable[[Any, Any], list[int]]:
    """A family's count_tokens: the plain text in the tokenizer's chat format, as its pipeline wraps it."""

    def count(pipe: Any, parsed: Any) -> list[int]:
        wrapped = pipe.tokenizer.apply_chat_template([{"role": "user", "content": plain_text(parsed)}], tokenize=False,
                                                     add_generation_prompt=True, enable_thinking=thinking)
        return [len(pipe.tokenizer(wrapped)["input_ids"])]

    return count
