"""ControlNet models: loaded once per device and precision, shared by every pipeline that uses them.

A ControlNet is named like a model: a hub id, a diffusers folder, a single `.safetensors` file, or
`builtin:controlnet/<family>` for the offline random-weight ones of the tiny models. It must fit the model it
steers (the same family, the same cross-attention width): a mismatch is a clear error, never a shape
error from inside a pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..cache import LRUCache
from ..checkpoints import PICKLE_SUFFIXES
from ..devices import DeviceChoice
from ..errors import InvalidValue, ModelLoadError
from ..hub import hub_or_cache, plain, shadowed
from ..tiny import TINY_SEED

BUILTIN = "builtin:controlnet/"  # + a family name: the tiny model's random-weight ControlNet
CACHE_SIZE = 3  # A1111 keeps a few; each SD 1.5 ControlNet is 0.7 GB in fp16


def _unet_controlnet(base: Any) -> tuple[Any, list[Any]]:
    """From the tiny UNet, with a conditioning embedding that downsamples as much as the tiny VAE (2x)."""
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(16, 32))
    return net, [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]


def _settings(config: Any) -> dict[str, Any]:
    """A model's config as settings for another (without diffusers' bookkeeping, whose
    `_use_default_values` would drop the settings changed)."""
    return {key: value for key, value in config.items() if not key.startswith("_")}


def _union_controlnet(base: Any) -> tuple[Any, list[Any]]:
    """SDXL's union kind (xinsir's promax: eight control types) from the tiny UNet, its control-type
    transformer as wide as the UNet's first block."""
    from diffusers import ControlNetUnionModel

    width = base.unet.config.block_out_channels[0]
    config = ControlNetUnionModel.from_unet(base.unet, conditioning_embedding_out_channels=(16, 32),
                                            load_weights_from_unet=False).config
    net = ControlNetUnionModel.from_config({**_settings(config), "num_control_type": 8, "num_trans_channel": width,
                                           "num_trans_head": 2, "num_proj_channel": width})
    return net, [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out,
                 net.spatial_ch_projs]


def _flux_controlnet(base: Any, num_mode: int | None = None) -> tuple[Any, list[Any]]:
    """From the tiny FLUX transformer (one double and one single block, its width); with `num_mode`,
    a union one (InstantX's: seven control modes)."""
    from diffusers import FluxControlNetModel

    config = base.transformer.config
    net = FluxControlNetModel.from_transformer(base.transformer, num_layers=1, num_single_layers=1,
                                               attention_head_dim=config.attention_head_dim,
                                               num_attention_heads=config.num_attention_heads)
    if num_mode is not None:
        net = FluxControlNetModel.from_config({**_settings(net.config), "num_mode": num_mode})
    return net, [*net.controlnet_blocks, *net.controlnet_single_blocks, net.controlnet_x_embedder]


def _sd3_controlnet(base: Any) -> tuple[Any, list[Any]]:
    """From the tiny SD3 transformer: one block, no extra conditioning channels (those are the inpainting
    ControlNet's)."""
    from diffusers import SD3ControlNetModel

    net = SD3ControlNetModel.from_transformer(base.transformer, num_layers=1, num_extra_conditioning_channels=0)
    return net, [*net.controlnet_blocks, net.pos_embed_input.proj]


# The tiny models' ControlNets by builtin name: the family whose tiny model they are made from, and
# how (the family's `control_pipelines` name the kinds of its real ones).
TINY_BUILDERS = {"sd15": ("sd15", _unet_controlnet), "sdxl": ("sdxl", _unet_controlnet),
                 "sdxl-union": ("sdxl", _union_controlnet), "flux": ("flux", _flux_controlnet),
                 "flux-union": ("flux", lambda base: _flux_controlnet(base, num_mode=7)),
                 "sd3": ("sd3", _sd3_controlnet)}


def build_tiny_controlnet(name: str) -> Any:
    """A random-weight ControlNet for a family's tiny model (deterministic), its zero-initialised
    output layers given small random weights so that it visibly steers (a fresh one changes nothing)."""
    from ..families import family as family_of

    if name not in TINY_BUILDERS:
        raise InvalidValue("controlnet model", BUILTIN + name, ", ".join(BUILTIN + f for f in TINY_BUILDERS))
    family, build = TINY_BUILDERS[name]
    base = family_of(family).tiny()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 1)
        net, zeroed = build(base)
        with torch.no_grad():
            for layer in zeroed:
                layer.weight.normal_(0.0, 0.05)
                if layer.bias is not None:
                    layer.bias.normal_(0.0, 0.05)
    return net.eval()


# What a ControlNet shares with the model it steers, where both configs say it: the input channels
# (SD's 4 latent channels, FLUX's 64 packed ones) and the text width.
FIT_KEYS = ("in_channels", "cross_attention_dim", "addition_embed_type", "joint_attention_dim")


