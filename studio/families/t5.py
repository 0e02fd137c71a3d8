"""Prompt weighting on a T5 encoder (FLUX, SD3): one sequence of up to `max_tokens` tokens, no chunks.

A token of weight w is moved from the empty prompt's encoding e towards its own z by w
(e + (z - e) * w), as ComfyUI and compel do on T5, so weight 1 changes nothing; an unweighted part
is encoded by the pipeline's own `_get_t5_prompt_embeds`, exactly as the pipeline would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch
    from compel.prompt_parser import FlattenedPrompt


def first_of(part: Any) -> FlattenedPrompt:
    """A blend's first prompt (what plain text and token counts read), or the part itself."""
    from compel.prompt_parser import Blend

    return part.prompts[0] if isinstance(part, Blend) else part


def plain_text(parsed: Any) -> str:
    """The prompt's words without weights or syntax (what pooled CLIP embeddings read)."""
    from ..conditioning import part_fragments

    parts = ["".join(part_fragments(first_of(part))[0]).strip() for part in parsed.conjunction.prompts]
    return " ".join(p for p in parts if p)


class T5Weighting:
    """Weighted T5 encodings of prompt parts. `plain(text)` is the pipeline's own T5 encoding (padded
    to max_tokens); `encoder` / `tokenizer` are its T5 modules."""

    def __init__(self, plain: Callable[[str], torch.Tensor], encoder: Any, tokenizer: Any, max_tokens: int):
        self.plain, self.encoder, self.tokenizer, self.max_tokens = plain, encoder, tokenizer, max_tokens
        self._empty: torch.Tensor | None = None

    def empty(self) -> torch.Tensor:
        if self._empty is None:
            self._empty = self.plain("")
        return self._empty

    def part(self, part: FlattenedPrompt) -> torch.Tensor:
        import torch

        from ..conditioning import between_chunks, part_fragments

        between_chunks()  # a Stop lands between AND / BREAK parts, each a pass through T5
        texts, weights = part_fragments(part)
        if all(w == 1.0 for w in weights) or self.encoder is None:  # no T5 (SD3 without it): zeros
            return self.plain("".join(texts))
        tokenizer = self.tokenizer
        ids: list[int] = []
        mults: list[float] = []
        for text, weight in zip(texts, weights):
            piece = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
            ids += piece
            mults += [weight] * len(piece)
        ids, mults = ids[: self.max_tokens - 1] + [tokenizer.eos_token_id], mults[: self.max_tokens - 1] + [1.0]
        padding = self.max_tokens - len(ids)
        ids += [tokenizer.pad_token_id] * padding
        mults += [1.0] * padding
        z = self.encoder(torch.tensor([ids], device=self.encoder.device), output_hidden_states=False)[0]
        z = z.to(dtype=self.encoder.dtype)
        empty = self.empty()
        weight = torch.tensor(mults, device=z.device, dtype=z.dtype)[None, :, None]
        return empty + (z - empty) * weight

    def blend_or_part(self, part: Any, encode: Callable[[FlattenedPrompt], torch.Tensor]) -> torch.Tensor:
        """A blend is the weighted mean of its prompts' encodings; a plain part is encoded as is."""
        from compel.prompt_parser import Blend

        if not isinstance(part, Blend):
            return encode(part)
        total = sum(part.weights) or 1.0
        return sum(w * encode(p) for w, p in zip(part.weights, part.prompts)) / total



def count_tokens(tokenizer: Any, parsed: Any) -> int:
    """T5 tokens of the prompt, the end token included."""
    from ..conditioning import part_fragments

    return 1 + sum(len(tokenizer(t, add_special_tokens=False)["input_ids"])
                   for part in parsed.conjunction.prompts for t in part_fragments(first_of(part))[0])


def toward_empty(embeds: torch.Tensor, empty: Callable[[], torch.Tensor], weight: float) -> torch.Tensor:
    """An AND part's weight, by the same rule as a token's (the empty encoding only when needed)."""
    return embeds if weight == 1 else empty() + (embeds - empty()) * weight
