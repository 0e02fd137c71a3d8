"""T2I-Adapters (diffusers' `T2IAdapter`): small models that read a unit's control map once per generation
and add their features to the UNet's down blocks, for SD 1.x and SDXL. They are ControlNet units' models
like the others; a model is an adapter when its files say so (a config of class T2IAdapter, or an
adapter's layers in a single file), never by its name.

Single files come in diffusers' layout (`adapter.body.0.resnets.0.block1.weight`: lllyasviel's
`t2i-adapter_diffusers_xl_*` files) or TencentARC's original one (`conv_in.weight`, `body.0.block1.weight`:
the `t2iadapter_*_sd14v1` / `_sd15v2` files A1111 users have); neither says its config: it is read from
the layers' shapes, and of the layouts those fit (SD 1.x's full adapter, SDXL's), the one whose features
meet the model's UNet is built.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

from ..checkpoints import PICKLE_SUFFIXES
from ..errors import InvalidValue, ModelLoadError
from ..hub import hub_or_cache, plain

BUILTIN = "builtin:t2i-adapter/"  # + a family name: the tiny model's random-weight adapter
TINY_FAMILIES = ("sd15", "sdxl")
CLASS_NAME = "T2IAdapter"
# Each feature an adapter makes, or a UNet takes: (channels, pixels per feature cell).
Layout = tuple[tuple[int, int], ...]
# Where a UNet takes an adapter's features: one per down block, and maybe one after the middle block.
UNetLayout = tuple[Layout, tuple[int, int]]
ORIGINAL_BODY = re.compile(r"^body\.(\d+)\.(block1|block2|in_conv)\.(weight|bias)$")
ORIGINAL_LIGHT = re.compile(r"^body\.(\d+)\.(?:body\.(\d+)\.(block1|block2)|(in_conv|out_conv))\.(weight|bias)$")


# -- Layouts: which features an adapter makes and where the UNet takes them ---------------------------

def unet_layout(unet: Any, vae_scale: int) -> UNetLayout:
    """Where diffusers' UNet adds an adapter's features: inside a down block with cross-attention (before
    its downsampler), after one without (after its downsampler); a last one after the middle block,
    when it has the middle block's shape."""
    scale, blocks = vae_scale, []
    for block, channels in zip(unet.down_blocks, unet.config.block_out_channels):
        attention = getattr(block, "has_cross_attention", False)
        if attention:
            blocks.append((int(channels), scale))
        if getattr(block, "downsamplers", None) is not None:
            scale *= 2
        if not attention:
            blocks.append((int(channels), scale))
    return tuple(blocks), (int(unet.config.block_out_channels[-1]), scale)


def adapter_layout(config: Mapping[str, Any]) -> Layout:
    """The features a T2IAdapter of this config makes (its three kinds, as diffusers builds them)."""
    channels, scale, kind = list(config["channels"]), int(config["downscale_factor"]), config["adapter_type"]
    if kind == "full_adapter":  # each block after the first halves the size
        return tuple((c, scale * 2 ** i) for i, c in enumerate(channels))
    if kind == "full_adapter_xl":  # only the third block halves it
        return tuple((c, scale * (2 if i >= 2 else 1)) for i, c in enumerate(channels))
    if kind == "light_adapter":  # one block more than its channels, each after the first halving
        return (*((c, scale * 2 ** i) for i, c in enumerate(channels)), (channels[-1], scale * 2 ** len(channels)))
    raise ValueError(f"unknown adapter_type {kind!r}")


def fits(layout: Layout, unet: UNetLayout) -> bool:
    blocks, mid = unet
    return tuple(layout) in (blocks, (*blocks, mid))


def describe(layout: Layout) -> str:
    return ", ".join(f"{c} channels at 1/{s}" for c, s in layout)


# -- Telling an adapter from a ControlNet --------------------------------------------------------------

def keys_kind(keys: Any) -> str | None:
    """A single file's layout from its layer names: "diffusers", "original" (TencentARC's full adapter),
    "light" (TencentARC's light one), or None: no T2I-Adapter."""
    keys = set(keys)
    if "adapter.conv_in.weight" in keys or "adapter.body.0.in_conv.weight" in keys:
        return "diffusers"
    if "conv_in.weight" in keys and "body.0.block1.weight" in keys:
        return "original"
    if {"body.0.in_conv.weight", "body.0.out_conv.weight", "body.0.body.0.block1.weight"} <= keys:
        return "light"
    return None


