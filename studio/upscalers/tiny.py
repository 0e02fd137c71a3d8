"""Tiny model upscalers for tests and offline examples: real architectures spandrel detects (ESRGAN's
RRDBNet, Real-ESRGAN's compact SRVGG), with few channels and random weights, saved as .safetensors.
They upscale (sizes, tiles, Stop, infotext all real); what they draw is noise-tinted, not sharper.

    python3 -m studio.upscalers.tiny ./upscalers    # then: app.py --upscalers-dir ./upscalers
"""

from __future__ import annotations

import sys
from pathlib import Path

from .library import spandrel

# name -> (architecture, scale): one of each kind the tests need (a x4 and a x2; the x4 under
# A1111's R-ESRGAN 4x+ file name is made by the tests that need that name).
TINY = {"tiny-esrgan-x4": ("ESRGAN", 4), "tiny-compact-x2": ("Compact", 2)}


def build(kind: str, scale: int, seed: int = 0) -> dict:
    """The state dict of a tiny model of this architecture and scale."""
    import torch

    spandrel()  # its import first (studio/upscalers/library.py: without torchvision)
    torch.manual_seed(seed)
    if kind == "ESRGAN":
        from spandrel.architectures.ESRGAN import ESRGAN
        net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    elif kind == "Compact":
        from spandrel.architectures.Compact import Compact
        net = Compact(num_feat=8, num_conv=2, upscale=scale)
    else:
        raise ValueError(f"no tiny {kind}: {', '.join(sorted({k for k, _ in TINY.values()}))}")
    return {key: value.contiguous() for key, value in net.state_dict().items()}


def write(folder: str | Path, names: dict[str, tuple[str, int]] | None = None) -> Path:
    """Tiny upscalers saved in `folder` (made if missing) as name.safetensors; the folder."""
    from safetensors.torch import save_file

    root = Path(folder).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, (kind, scale)) in enumerate((names or TINY).items()):
        save_file(build(kind, scale, seed=i), str(root / f"{name}.safetensors"))
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 -m studio.upscalers.tiny FOLDER")
    print(f"tiny upscalers in {write(sys.argv[1])}: {', '.join(TINY)}")
