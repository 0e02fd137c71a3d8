"""Prompt encoding: compel's structured prompts -> text-encoder embeddings, A1111-style chunking.

compel's `EmbeddingsProvider` does the encoding and the weighting (each token's embedding is moved
away from the empty prompt's by its weight). What is ours is how long prompts are cut: as A1111
does, into chunks of 75 tokens, a chunk ending after the last comma when one lies within the last
20 tokens, each chunk wrapped in start/end tokens and encoded on its own; `BREAK` (and compel's
`.and()`) starts a new chunk. Nothing is truncated, so text past the first chunk changes the image.
Which encoders a model family uses, and which of their layers, is the family's choice (`studio/families/`).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from compel import Compel, ReturnedEmbeddingsType
from compel.prompt_parser import Blend, FlattenedPrompt

from . import prompts
from .prompts import CHUNK_TOKENS, ParsedPrompt
from .wrapped_encoder import EncoderWrapper

COMMA_BACKTRACK = 20  # A1111's comma_padding_backtrack


@dataclass(frozen=True)
class EncodingScope:
    """What the job that is encoding wants of the encoders: `check` raises its cancellation when Stop
    was pressed (the engine's own, so a Stop during encoding ends the job as one during the steps
    does); `fields` names the request field each parsed prompt came from, for a refusal."""

    check: Callable[[], None]
    fields: tuple[tuple[Any, str], ...] = ()

    def field_of(self, parsed: Any) -> str:
        return next((name for p, name in self.fields if p is parsed), "prompt")


# Set by the engine around one job's encoding (a context variable, not a global: each device thread
# and each job sees its own); the encoders' signatures, and the families' cached encode callbacks,
# stay as they are.
_SCOPE: contextvars.ContextVar[EncodingScope | None] = contextvars.ContextVar("encoding_scope", default=None)


@contextlib.contextmanager
def encoding(check: Callable[[], None], fields: Sequence[tuple[Any, str]] = ()) -> Iterator[None]:
    """Encoders called inside check `check` between chunks and name refusals by `fields`."""
    token = _SCOPE.set(EncodingScope(check, tuple(fields)))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def between_chunks() -> None:
    """Where a Stop lands during encoding: before each chunk (or part) goes through an encoder."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.check()


def check_chunks(parsed: Any, chunks: int) -> None:
    """Refuse a prompt of more than MAX_PROMPT_CHUNKS chunks, before any of it is encoded. The request
    was estimated without a tokenizer (`prompts.estimate_chunks`); this is the exact count."""
    scope = _SCOPE.get()
    prompts.check_chunks(scope.field_of(parsed) if scope is not None else "prompt", chunks)


@dataclass(frozen=True, eq=False)
class Conditioning:
    embeds: torch.Tensor  # (1, 77 * chunks, dim)
    pooled: torch.Tensor | None = None  # (1, dim) for SDXL
    mask: torch.Tensor | None = None  # (1, tokens): which tokens count (Qwen-Image's; None: all of them)

    @property
    def chunks(self) -> int:
        return self.embeds.shape[1] // (CHUNK_TOKENS + 2)


def split_chunks(
    token_ids: Sequence[Sequence[int]], weights: Sequence[float], comma_id: int | None
) -> list[tuple[list[int], list[float]]]:
    """A1111's chunking of one prompt part: per-fragment token ids + weights -> <=75-token chunks."""
    chunks: list[tuple[list[int], list[float]]] = []
    tokens: list[int] = []
    mults: list[float] = []
    last_comma = -1
    for ids, weight in zip(token_ids, weights):
        for token in ids:
            if token == comma_id:
                last_comma = len(tokens)
            elif len(tokens) == CHUNK_TOKENS and last_comma != -1 and len(tokens) - last_comma <= COMMA_BACKTRACK:
                cut = last_comma + 1
                chunks.append((tokens[:cut], mults[:cut]))
                tokens, mults, last_comma = tokens[cut:], mults[cut:], -1
            if len(tokens) == CHUNK_TOKENS:
                chunks.append((tokens, mults))
                tokens, mults, last_comma = [], [], -1
            tokens.append(token)
            mults.append(float(weight))
    if tokens or not chunks:
        chunks.append((tokens, mults))
    return chunks


