"""The controlnets folder (A1111's models/ControlNet): ControlNet and IP-Adapter files named by their
file name, as A1111's infotext names them ("control_v11p_sd15_canny [d14c016b]": the hash is dropped).

A name the folder does not have is used as given, except A1111's ControlNet 1.1 names, which are
lllyasviel's Hub repositories (`control_v11p_sd15_canny` -> `lllyasviel/control_v11p_sd15_canny`), so a
PNG from A1111 finds its ControlNet here too.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..loras import folder_loras

HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,}\]$")
CONTROLNET_11 = re.compile(r"control_v11[a-z0-9]*_sd15_[a-z0-9_]+")
# The family a ControlNet or IP-Adapter is made for, as its usual names say (A1111's, the Hub's):
# checked in this order; a name that says none is listed on every model.
NAME_FAMILIES = (("flux", re.compile(r"flux", re.I)),
                 ("sd3", re.compile(r"sd3|sd_3|stable-diffusion-3", re.I)),
                 ("sdxl", re.compile(r"sdxl|(?<![a-z])xl(?![a-z])", re.I)),
                 ("sd15", re.compile(r"sd15|sd_15|sd1\.5|sd-1-5|sd2|control_v11|control_sd", re.I)))
ADAPTER_NAME = re.compile(r"ip[-_ ]?adapter", re.I)  # an IP-Adapter's file, not a ControlNet's


def folder_models(folder: str | Path | None) -> dict[str, Path]:
    """name -> path: its .safetensors files (one folder down too, links kept inside, as the loras
    folder) and its diffusers folders (a config.json inside)."""
    found = folder_loras(folder)
    root = Path(folder).expanduser() if folder is not None else None
    if root is not None and root.is_dir():
        for entry in sorted(root.iterdir())[:2_000]:
            if (entry.is_dir() and not entry.name.startswith(".") and (entry / "config.json").is_file()
                    and entry.resolve().is_relative_to(root.resolve())):
                found.setdefault(entry.name, entry)
    return found


def resolve(ref: str, folder: str | Path | None) -> str:
    """What a unit's or image prompt's model names: a file or folder of the controlnets folder, an
    A1111 ControlNet 1.1 name's Hub repository, or the reference as given (a hub id, a path, a builtin)."""
    name = HASH.sub("", ref.strip())
    found = folder_models(folder).get(name)
    if found is not None:
        return str(found)
    if CONTROLNET_11.fullmatch(name):
        return f"lllyasviel/{name}"
    return name


def family_by_name(name: str) -> str | None:
    """The family a ControlNet or adapter is made for as its name says (`control_v11p_sd15_canny`:
    sd15, `diffusers_xl_canny_full`: sdxl), or None when it says none."""
    return next((family for family, pattern in NAME_FAMILIES if pattern.search(name)), None)


def is_adapter_name(name: str) -> bool:
    return bool(ADAPTER_NAME.search(name))
