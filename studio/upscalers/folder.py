"""The upscalers folder (`--upscalers-dir`, A1111's models/ESRGAN): upscaler and face restoration
files by name. `.safetensors` always (one folder down too); pickled `.pth` files (most of these models
are published so) only when the studio allows pickles (`--allow-pickle`), as checkpoints are.

A1111 names its upscalers by what it downloads (`R-ESRGAN 4x+`, `SwinIR 4x`...): those names find
the file of that model here (A1111_FILES), so a client or a PNG that says `R-ESRGAN 4x+` runs it when
the folder has `RealESRGAN_x4plus.pth`. Nothing is downloaded: a name the folder lacks is refused,
naming what it has.
"""

from __future__ import annotations

from pathlib import Path

from ..control.folder import folder_models
from ..errors import InvalidValue
from ..naming import fold
from . import MODEL_NAME, PIXEL_FILTERS, BUILTIN

# A1111 1.10's upscaler names -> the file names its downloads have (models/ESRGAN, RealESRGAN, ...).
A1111_FILES = {
    "R-ESRGAN 4x+": "RealESRGAN_x4plus", "R-ESRGAN 4x+ Anime6B": "RealESRGAN_x4plus_anime_6B",
    "R-ESRGAN 2x+": "RealESRGAN_x2plus", "R-ESRGAN General 4xV3": "realesr-general-x4v3",
    "R-ESRGAN General WDN 4xV3": "realesr-general-wdn-x4v3", "R-ESRGAN AnimeVideo": "realesr-animevideov3",
    "ESRGAN_4x": "ESRGAN_4x", "SwinIR 4x": "SwinIR_4x", "ScuNET GAN": "ScuNET", "ScuNET PSNR": "ScuNET_PSNR",
    "DAT x2": "DAT_x2", "DAT x3": "DAT_x3", "DAT x4": "DAT_x4",
}
_BY_FILE = {fold(stem): name for name, stem in A1111_FILES.items()}


def folder_upscalers(folder: str | Path | None, allow_pickle: bool = False) -> dict[str, Path]:
    """name -> file of the upscalers folder (the names A1111 lists a file by are its file name)."""
    return {name: path for name, path in folder_models(folder, allow_pickle).items() if path.is_file()}


def names(folder: str | Path | None, allow_pickle: bool = False) -> list[str]:
    """The model upscalers of the folder by name (top level, and one down by plain name), sorted."""
    return sorted({name.rsplit("/", 1)[-1] for name in folder_upscalers(folder, allow_pickle)}, key=str.casefold)


def a1111_name(name: str) -> str:
    """The name A1111 gives this file's model (`RealESRGAN_x4plus` -> `R-ESRGAN 4x+`), or the name."""
    return _BY_FILE.get(fold(name), name)


def find(field: str, name: str, folder: str | Path | None, allow_pickle: bool = False) -> Path:
    """The file a model upscaler's name means: the folder's file of that name (any case), or of the
    file A1111's name stands for. A name the folder lacks is refused with what it has."""
    files = folder_upscalers(folder, allow_pickle)
    by_fold = {fold(key.rsplit("/", 1)[-1]): path for key, path in reversed(list(files.items()))}
    wanted = fold(name)
    stem = next((stem for a1111, stem in A1111_FILES.items() if fold(a1111) == wanted), None)
    path = files.get(name) or by_fold.get(wanted) or (by_fold.get(fold(stem)) if stem else None)
    if path is not None:
        return path
    have = names(folder, allow_pickle)
    where = ("no upscalers folder is set (--upscalers-dir)" if folder is None else
             f"the upscalers folder has {', '.join(have[:20])}" if have else "the upscalers folder is empty")
    pickles = "" if allow_pickle else "; .pth files need --allow-pickle"
    builtins = BUILTIN if field.startswith("hires") else PIXEL_FILTERS  # latent ones are hires fix's only
    raise InvalidValue(field, name[:80], f"{', '.join(builtins)} or {MODEL_NAME}: {where}{pickles}")
