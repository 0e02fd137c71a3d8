"""The path policy of a shared studio: requests may open model and LoRA files only inside the
allowed folders (`StudioConfig.allowed_roots`; None = any path, as a local user expects).

A path outside them is refused before the file system is asked anything (so the answer does not
tell whether a path exists), with a message that names no folder of this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .. import loras
from ..control.folder import folder_models, resolve
from ..control.image_prompts import A1111_MODULES
from ..errors import InvalidValue
from ..models import find_preset, hub_id

if TYPE_CHECKING:
    from ..request import GenerationRequest

SHARED_ONLY = "a preset, a Hub id (owner/name) or a file in this studio's models or loras folder (it is shared: " \
              "other paths are refused)"


def _inside(path: str, roots: tuple[Path, ...]) -> bool:
    """Lexically first (no file-system access), then with links resolved: no way out through either."""
    plain = Path(os.path.abspath(os.path.expanduser(path)))
    if not any(plain.is_relative_to(root) for root in roots):
        return False
    return any(Path(plain).resolve().is_relative_to(root) for root in roots)


def check_model_name(model: Any, allowed_roots: tuple[Path, ...] | None, field: str = "model") -> None:
    """A shared studio's `model` (or a ControlNet's, an IP-Adapter's) is a preset, a builtin, a known
    name, a hub id or a path inside its folders, checked before the string is resolved (resolving
    touches the file system)."""
    if allowed_roots is None or not isinstance(model, str) or not model.strip():
        return
    text = model.strip()
    # A Hub id is one even where a folder of that name lies in the working directory: it is loaded from
    # the Hub (models.hub_id), so the answer is the same whatever the machine holds.
    if find_preset(text) or text.startswith("builtin:") or text in A1111_MODULES or hub_id(text):
        return
    if not _inside(text, allowed_roots):
        raise InvalidValue(field, model, SHARED_ONLY)  # the shown value is cut at 80 characters


def check_paths(request: GenerationRequest, lora_names: Sequence[tuple[str, float]],
                allowed_roots: tuple[Path, ...] | None, loras_dir: Path | None,
                controlnets_dir: Path | None = None, allow_pickle: bool = False) -> None:
    """Refuse local files outside the allowed folders: the model, ControlNets, IP-Adapters and LoRAs of
    a request, before anything is opened. Symlinks and `..` are resolved first: there is no way out."""
    if allowed_roots is None:
        return
    check_model_name(request.model, allowed_roots)
    if getattr(request, "detailer", False):
        check_model_name(request.detailer_model, allowed_roots, "detailer_model")
    if getattr(request, "restore_faces", False):
        check_model_name(request.face_detector, allowed_roots, "face_detector")
    in_controlnets = {os.path.abspath(path) for path in folder_models(controlnets_dir, allow_pickle).values()}
    # Every record with a model of its own (a ControlNet unit's, an image prompt's adapter).
    for field in (f for f in request.FIELDS.request if f.items is not None and "model" in f.items.fields):
        for i, item in enumerate(getattr(request, field.name)):
            ref = resolve(item.model, controlnets_dir, allow_pickle)  # a name in the folder is fine
            if ref not in in_controlnets:
                check_model_name(ref, allowed_roots, f"{field.name}[{i}].model")
    in_folder = loras.folder_loras(loras_dir)
    for name, _ in lora_names:
        if name in in_folder or hub_id(name):
            continue
        if not _inside(name, allowed_roots):
            raise InvalidValue("lora", name, SHARED_ONLY)