def part_fragments(part: FlattenedPrompt) -> tuple[list[str], list[float]]:
    return [f.text for f in part.children], [f.weight for f in part.children]


def tokenize_with(tokenizer: Any, embeddings: Any = None) -> Callable[[list[str]], list[list[int]]]:
    """Fragments -> token ids; with a model's textual-inversion `embeddings` (studio/embeddings), each
    one named takes one (negative) id per vector."""
    def run(texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        ids = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [embeddings.substitute(one) for one in ids] if embeddings is not None else ids

    return run


def _comma_id(tokenizer: Any) -> int | None:
    token_id = tokenizer.convert_tokens_to_ids(",</w>")
    return None if token_id == tokenizer.unk_token_id else token_id


def chunk_token_counts(parsed: ParsedPrompt, tokenizer: Any, embeddings: Any = None) -> list[int]:
    """How many prompt tokens each 75-token chunk holds (for the parsed view and token counters)."""
    tokenize, comma = tokenize_with(tokenizer, embeddings), _comma_id(tokenizer)
    counts: list[int] = []
    for part in parsed.conjunction.prompts:
        subs = part.prompts if isinstance(part, Blend) else [part]
        longest: list[int] = []
        for sub in subs:
            texts, weights = part_fragments(sub)
            sizes = [len(t) for t, _ in split_chunks(tokenize(texts), weights, comma)]
            longest = sizes if len(sizes) > len(longest) else longest
        counts.extend(longest)
    return counts


class ClipSkip(EncoderWrapper):
    """A CLIP text encoder whose last hidden state is layer -N through the final layer norm.

    compel's own PENULTIMATE_HIDDEN_STATES_NORMALIZED reaches for `text_encoder.text_model`, which
    transformers 5 no longer has; this wrapper gives compel the A1111 clip-skip output as the
    ordinary last hidden state instead.
    """

    def __init__(self, text_encoder: Any, skip: int):
        super().__init__(text_encoder)
        self.skip = skip

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False, return_dict=True):
        out = self.inner(input_ids, attention_mask, output_hidden_states=True, return_dict=True)
        norm = getattr(self.inner, "final_layer_norm", None) or self.inner.text_model.final_layer_norm
        out.last_hidden_state = norm(out.hidden_states[-self.skip])
        return out


class ClipEncoder:
    """One CLIP text encoder behind compel's embeddings provider."""

    def __init__(self, tokenizer: Any, text_encoder: Any, embeddings: ReturnedEmbeddingsType,
                 vectors: torch.Tensor | None = None):
        if vectors is not None and len(vectors):  # textual-inversion vectors, read for negative ids
            from .embeddings.inject import WithVectors

            text_encoder = WithVectors(text_encoder, vectors)
        compel = Compel(tokenizer=tokenizer, text_encoder=text_encoder, truncate_long_prompts=False,
                        returned_embeddings_type=embeddings)
        self.provider = compel.conditioning_provider
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder

    def ids(self, chunks: list[tuple[list[int], list[float]]]) -> tuple[torch.Tensor, torch.Tensor]:
        pad = self.tokenizer.pad_token_id
        bos, eos = self.provider.bos_sequence, self.provider.eos_sequence
        ids: list[int] = []
        mults: list[float] = []
        for tokens, weights in chunks:
            padding = CHUNK_TOKENS - len(tokens)
            ids += bos + tokens + eos + [pad] * padding
            mults += [1.0] * len(bos) + weights + [1.0] * (len(eos) + padding)
        device = self.text_encoder.device
        return torch.tensor(ids, dtype=torch.long, device=device), torch.tensor(mults, device=device)

    def encode(self, chunks: list[tuple[list[int], list[float]]]) -> torch.Tensor:
        # compel encodes each 77-token window on its own, so one call a chunk gives the same tensor
        # and lets a Stop land between chunks.
        pieces = []
        for chunk in chunks:
            between_chunks()
            pieces.append(self.provider.build_weighted_embedding_tensor(*self.ids([chunk])))
        return torch.cat(pieces, dim=1)

    def pooled(self, first_chunk: tuple[list[int], list[float]]) -> torch.Tensor:
        ids, _ = self.ids([first_chunk])
        return self.text_encoder(ids.unsqueeze(0), return_dict=True).text_embeds


