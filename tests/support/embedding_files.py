"""Tiny textual-inversion files for the tests: random vectors of the tiny models' width (32), written in
A1111's and diffusers' formats."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

TINY_WIDTH = 32  # the tiny models' text encoders (both of tiny-xl's too)


def vectors(count: int, width: int = TINY_WIDTH, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


def write_concept(folder: Path, name: str, count: int = 1, width: int = TINY_WIDTH, seed: int = 0) -> Path:
    """A diffusers concept: one tensor named emb_params."""
    path = folder / f"{name}.safetensors"
    save_file({"emb_params": vectors(count, width, seed)}, str(path))
    return path


def write_xl(folder: Path, name: str, count: int = 2, seed: int = 0) -> Path:
    """An SDXL embedding: clip_l and clip_g vectors."""
    path = folder / f"{name}.safetensors"
    save_file({"clip_l": vectors(count, seed=seed), "clip_g": vectors(count, seed=seed + 1)}, str(path))
    return path


def write_a1111_pt(folder: Path, name: str, count: int = 2, seed: int = 0, step: int = 500) -> Path:
    """A1111's own .pt, as its Embedding.save writes it."""
    path = folder / f"{name}.pt"
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors(count, seed=seed)}, "name": name,
                "step": step, "sd_checkpoint": "abcdef1234", "sd_checkpoint_name": "tiny"}, str(path))
    return path
