"""A tab's own history, bound to the tab's key and signed for the browser's storage. (What runs for
whom, and what Stop cancels, is the service layer's registry: studio/service/registry.py.)"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidValue

@dataclass(frozen=True)
class History:
    """A tab's own images (paths, newest first), bound to the tab's key: Gradio keeps this state under
    the session id, which travels in URLs; the key travels only in request bodies."""

    key: str = ""
    paths: tuple[str, ...] = ()


def own_history(history: object, key: str | None) -> tuple[str, ...]:
    """The tab's history paths; a request with another key (someone replaying the session id) gets none."""
    if not isinstance(history, History) or not history.paths:  # nothing yet: the tab claims it on Generate
        return ()
    if history.key != (key or ""):
        raise InvalidValue("tab key", "not this tab's", "the key the page made when it opened (reload the page)")
    return history.paths


class HistorySigner:
    """A tab's history survives a reload in the browser's own storage, as signed paths: the server
    gives back only paths it signed itself (this process: a restart forgets them) that still exist,
    so a path typed into the storage, or another visitor's, opens nothing."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or os.urandom(32)

    def _mac(self, path: str) -> str:
        return hmac.new(self._secret, path.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]

    def sign(self, paths: tuple[str, ...] | list[str]) -> list[str]:
        return [f"{self._mac(path)}:{path}" for path in paths]

    def verify(self, entries: Any, limit: int) -> tuple[str, ...]:
        if not isinstance(entries, list):
            return ()
        paths = []
        for entry in entries[:limit]:
            if not isinstance(entry, str) or ":" not in entry:
                continue
            mac, _, path = entry.partition(":")
            if hmac.compare_digest(mac, self._mac(path)) and Path(path).is_file():
                paths.append(path)
        return tuple(paths)
