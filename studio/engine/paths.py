"""The path policy of a shared studio: requests may open model and LoRA files only inside the
allowed folders (`StudioConfig.allowed_roots`; None = any path, as a local user expects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .. import loras
from ..errors import InvalidValue


def check_paths(request: Any, lora_names: Sequence[tuple[str, float]], allowed_roots: tuple[Path, ...] | None,
                loras_dir: Path | None) -> None:
    """Refuse local files outside the allowed folders: the model and every LoRA of a request,
    before anything is opened. Symlinks and `..` are resolved first: there is no way out."""
    if allowed_roots is None:
        return
    named = []
    if request.source.kind in ("folder", "single_file"):
        named.append(("model", request.model, request.source.ref))
    for name, _ in lora_names:
        file = loras.find(name, loras_dir)
        if not file.is_hub:
            named.append(("lora", name, file.ref))
    for field, value, path in named:
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) for root in allowed_roots):
            raise InvalidValue(field, value, "a file inside " + " or ".join(map(str, allowed_roots))
                               + " (this studio is shared: other paths are refused)")
