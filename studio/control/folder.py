"""The controlnets folder (A1111's models/ControlNet): ControlNet, T2I-Adapter and IP-Adapter files named by
their file name, as A1111's infotext names them ("control_v11p_sd15_canny [d14c016b]": the hash is dropped).

A name the folder does not have is used as given, except lllyasviel's ControlNet 1.0 and 1.1 names and
TencentARC's T2I-Adapter names as A1111 lists them, which are Hub repositories
(`control_v11p_sd15_canny` -> `lllyasviel/control_v11p_sd15_canny`, `t2iadapter_canny_sd15v2` ->
`TencentARC/t2iadapter_canny_sd15v2`), so a PNG from A1111 finds its ControlNet here too. Only the
repositories that exist are named: another `control_*` name is never turned into a Hub id.

Pickled files (`.pth`, `.ckpt`, ...: A1111's usual ControlNet files) can run code when loaded: they are
listed and found by name only when the studio allows pickles (`--allow-pickle`), as checkpoints are.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..checkpoints import PICKLE_SUFFIXES
from ..loras import folder_loras

HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,}\]$")
# lllyasviel's ControlNets by the names of their A1111 files (ControlNet 1.1's diffusers repositories,
# and 1.0's `control_sd15_*` files, whose diffusers copies are his `sd-controlnet-*`).
A1111_CONTROLNETS = {
    **{name: f"lllyasviel/{name}" for name in (
        "control_v11p_sd15_canny", "control_v11f1p_sd15_depth", "control_v11p_sd15_mlsd",
        "control_v11p_sd15_normalbae", "control_v11p_sd15_seg", "control_v11p_sd15_inpaint",
        "control_v11p_sd15_lineart", "control_v11p_sd15s2_lineart_anime", "control_v11p_sd15_openpose",
        "control_v11p_sd15_scribble", "control_v11p_sd15_softedge", "control_v11e_sd15_shuffle",
        "control_v11e_sd15_ip2p", "control_v11f1e_sd15_tile")},
    **{f"control_sd15_{kind}": f"lllyasviel/sd-controlnet-{kind}"
       for kind in ("canny", "depth", "hed", "mlsd", "normal", "openpose", "scribble", "seg")},
}
# TencentARC's T2I-Adapters by the names of their A1111 files: the original ones (`models/*.pth` of
# TencentARC/T2I-Adapter) are its diffusers repositories of the same name; lllyasviel's
# `t2i-adapter_diffusers_xl_*` files are copies of TencentARC's SDXL repositories.
A1111_ADAPTERS = {
    **{name: f"TencentARC/{name}" for name in (
        "t2iadapter_canny_sd15v2", "t2iadapter_depth_sd15v2", "t2iadapter_sketch_sd15v2", "t2iadapter_zoedepth_sd15v1",
        "t2iadapter_canny_sd14v1", "t2iadapter_color_sd14v1", "t2iadapter_depth_sd14v1", "t2iadapter_keypose_sd14v1",
        "t2iadapter_openpose_sd14v1", "t2iadapter_seg_sd14v1", "t2iadapter_sketch_sd14v1")},
    **{f"t2i-adapter_diffusers_xl_{kind}": f"TencentARC/t2i-adapter-{kind.replace('_', '-')}-sdxl-1.0"
       for kind in ("canny", "depth_midas", "depth_zoe", "lineart", "openpose", "sketch")},
}
LEGACY_HASH_AT, LEGACY_HASH_BYTES = 0x100000, 0x10000  # A1111's model_hash: 64 KiB from 1 MiB in
# The family a ControlNet or IP-Adapter is made for, as its usual names say (A1111's, the Hub's):
# checked in this order; a name that says none is listed on every model.
NAME_FAMILIES = (("flux", re.compile(r"flux", re.I)),
                 ("sd3", re.compile(r"sd3|sd_3|stable-diffusion-3", re.I)),
                 ("sdxl", re.compile(r"sdxl|(?<![a-z])xl(?![a-z])", re.I)),
                 ("sd15", re.compile(r"sd15|sd_15|sd1\.5|sd-1-5|sd14|sd2|control_v11|control_sd", re.I)))
ADAPTER_NAME = re.compile(r"ip[-_ ]?adapter", re.I)  # an IP-Adapter's file, not a ControlNet's


def folder_models(folder: str | Path | None, allow_pickle: bool = False) -> dict[str, Path]:
    """name -> path: its .safetensors files (one folder down too, links kept inside, as the loras
    folder), its diffusers folders (a config.json inside) and, with `allow_pickle`, its pickled files
    (top level; a .safetensors file of the same name wins)."""
    found = folder_loras(folder)
    root = Path(folder).expanduser() if folder is not None else None
    if root is not None and root.is_dir():
        real_root = root.resolve()
        for entry in sorted(root.iterdir())[:2_000]:
            if entry.name.startswith(".") or not entry.resolve().is_relative_to(real_root):
                continue
            if entry.is_dir() and (entry / "config.json").is_file():
                # Its weights file is a part of it, not a model of its own name (diffusion_pytorch_model).
                found = {name: path for name, path in found.items() if path.parent != entry.resolve()}
                found.setdefault(entry.name, entry)
            elif allow_pickle and entry.is_file() and entry.suffix.lower() in PICKLE_SUFFIXES:
                found.setdefault(entry.stem, entry)
    return found


def legacy_hash(path: str | Path) -> str:
    """The short hash A1111's ControlNet extension shows beside a file's name (`[d14c016b]`): the first
    8 hex digits of the SHA-256 of 64 KiB read 1 MiB into the file (cheap on gigabyte files)."""
    with open(path, "rb") as f:
        f.seek(LEGACY_HASH_AT)
        return hashlib.sha256(f.read(LEGACY_HASH_BYTES)).hexdigest()[:8]


def a1111_names(folder: str | Path | None, allow_pickle: bool = False) -> dict[str, Path]:
    """A1111's name of each file of the folder (`name [hash]`, as its ControlNet extension lists
    them; a diffusers folder by its name alone: A1111 has none) -> its path, top level first."""
    found = folder_models(folder, allow_pickle)
    top = {name: path for name, path in found.items() if "/" not in name}
    # A file one folder down is listed by its plain name; by `sub/name` only where a top-level file has it.
    nested = {name: path for name, path in found.items() if "/" in name and path not in top.values()}
    ordered = {**top, **nested}.items()
    return {f"{name} [{legacy_hash(path)}]" if path.is_file() else name: path for name, path in ordered}


def resolve(ref: str, folder: str | Path | None, allow_pickle: bool = False) -> str:
    """What a unit's or image prompt's model names: a file or folder of the controlnets folder (by
    name, its A1111 `[hash]` dropped; case-insensitively when no name matches exactly, as A1111 does),
    one of lllyasviel's ControlNets or TencentARC's T2I-Adapters by its A1111 name, or the reference as
    given (a hub id, a path, a builtin)."""
    name = HASH.sub("", ref.strip())
    models = folder_models(folder, allow_pickle)
    found = models.get(name) or next((path for key, path in models.items() if key.casefold() == name.casefold()),
                                     None)
    if found is not None:
        return os.path.abspath(found)  # a full path: a relative `folder/name` would read as a Hub id
    return A1111_CONTROLNETS.get(name) or A1111_ADAPTERS.get(name, name)


def family_by_name(name: str) -> str | None:
    """The family a ControlNet or adapter is made for as its name says (`control_v11p_sd15_canny`:
    sd15, `diffusers_xl_canny_full`: sdxl), or None when it says none."""
    return next((family for family, pattern in NAME_FAMILIES if pattern.search(name)), None)


def is_adapter_name(name: str) -> bool:
    return bool(ADAPTER_NAME.search(name))