def check_fits(net: Any, ref: str, pipe: Any, denoiser: str, model: str, field: str = "controlnet model") -> None:
    """Refuse a ControlNet made for another family (SD 1.5's on SDXL or FLUX, say) before it runs, and
    one whose control maps would not meet the latents in size: its conditioning embedding must shrink
    a map as much as the model's VAE shrinks the picture (8x; the tiny models' VAEs 2x)."""
    config = getattr(pipe, denoiser).config
    for key in FIT_KEYS:
        if key in net.config and key in config and net.config[key] != config[key]:
            raise InvalidValue(field, ref, f"a ControlNet made for {model}'s family ({key} {config[key]}; "
                                           f"this one has {net.config[key]})")
    blocks = net.config.get("conditioning_embedding_out_channels")
    vae = getattr(pipe, "vae_scale_factor", None)
    if blocks and vae and 2 ** (len(blocks) - 1) != vae:
        raise InvalidValue(field, ref, f"a ControlNet whose control maps shrink {vae}x as {model}'s pictures do "
                                       f"in latents (this one shrinks them {2 ** (len(blocks) - 1)}x: the sizes "
                                       "would not meet)")


def kind_of(ref: str, family: Any) -> str:
    """The kind (diffusers class) a ControlNet loads as: its family's, unless it is another kind the
    family also runs: SDXL's union ControlNets say so by their config's class or control types, their
    layers (a single file), or their name (xinsir's own config predates diffusers' union class)."""
    kinds = list(family.control_pipelines)
    if len(kinds) < 2:
        return kinds[0] if kinds else family.controlnet_class
    from ..models import hub_id

    union = "ControlNetUnionModel"
    hub = hub_id(ref)  # a Hub id even where the working directory has a folder of its name
    path = Path(ref).expanduser()
    found = "union" in (path.name if not hub and path.exists() else ref).lower()
    try:
        config = None
        if hub:
            from huggingface_hub import hf_hub_download

            config = json.loads(Path(hub_or_cache(f"ControlNet {ref}", lambda local: hf_hub_download(
                ref, "config.json", local_files_only=local))).read_text())
        elif path.is_dir() and (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text())
        elif path.is_file() and path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                found = found or "task_embedding" in f.keys()
        if config is not None:
            found = found or config.get("_class_name") == union or "num_control_type" in config
    except Exception:  # unreadable: loading it gives the clear message
        pass
    return union if found and union in kinds else family.controlnet_class


class ControlNets:
    """The ControlNet and T2I-Adapter models loaded so far, least recently used out past CACHE_SIZE."""

    def __init__(self, device: DeviceChoice, size: int = CACHE_SIZE, allow_pickle: bool = False):
        self.device = device
        self.allow_pickle = allow_pickle  # pickled files (.pth, .ckpt) run code when loaded: only when allowed
        self._cache: LRUCache[Any] = LRUCache(size)

    def get(self, ref: str, kind: str = "ControlNetModel") -> Any:
        """The ControlNet `ref`, loaded as the diffusers class `kind` (the model's family says which)."""
        net, _ = self._cache.get_or_load((ref, kind, self.device), lambda: self._load(ref, kind))
        return net

    def adapter(self, ref: str, unet: Any) -> Any:
        """The T2I-Adapter `ref`; a single file (which says no layout) built in the one that meets `unet`,
        the model's UNet layout (t2i_adapter.unet_layout)."""
        from .t2i_adapter import load_adapter

        adapter, _ = self._cache.get_or_load((ref, "T2IAdapter", unet, self.device),
                                             lambda: load_adapter(ref, unet, self.device, self.allow_pickle))
        return adapter

    def _load(self, ref: str, kind: str) -> Any:
        import diffusers

        ControlNetModel = getattr(diffusers, kind)
        dtype = self.device.dtype
        if ref.startswith(BUILTIN):
            return build_tiny_controlnet(ref[len(BUILTIN):]).to(self.device.device, dtype)
        from ..models import hub_id

        hub = hub_id(ref)  # `owner/name` is the Hub's, whatever the working directory holds (one answer)
        path = Path(ref).expanduser()
        name = ref if hub or not path.is_absolute() else path.name  # messages name no folder of this machine
        if path.suffix.lower() in PICKLE_SUFFIXES and not self.allow_pickle:
            raise ModelLoadError(f"ControlNet {path.name} is a pickle file, which can run code when loaded: "
                                 "convert it to .safetensors, or start the studio with --allow-pickle")
        try:
            if hub:
                net = hub_or_cache(f"ControlNet {ref}", lambda local: ControlNetModel.from_pretrained(
                    _snapshot(ref, local) if shadowed(ref) else ref, torch_dtype=dtype, local_files_only=local))
            elif path.is_file():
                net = ControlNetModel.from_single_file(str(path), torch_dtype=dtype)
            elif path.is_dir():
                net = ControlNetModel.from_pretrained(str(path), torch_dtype=dtype)
            else:  # a name found nowhere (folder.resolve): never guessed as a repo
                raise ModelLoadError(f"ControlNet {name} was not found: name a file or folder of the controlnets "
                                     "folder (--controlnets-dir), one of A1111's ControlNet 1.x names, a hub id "
                                     "(owner/name) or a path")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"ControlNet {name} could not be loaded: {plain(exc)}") from exc
        return net.to(self.device.device)


def _snapshot(ref: str, local: bool) -> str:
    """The Hub repository `ref`'s files (config and safetensors weights) in the HF cache."""
    from huggingface_hub import snapshot_download

    return snapshot_download(ref, allow_patterns=["*.json", "*.safetensors"], local_files_only=local)
