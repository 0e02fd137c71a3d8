"""A tab's own history, bound to the tab's key and signed for the browser's storage. (What runs for
whom, and what Stop cancels, is the service layer's registry: studio/service/registry.py.)"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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


# -- who a request comes from: the address, on a studio others can reach ------------------------------
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", ""})  # a `--host` only this machine reaches


def is_loopback(host: str | None) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def client_address(scope: dict, trust_forwarded: str | None = None) -> str:
    """The address a request comes from: the peer of the connection (ASGI `scope["client"]`), or the
    first entry of `X-Forwarded-For` where a proxy the studio knows sets it. `trust_forwarded`:
    "space" (a Space: every request comes through Hugging Face's proxies, the peer is one of theirs)
    or "share" (a share link: its tunnel connects from this machine, so a loopback peer is the tunnel;
    a peer elsewhere on the network is believed as itself); None: the peer, whatever headers say."""
    client = scope.get("client") or ("", 0)
    peer = str(client[0] or "")
    if trust_forwarded == "space" or (trust_forwarded == "share" and is_loopback(peer)):
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                added = value.decode("latin-1").split(",")[-1].strip()  # the proxy's own entry; earlier ones are the client's words
                if added:
                    return added[:64]
    return peer


class SessionOwners:
    """A Gradio session id bound to the address that used it first. Gradio treats the session id as a
    bearer token (whoever opens `/queue/data?session_hash=...` reads that session's stream, and hanging
    up cancels its work), and it travels in URLs; here it is only good from its first address. Bounded:
    the oldest sessions are forgotten past `capacity` (Gradio's own session store holds 2000)."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session: str, address: str) -> bool:
        """True when `address` may use `session`: it is the session's first address, or the session is new
        (then it becomes the owner)."""
        if not session:
            return True
        with self._lock:
            owner = self._owners.get(session)
            if owner is None:
                self._owners[session] = address
                while len(self._owners) > self.capacity:
                    self._owners.popitem(last=False)
                return True
            self._owners.move_to_end(session)
            return hmac.compare_digest(owner, address)
