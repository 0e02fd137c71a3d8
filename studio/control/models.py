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


def _unet_controlnet(base: Any) -> tuple[Any, list[Any]]:
    """From the tiny UNet, with a conditioning embedding that downsamples as much as the tiny VAE (2x)."""
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(16, 32))
    return net, [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]


def _flux_controlnet(base: Any) -> tuple[Any, list[Any]]:
    """From the tiny FLUX transformer (one double and one single block, its width)."""
    from diffusers import FluxControlNetModel

    config = base.transformer.config
    net = FluxControlNetModel.from_transformer(base.transformer, num_layers=1, num_single_layers=1,
                                               attention_head_dim=config.attention_head_dim,
                                               num_attention_heads=config.num_attention_heads)
    return net, [*net.controlnet_blocks, *net.controlnet_single_blocks, net.controlnet_x_embedder]


# How each family's tiny ControlNet is made (the family's `controlnet_class` names its real ones).
TINY_BUILDERS = {"sd15": _unet_controlnet, "sdxl": _unet_controlnet, "flux": _flux_controlnet}


def build_tiny_controlnet(family: str) -> Any:
    """A random-weight ControlNet for a family's tiny model (deterministic), its zero-initialised
    output layers given small random weights so that it visibly steers (a fresh one changes nothing)."""
    from ..families import family as family_of

    if family not in TINY_BUILDERS:
        raise InvalidValue("controlnet model", BUILTIN + family, ", ".join(BUILTIN + f for f in TINY_BUILDERS))
    base = family_of(family).tiny()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 1)
        net, zeroed = TINY_BUILDERS[family](base)
        with torch.no_grad():
            for layer in zeroed:
                layer.weight.normal_(0.0, 0.05)
                if layer.bias is not None:
                    layer.bias.normal_(0.0, 0.05)
    return net.eval()


# What a ControlNet shares with the model it steers, where both configs say it: the input channels
# (SD's 4 latent channels, FLUX's 64 packed ones) and the text width.
FIT_KEYS = ("in_channels", "cross_attention_dim", "addition_embed_type", "joint_attention_dim")


def check_fits(net: Any, ref: str, denoiser: Any, model: str) -> None:
    """Refuse a ControlNet made for another family (SD 1.5's on SDXL or FLUX, say) before it runs."""
    for key in FIT_KEYS:
        if key in net.config and key in denoiser.config and net.config[key] != denoiser.config[key]:
            raise InvalidValue("controlnet model", ref, f"a ControlNet made for {model}'s family ({key} "
                                                        f"{denoiser.config[key]}; this one has {net.config[key]})")


class ControlNets:
    """The ControlNet models loaded so far, least recently used out past CACHE_SIZE."""

    def __init__(self, device: DeviceChoice, size: int = CACHE_SIZE):
        self.device = device
        self._cache: LRUCache[Any] = LRUCache(size)

    def get(self, ref: str, kind: str = "ControlNetModel") -> Any:
        """The ControlNet `ref`, loaded as the diffusers class `kind` (the model's family says which)."""
        net, _ = self._cache.get_or_load((ref, kind, self.device), lambda: self._load(ref, kind))
        return net

    def _load(self, ref: str, kind: str) -> Any:
        import diffusers

        ControlNetModel = getattr(diffusers, kind)
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
