"""Fetching from the Hugging Face Hub: the local cache first, then the network, and one plain message
when neither has the files ("not on this machine and the Hub cannot be reached")."""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from .errors import ModelLoadError, ModelUnavailable


# A file-system path inside a message (`/home/me/models/x/config.json`; not a URL's `//host/...`).
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\"/,;)]*)")


def plain(text: object) -> str:
    """A library's message with each absolute path cut to its last part: messages reach visitors, and
    the folders of the host are none of theirs (`.../snapshots/abc/unet` -> `unet`)."""
    return ABSOLUTE_PATH.sub(lambda m: m.group(1) or "", str(text))


def shadowed(ref: str) -> bool:
    """True when a folder or file of the working directory has the Hub id's name: diffusers' from_pretrained
    would load it instead of the repository, so the repository's own snapshot is handed over."""
    return os.path.lexists(ref)


def _connection_problem(exc: BaseException) -> bool:
    """True when the error chain says the Hub could not be reached (offline, DNS, timeout)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if isinstance(exc, (LocalEntryNotFoundError, ConnectionError, TimeoutError)) or name in (
            "ConnectError", "ConnectTimeout", "ReadTimeout", "gaierror", "OfflineModeIsEnabled",
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _offline_advice(what: str, exc: BaseException) -> ModelUnavailable:
    return ModelUnavailable(
        f"{what} is not on this machine and the Hugging Face Hub cannot be reached "
        f"({type(exc).__name__}). Connect once to download it, point the model at a local diffusers "
        f"folder or a .safetensors file, or use the offline 'tiny' model (its images are noise)."
    )


def hub_or_cache(what: str, fetch: Callable[[bool], Any]) -> Any:
    """Try the local Hugging Face cache first (no network), then the Hub."""
    try:
        return fetch(True)
    except Exception as first:  # not cached, or cached incompletely
        if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0", "false", "False"):
            raise _offline_advice(what, first) from first
    try:
        return fetch(False)
    except Exception as exc:
        if _connection_problem(exc):
            raise _offline_advice(what, exc) from exc
        raise ModelLoadError(f"{what} could not be loaded: {plain(exc)}") from exc
