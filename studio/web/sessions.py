"""A tab's own history, bound to the tab's key and signed for the browser's storage. (What runs for
whom, and what Stop cancels, is the service layer's registry: studio/service/registry.py.)"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import OrderedDict
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
    """A tab's history survives a reload in the tab's own storage, as paths signed for that tab's owner
    secret (made in the tab, kept in its session storage, sent only in request bodies): the server gives
    back only paths it signed itself (this process: a restart forgets them), for this owner, that still
    exist. A path typed into the storage, another visitor's, or an entry copied out of another tab opens
    nothing."""

    MIN_OWNER_CHARS = 16  # the page makes 32 hex characters; a guessable owner is no owner

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or os.urandom(32)

    def _mac(self, owner: str, path: str) -> str:
        message = f"{owner}\0{path}".encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def _owner(self, owner: Any) -> str | None:
        return owner if isinstance(owner, str) and len(owner) >= self.MIN_OWNER_CHARS else None

    def sign(self, paths: tuple[str, ...] | list[str], owner: Any) -> list[str]:
        """Entries for the tab's storage; none for a tab without an owner (its history lives until reload)."""
        owner = self._owner(owner)
        return [f"{self._mac(owner, path)}:{path}" for path in paths] if owner else []

    def verify(self, entries: Any, owner: Any, limit: int) -> tuple[str, ...]:
        owner = self._owner(owner)
        if not isinstance(entries, list) or owner is None:
            return ()
        paths = []
        for entry in entries[:limit]:
            if not isinstance(entry, str) or ":" not in entry:
                continue
            mac, _, path = entry.partition(":")
            if hmac.compare_digest(mac, self._mac(owner, path)) and Path(path).is_file():
                paths.append(path)
        return tuple(paths)


class SessionOwners:
    """A Gradio session id bound to the visitor that used it first: its address, and its visitor cookie
    where it had one (visitors.py). Gradio treats the session id as a bearer token (whoever opens
    `/queue/data?session_hash=...` reads that session's stream, and hanging up cancels its work), and
    it travels in URLs; here it is only good for its first visitor. Bounded: the oldest sessions are
    forgotten past `capacity` (Gradio's own session store holds 2000)."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._owners: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session: str, address: str, cookie: str = "") -> bool:
        """True when the visitor at `address` with `cookie` may use `session`: it is the session's first
        visitor, or the session is new (then it becomes the owner). A session first used without a
        cookie is bound to its address alone."""
        if not session:
            return True
        with self._lock:
            owner = self._owners.get(session)
            if owner is None:
                self._owners[session] = (address, cookie)
                while len(self._owners) > self.capacity:
                    self._owners.popitem(last=False)
                return True
            self._owners.move_to_end(session)
            first_address, first_cookie = owner
            same_address = hmac.compare_digest(first_address, address)
            return same_address and (not first_cookie or hmac.compare_digest(first_cookie, cookie))
