"""ControlNet models: loaded once per device and precision, shared by every pipeline that uses them.

A ControlNet is named like a model: a hub id, a diffusers folder, a single `.safetensors` file, or
`builtin:controlnet/<family>` for the offline random-weight ones of the tiny models. It must fit the model it
steers (the same family, the same cross-attention width): a mismatch is a clear error, never a shape
error from inside a pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..cache import LRUCache
from ..devices import DeviceChoice
from ..errors import InvalidValue, ModelLoadError
from ..hub import hub_or_cache
from ..tiny import TINY_SEED

BUILTIN = "builtin:controlnet/"  # + a family name: the tiny model's random-weight ControlNet
CACHE_SIZE = 3  # A1111 keeps a few; each SD 1.5 ControlNet is 0.7 GB in fp16


def build_tiny_controlnet(family: str) -> Any:
    """A random-weight ControlNet for a family's tiny model (deterministic): made from its UNet, with a
    conditioning embedding that downsamples as much as the tiny VAE (2x), and its zero convolutions
    given small random weights so that it visibly steers (a fresh ControlNet changes nothing)."""
    from diffusers import ControlNetModel

    from ..families import family as family_of

    base = family_of(family).tiny()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 1)
        net = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(16, 32))
        zero_convs = [*net.controlnet_down_blocks, net.controlnet_mid_block]
        with torch.no_grad():
            for conv in zero_convs:
                conv.weight.normal_(0.0, 0.05)
                conv.bias.normal_(0.0, 0.05)
            net.controlnet_cond_embedding.conv_out.weight.normal_(0.0, 0.05)
    return net.eval()


def check_fits(net: Any, ref: str, unet: Any, model: str) -> None:
    """Refuse a ControlNet made for another family (SD 1.5's on SDXL, say) before it runs."""
    want = unet.config.cross_attention_dim
    have = net.config.cross_attention_dim
    if have != want or net.config.get("addition_embed_type") != unet.config.get("addition_embed_type"):
        raise InvalidValue("controlnet model", ref, f"a ControlNet made for {model}'s family (cross-attention "
                                                    f"width {want}; this one has {have})")


class ControlNets:
    """The ControlNet models loaded so far, least recently used out past CACHE_SIZE."""

    def __init__(self, device: DeviceChoice, size: int = CACHE_SIZE):
        self.device = device
        self._cache: LRUCache[Any] = LRUCache(size)

    def get(self, ref: str) -> Any:
        net, _ = self._cache.get_or_load((ref, self.device), lambda: self._load(ref))
        return net

    def _load(self, ref: str) -> Any:
        from diffusers import ControlNetModel

        dtype = self.device.dtype
        if ref.startswith(BUILTIN):
            return build_tiny_controlnet(ref[len(BUILTIN):]).to(self.device.device, dtype)
        path = Path(ref).expanduser()
        try:
            if path.is_file():
                net = ControlNetModel.from_single_file(str(path), torch_dtype=dtype)
            elif path.is_dir():
                net = ControlNetModel.from_pretrained(str(path), torch_dtype=dtype)
            else:
                net = hub_or_cache(f"ControlNet {ref}", lambda local: ControlNetModel.from_pretrained(
                    ref, torch_dtype=dtype, local_files_only=local))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"ControlNet {ref} could not be loaded: {exc}") from exc
        return net.to(self.device.device)
