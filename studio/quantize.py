"""Quantized loading: a model's denoiser (the UNet or transformer: most of its weights) quantized
in place after it is read and before it is placed on the device, so the device only ever holds the
quantized weights. torchao does it (requirements-quant.txt); int8 weight-only runs on any device,
fp8 weight-only on CUDA GPUs with fp8 (the Studio refuses it elsewhere).
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import ModelLoadError


def _int8() -> Any:
    from torchao.quantization import Int8WeightOnlyConfig

    return Int8WeightOnlyConfig()


def _fp8() -> Any:
    from torchao.quantization import Float8WeightOnlyConfig

    return Float8WeightOnlyConfig()


CONFIGS: dict[str, Callable[[], Any]] = {"int8": _int8, "fp8": _fp8}


def quantize(pipe: Any, denoiser: str, mode: str) -> Any:
    """Quantize the pipeline's denoiser component in place ("none": leave it)."""
    if mode == "none":
        return pipe
    try:
        from torchao.quantization import quantize_

        config = CONFIGS[mode]()
    except ImportError as exc:
        raise ModelLoadError(f"--quantize {mode} needs torchao: python3 -m pip install -r requirements-quant.txt "
                             f"({exc})") from exc
    quantize_(getattr(pipe, denoiser), config)
    return pipe
