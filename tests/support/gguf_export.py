"""Test support: write a model's state dict as a GGUF file, as city96's FLUX / SD3.5 GGUFs are made:
matrices whose rows fit the quantization's blocks are quantized (Q8_0 by default), the rest (norms,
biases, small embeddings) stay F32. Offline: the `gguf` package writes and quantizes."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch


def write_gguf(state: Mapping[str, torch.Tensor], path: str | Path, quant: str = "Q8_0", arch: str = "flux") -> Path:
    import gguf

    qtype = gguf.GGMLQuantizationType[quant]
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    writer = gguf.GGUFWriter(str(path), arch=arch)
    for name, tensor in state.items():
        data = tensor.detach().float().cpu().numpy().astype(np.float32)
        if data.ndim >= 2 and data.shape[-1] % block == 0:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)