def _hub_config(ref: str) -> dict[str, Any]:
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hub_or_cache(f"ControlNet {ref}", lambda local: hf_hub_download(
        ref, "config.json", local_files_only=local))).read_text())


def _pickle_state(path: Path) -> dict[str, Any]:
    """A pickled file's tensors, read without running code (torch's weights-only loader)."""
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the old (not zip) format cannot be mapped: read whole
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else {}


def is_adapter(ref: str, allow_pickle: bool = False) -> bool:
    """Whether a unit's model (resolved: a builtin, a hub id, a folder or a file) is a T2I-Adapter, by its
    config's class or its layers. Unreadable: False (loading it as a ControlNet gives the clear message)."""
    if ref.startswith(BUILTIN):
        return True
    if ref.startswith("builtin:"):
        return False
    from ..models import hub_id

    path = Path(ref).expanduser()
    try:
        if hub_id(ref):
            return _hub_config(ref).get("_class_name") == CLASS_NAME
        if path.is_dir():
            config = path / "config.json"
            return config.is_file() and json.loads(config.read_text()).get("_class_name") == CLASS_NAME
        suffix = path.suffix.lower()
        if path.is_file() and (suffix == ".safetensors" or (suffix in PICKLE_SUFFIXES and allow_pickle)):
            stat = path.stat()
            return _file_kind(str(path.resolve()), stat.st_mtime_ns, stat.st_size) is not None
    except Exception:  # unreadable, or not on this machine: not an adapter as far as can be told
        return False
    return False


@functools.lru_cache(maxsize=64)
def _file_kind(path: str, mtime_ns: int, size: int) -> str | None:
    """A file's keys_kind, read once per version of the file (a pickle is read whole to know its keys)."""
    if path.lower().endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            return keys_kind(f.keys())
    return keys_kind(_pickle_state(Path(path)))


# -- Single files: diffusers' layers and config from either layout -------------------------------------

def _original_to_diffusers(state: Mapping[str, Any]) -> dict[str, Any]:
    """TencentARC's full adapter: one flat list of resnet blocks (`body.k`), `per_level` a level
    (the first with an `in_conv` starts the second level; 2 when no level changes width)."""
    if any(".skep." in key or ".down_opt." in key for key in state):
        raise ValueError("its blocks have skip or downsampling convolutions, a T2I-Adapter kind diffusers does "
                         "not build")
    levels = sorted(int(m.group(1)) for key in state if (m := ORIGINAL_BODY.match(key)) and m.group(2) == "in_conv")
    per_level = levels[0] if levels else 2
    out = {f"adapter.{key}": value for key, value in state.items() if key.startswith("conv_in.")}
    for key, value in state.items():
        m = ORIGINAL_BODY.match(key)
        if m is None:
            continue
        k, layer, kind = int(m.group(1)), m.group(2), m.group(3)
        level, j = divmod(k, per_level)
        inner = f"in_conv.{kind}" if layer == "in_conv" else f"resnets.{j}.{layer}.{kind}"
        out[f"adapter.body.{level}.{inner}"] = value
    return out


def _light_to_diffusers(state: Mapping[str, Any]) -> dict[str, Any]:
    """TencentARC's light adapter: `body.i` blocks of in_conv, resnets (`body.i.body.j`) and out_conv."""
    out = {}
    for key, value in state.items():
        m = ORIGINAL_LIGHT.match(key)
        if m is not None:
            i, j, layer, conv, kind = m.groups()
            inner = f"{conv}.{kind}" if conv else f"resnets.{j}.{layer}.{kind}"
            out[f"adapter.body.{i}.{inner}"] = value
    return out


def _count(keys: Any, prefix: str) -> int:
    found = {int(key[len(prefix):].split(".")[0]) for key in keys if key.startswith(prefix)}
    return max(found) + 1 if found else 0


