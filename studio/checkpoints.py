"""Single-file checkpoints: what a file holds, read from its header alone.

Three formats, one entry each in FORMATS (a registry, not an if-chain): `.safetensors` (a JSON
header), `.gguf` (llama.cpp's format, as city96 and Civitai ship quantized FLUX / SD3.5 / Z-Image
transformers: tensor names and quantization types in the header) and pickle (`.ckpt`, `.pt`,
`.bin`: read in full, only when pickles are allowed). From the tensor names: the family, and
whether the file is a whole checkpoint or a denoiser (UNet / transformer) alone.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ModelLoadError
from .hub import plain
from .families import FAMILIES, family_of_checkpoint

SAFE_SUFFIXES = (".safetensors",)
GGUF_SUFFIXES = (".gguf",)  # quantized denoisers (llama.cpp's format): safe, no code runs on loading
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
CHECKPOINT_SUFFIXES = SAFE_SUFFIXES + GGUF_SUFFIXES + PICKLE_SUFFIXES

# Tensor-name prefixes of a whole checkpoint's VAE and text encoders (original and diffusers layouts):
# a file without any holds a denoiser alone.
WHOLE_CHECKPOINT_PREFIXES = ("vae.", "first_stage_model.", "text_encoders.", "text_encoder", "conditioner.",
                             "cond_stage_model.")
GGUF_INSTALL = "python3 -m pip install -r requirements-quant.txt"


def _safetensors_keys(path: str) -> list[str]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            return list(f.keys())
    except Exception as exc:
        raise ModelLoadError(f"{Path(path).name} is not a readable .safetensors file: {plain(exc)}") from exc


def _gguf_keys(path: str) -> list[str]:
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise ModelLoadError(f"{Path(path).name} is a GGUF file: reading it needs the gguf package ({GGUF_INSTALL})"
                             ) from exc
    try:
        return [tensor.name for tensor in GGUFReader(path).tensors]  # memory-mapped: nothing is read yet
    except Exception as exc:
        raise ModelLoadError(f"{Path(path).name} is not a readable GGUF file: {plain(exc)}") from exc


def _pickle_keys(path: str) -> list[str]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)  # allowed by the caller
    return list(state.get("state_dict", state))


def _gguf_quantization(dtype: Any) -> dict[str, Any]:
    """GGUF weights stay quantized on the device; each layer dequantizes to `dtype` as it runs
    (diffusers' GGUF quantizer: plain torch, so on every device)."""
    from diffusers import GGUFQuantizationConfig

    return {"quantization_config": GGUFQuantizationConfig(compute_dtype=dtype)}


@dataclass(frozen=True)
class CheckpointFormat:
    name: str
    suffixes: tuple[str, ...]
    keys: Callable[[str], list[str]]  # path -> tensor names
    whole: bool  # can hold a whole model (the loader then reads it as a pipeline)
    load_kwargs: Callable[[Any], dict[str, Any]] = lambda dtype: {}  # for the denoiser's from_single_file
    quantized: bool = False  # already quantized: --quantize does not apply
    safe: bool = True  # reading it runs no code (pickles are opened only to load, and only if allowed)


FORMATS: dict[str, CheckpointFormat] = {f.name: f for f in (
    CheckpointFormat("safetensors", SAFE_SUFFIXES, _safetensors_keys, whole=True),
    CheckpointFormat("gguf", GGUF_SUFFIXES, _gguf_keys, whole=False, load_kwargs=_gguf_quantization,
                     quantized=True),
    CheckpointFormat("pickle", PICKLE_SUFFIXES, _pickle_keys, whole=True, safe=False),
)}


def format_of(path: str) -> CheckpointFormat:
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    raise ModelLoadError(f"{Path(path).name}: not a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})")


def checkpoint_keys(path: str) -> list[str]:
    """A single-file checkpoint's tensor names (a header only, except for pickles). Remembered per
    (path, size, modification time): naming the file, checking it before a load and loading it all
    read them."""
    stat = Path(path).stat()
    return list(_keys(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _keys(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    return tuple(format_of(path).keys(path))


def family_of_keys(path: str, keys: list[str]) -> str:
    fam = family_of_checkpoint(keys)
    if fam is None:
        titles = " or ".join(f.title for f in FAMILIES.values())
        raise ModelLoadError(
            f"{Path(path).name} does not look like a {titles} checkpoint "
            "(no model.diffusion_model / conditioner tensors); is it a LoRA, a VAE or an embedding?"
        )
    return fam.name


def checkpoint_family(path: str) -> str:
    """Classify a single-file checkpoint by its tensor names (reads only the header)."""
    return family_of_keys(path, checkpoint_keys(path))


def denoiser_alone(keys: list[str]) -> bool:
    """No VAE or text-encoder tensors: the file holds the UNet / transformer alone."""
    return not any(k.startswith(WHOLE_CHECKPOINT_PREFIXES) for k in keys)


def header_family(path: str | Path) -> str | None:
    """The family of a .safetensors or GGUF file from its header, before loading (so a FLUX file
    gets FLUX's defaults on the page); None when the header does not say or cannot be read. Pickles
    are never opened here."""
    if not format_of(str(path)).safe:
        return None
    try:
        fam = family_of_checkpoint(checkpoint_keys(str(path)))
    except ModelLoadError:
        return None  # loading it says what is wrong
    return fam.name if fam else None


def file_hash(path: str | Path, digits: int = 10) -> str:
    """A1111's short hash: the first hex digits of the file's SHA-256 ('Model hash' takes 10, LoRA
    hashes 12). Remembered per (path, size, modification time): checkpoints are gigabytes."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)[:digits]


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


short_hash = file_hash  # A1111's 'Model hash' of a checkpoint
