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