def _input(width: int) -> tuple[int, int]:
    """(channels, pixel-unshuffle factor) of a first layer `width` wide: a picture of 3 or 1 channels,
    unshuffled by a factor whose square times them is the width."""
    for channels in (3, 1):
        factor = math.isqrt(width // channels)
        if factor * factor * channels == width:
            return channels, factor
    raise ValueError(f"a first layer of {width} inputs is no picture's")


def configs(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The configs a diffusers-layout state dict fits (one for a light adapter; SD 1.x's and SDXL's full
    adapters share their layers, and differ only in where they downsample)."""
    keys = set(state)
    levels = _count(keys, "adapter.body.")
    per_level = _count(keys, "adapter.body.0.resnets.")
    if "adapter.conv_in.weight" in keys:
        in_channels, factor = _input(state["adapter.conv_in.weight"].shape[1])
        channels = [int(state[f"adapter.body.{i}.resnets.0.block1.weight"].shape[0]) for i in range(levels)]
        kinds = ("full_adapter", "full_adapter_xl")
    else:
        in_channels, factor = _input(state["adapter.body.0.in_conv.weight"].shape[1])
        channels = [int(state[f"adapter.body.{i}.out_conv.weight"].shape[0]) for i in range(levels - 1)]
        kinds = ("light_adapter",)
    return [dict(in_channels=in_channels, channels=channels, num_res_blocks=per_level, downscale_factor=factor,
                 adapter_type=kind) for kind in kinds]


def _read_file(path: Path, allow_pickle: bool) -> dict[str, Any]:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelLoadError(f"T2I-Adapter {path.name} is a pickle file, which can run code when loaded: convert "
                                 "it to .safetensors, or start the studio with --allow-pickle")
        state = _pickle_state(path)
    else:
        from safetensors.torch import load_file

        state = load_file(str(path))
    kind = keys_kind(state)
    if kind == "original":
        return _original_to_diffusers(state)
    if kind == "light":
        return _light_to_diffusers(state)
    return dict(state)


def from_file(path: Path, unet: UNetLayout, allow_pickle: bool = False) -> Any:
    """A single file's adapter, built in the layout that meets the UNet (the first it fits otherwise:
    the fit check then refuses it by name)."""
    from diffusers import T2IAdapter

    state = _read_file(path, allow_pickle)
    options = configs(state)
    config = next((c for c in options if fits(adapter_layout(c), unet)), options[0])
    adapter = T2IAdapter(**config)
    adapter.load_state_dict(state, strict=True)
    return adapter


# -- The tiny models' adapters, and loading any adapter -----------------------------------------------

def build_tiny_adapter(name: str) -> Any:
    """A random-weight T2I-Adapter for a family's tiny model (deterministic): as wide as its UNet's blocks,
    in the layout that meets them (the tiny UNet's first block has no attention, as SDXL's)."""
    import torch
    from diffusers import T2IAdapter

    from ..families import family as family_of
    from ..tiny import TINY_SEED

    if name not in TINY_FAMILIES:
        raise InvalidValue("controlnet model", BUILTIN + name, ", ".join(BUILTIN + f for f in TINY_FAMILIES))
    base = family_of(name).tiny()
    unet = unet_layout(base.unet, base.vae_scale_factor)
    channels = list(base.unet.config.block_out_channels)
    options = [dict(in_channels=3, channels=channels, num_res_blocks=1, downscale_factor=base.vae_scale_factor * f,
                    adapter_type=kind) for kind in ("full_adapter", "full_adapter_xl") for f in (1, 2)]
    config = next(c for c in options if fits(adapter_layout(c), unet))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED + 2)
        adapter = T2IAdapter(**config)
    return adapter.eval()


def load_adapter(ref: str, unet: UNetLayout, device: Any, allow_pickle: bool = False) -> Any:
    """The T2I-Adapter `ref` (a builtin, hub id, diffusers folder or single file) on the device, at its dtype."""
    from diffusers import T2IAdapter

    from ..models import hub_id

    if ref.startswith(BUILTIN):
        return _placed(build_tiny_adapter(ref[len(BUILTIN):]), device)
    hub = hub_id(ref)
    path = Path(ref).expanduser()
    name = ref if hub or not path.is_absolute() else path.name  # messages name no folder of this machine
    try:
        if hub:
            adapter = hub_or_cache(f"T2I-Adapter {ref}", lambda local: T2IAdapter.from_pretrained(
                ref, torch_dtype=device.dtype, local_files_only=local))
        elif path.is_dir():
            adapter = T2IAdapter.from_pretrained(str(path), torch_dtype=device.dtype)
        elif path.is_file():
            adapter = from_file(path, unet, allow_pickle)
        else:  # a name found nowhere (folder.resolve): never guessed as a repo
            raise ModelLoadError(f"T2I-Adapter {name} was not found")
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"T2I-Adapter {name} could not be loaded: {plain(exc)}") from exc
    return _placed(adapter, device)


def _placed(adapter: Any, device: Any) -> Any:
    if adapter.dtype != device.dtype:  # cast only when needed: diffusers warns on every cast
        adapter = adapter.to(dtype=device.dtype)
    return adapter.to(device.device).eval()