def clip_text_encoder(text_encoder: Any, clip_skip: int) -> Any:
    """The encoder whose last hidden state is what the prompt is conditioned on: clip skip 2 = the
    penultimate layer through the final layer norm, as A1111 does."""
    return text_encoder if clip_skip == 1 else ClipSkip(text_encoder, clip_skip)


class PromptEncoder:
    """Encodes parsed prompts with one or more CLIP encoders whose hidden states are joined side by
    side (SDXL: both); `pooled` adds the last encoder's pooled output of the first chunk."""

    def __init__(self, tokenizer: Any, encoders: Sequence[ClipEncoder], pooled: bool = False, embeddings: Any = None):
        self.tokenize = tokenize_with(tokenizer, embeddings)
        self.comma = _comma_id(tokenizer)
        self.encoders = list(encoders)
        self.with_pooled = pooled

    def _chunks(self, part: FlattenedPrompt) -> list[tuple[list[int], list[float]]]:
        texts, weights = part_fragments(part)
        return split_chunks(self.tokenize(texts), weights, self.comma)

    def _encode_part(self, part: FlattenedPrompt) -> Conditioning:
        chunks = self._chunks(part)
        embeds = torch.cat([encoder.encode(chunks) for encoder in self.encoders], dim=-1)
        pooled = self.encoders[-1].pooled(chunks[0]) if self.with_pooled else None
        return Conditioning(embeds, pooled)

    def _blend(self, blend: Blend) -> Conditioning:
        parts = pad_to_same_length([self._encode_part(p) for p in blend.prompts], self.empty())
        total = sum(blend.weights) or 1.0  # all-zero weights: an even mix rather than a division by 0
        weights = list(blend.weights) if sum(blend.weights) else [1.0] * len(parts)
        embeds = sum(w * c.embeds for w, c in zip(weights, parts)) / total
        pooled = sum(w * c.pooled for w, c in zip(weights, parts)) / total if parts[0].pooled is not None else None
        return Conditioning(embeds, pooled)

    @torch.no_grad()
    def encode(self, parsed: ParsedPrompt) -> Conditioning:
        """Every part encoded on its own, weighted, then joined along the token axis."""
        conjunction = parsed.conjunction
        # Tokenizing is cheap, encoding is not: the exact count (a blend's prompts each encoded) first.
        check_chunks(parsed, sum(len(self._chunks(sub)) for part in conjunction.prompts
                                 for sub in (part.prompts if isinstance(part, Blend) else [part])))
        pieces = []
        for part, weight in zip(conjunction.prompts, conjunction.weights):
            piece = self._blend(part) if isinstance(part, Blend) else self._encode_part(part)
            if weight != 1:  # compel's .and() weights: scale the part's distance from the empty prompt
                base = self.empty().embeds.repeat(1, piece.chunks, 1)
                piece = Conditioning(base + (piece.embeds - base) * weight, piece.pooled)
            pieces.append(piece)
        return Conditioning(torch.cat([p.embeds for p in pieces], dim=1), pieces[0].pooled)

    @torch.no_grad()
    def empty(self) -> Conditioning:
        return self._encode_part(FlattenedPrompt([]))


def pad_to_same_length(conditionings: list[Conditioning], empty: Conditioning) -> list[Conditioning]:
    """Pad shorter conditionings with empty-prompt chunks (positive and negative must match)."""
    longest = max(c.chunks for c in conditionings)
    return [
        c if c.chunks == longest
        else Conditioning(torch.cat([c.embeds, empty.embeds.repeat(1, longest - c.chunks, 1)], dim=1), c.pooled)
        for c in conditionings
    ]
