"""Bounds on what a visitor may send before any check runs and without logging in: request bodies,
uploads per visitor, Gradio's upload folder and its session store.

`BodyLimits` is an ASGI middleware in front of the whole app. A request whose Content-Length is over
its route's cap is answered 413 before one byte of its body is read; a body without one (chunked) is
counted as it streams and cut off at the cap. On a shared studio, `/gradio_api/upload` also draws on a
per-visitor allowance (`UploadQuota`): bytes uploaded per client address within a window.
`launch_options` gives app.py the rest: Gradio's own file cap, a shorter sweep of its upload folder and
a smaller, shorter-lived session store on a shared studio.

The caps come from the studio's own input limits (validation.py, bounded.py):

>>> UPLOAD_FILE_BYTES == 2 * MAX_BLOB_BYTES
True
>>> route_cap("/gradio_api/upload") == UPLOAD_BODY_BYTES, route_cap("/gradio_api/queue/join") == JSON_BODY_BYTES
(True, True)
>>> route_cap("/gradio_api/call/generate") == JSON_BODY_BYTES, route_cap("/config") == SMALL_BODY_BYTES
(True, True)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ..validation import MAX_PROMPT_CHARS
from .bounded import MAX_BLOB_BYTES
from .visitors import FORWARDED_NEVER, client_address

try:  # Gradio's upload parser deletes the files it has written when its multipart parse fails
    from python_multipart.exceptions import MultipartParseError
except ImportError:  # pragma: no cover - python_multipart comes with Gradio
    MultipartParseError = ValueError  # type: ignore[misc, assignment]

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MB = 2**20


def base64_bytes(raw: int) -> int:
    """The length of `raw` bytes written as base64 (a data URL's payload)."""
    return 4 * ((raw + 2) // 3)


# 1. Bodies. One picture file: twice the editor's largest blob (a 4096 x 4096 photo as PNG fits).
UPLOAD_FILE_BYTES = 2 * MAX_BLOB_BYTES  # Gradio's own max_file_size, per file
UPLOAD_BODY_BYTES = 2 * UPLOAD_FILE_BYTES + MB  # one upload request: a picture and its mask, and the multipart
# The text of a JSON call: prompt and negative prompt at the 10k-character cap, each character escaped
# (\uXXXX: 6 bytes), and room for the other fields.
TEXT_BYTES = 2 * MAX_PROMPT_CHARS * 6 + 256 * 2**10
JSON_PICTURES = 2  # an init image and a mask sent inline as base64, at most
JSON_BODY_BYTES = TEXT_BYTES + JSON_PICTURES * base64_bytes(MAX_BLOB_BYTES)  # queue/join, run/*, call/*
SMALL_BODY_BYTES = MB  # every other route (cancel, component_server, login, ...)
# A1111's routes (/sdapi/*, /controlnet/*) cap their own bodies with this (studio/web/sdapi): an img2img
# with its init image, mask and two ControlNet pictures as base64. This middleware does not apply it
# there; it only puts twice as much around them as an outer bound.
SDAPI_PICTURES = 4
SDAPI_BODY_BYTES = TEXT_BYTES + SDAPI_PICTURES * base64_bytes(MAX_BLOB_BYTES)
SDAPI_OUTER_BYTES = 2 * SDAPI_BODY_BYTES
# JSON's own cost is its items, not its bytes: 40 MB of `[{},{},...]` parse into 13 million dicts (~1 GB).
# A JSON body may hold at most this many items (counted as its `,` `:` `[` `{`, which base64 never has):
# both prompts made of nothing but commas, and room for every other field.
JSON_ITEMS = 2 * MAX_PROMPT_CHARS + 16_384
STRUCTURE = tuple(bytes([c]) for c in b",:[{")

UPLOAD_PATH = "/gradio_api/upload"
JSON_PATHS = ("/gradio_api/queue/join", "/gradio_api/run/", "/gradio_api/call/", "/gradio_api/api/")
SDAPI_PATHS = ("/sdapi/", "/controlnet/")

# 2. Uploads per visitor on a shared studio, and Gradio's upload folder.
UPLOAD_QUOTA_BYTES = 8 * UPLOAD_FILE_BYTES  # per client address and window: a session's worth of pictures
UPLOAD_QUOTA_WINDOW_S = 3600
QUOTA_ADDRESSES = 10_000  # addresses remembered at once (the oldest is forgotten first)
LOCAL_CACHE_SWEEP = (3600, 24 * 3600)  # every hour, files older than a day (a studio only its owner reaches)
SHARED_CACHE_SWEEP = (600, 3600)  # every 10 minutes, files older than an hour

# 3. Gradio's session store: ~0.4 MB a session. Gradio keeps 10,000, and closed ones for an hour.
LOCAL_SESSIONS = 10_000
SHARED_SESSIONS = 1_000
SHARED_SESSION_IDLE_S = 3600  # a shared studio forgets a session unused this long (its page reloads fresh)
SESSION_SWEEP_S = 300

def route_items(path: str) -> int | None:
    """The most JSON items (see JSON_ITEMS) a body to `path` may hold; None: not a JSON route.

    >>> route_items("/gradio_api/queue/join") == route_items("/sdapi/v1/txt2img") == JSON_ITEMS
    True
    >>> route_items("/gradio_api/upload") is None
    True
    """
    return JSON_ITEMS if path.startswith(JSON_PATHS + SDAPI_PATHS) else None


def json_items(chunk: bytes) -> int:
    """The JSON items a piece of a body opens or separates (an upper bound: it counts inside strings too)."""
    return sum(chunk.count(mark) for mark in STRUCTURE)


def route_cap(path: str) -> int:
    """The most bytes a request body to `path` may have."""
    if path == UPLOAD_PATH:
        return UPLOAD_BODY_BYTES
    if path.startswith(JSON_PATHS):
        return JSON_BODY_BYTES
    if path.startswith(SDAPI_PATHS):
        return SDAPI_OUTER_BYTES
    return SMALL_BODY_BYTES


class UploadQuota:
    """Bytes uploaded per client address within a window (fixed windows that start at an address's first
    upload). Thread-safe; remembers at most `addresses` addresses."""

    def __init__(self, limit_bytes: int = UPLOAD_QUOTA_BYTES, window_s: float = UPLOAD_QUOTA_WINDOW_S,
                 addresses: int = QUOTA_ADDRESSES, clock: Callable[[], float] = time.monotonic):
        self.limit_bytes, self.window_s, self.addresses, self.clock = limit_bytes, window_s, addresses, clock
        self._used: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (window start, bytes)
        self._lock = threading.Lock()

    def left(self, address: str) -> int:
        """Bytes `address` may still upload in its window."""
        with self._lock:
            start, used = self._used.get(address, (0.0, 0))
            if self.clock() - start >= self.window_s:
                used = 0
            return max(0, self.limit_bytes - used)

    def charge(self, address: str, nbytes: int) -> bool:
        """Count `nbytes` against `address`; False when that goes over its allowance."""
        with self._lock:
            now = self.clock()
            start, used = self._used.pop(address, (now, 0))
            if now - start >= self.window_s:
                start, used = now, 0
            self._used[address] = (start, used + nbytes)
            while len(self._used) > self.addresses:
                self._used.popitem(last=False)
            return used + nbytes <= self.limit_bytes


@dataclass(frozen=True)
class Limits:
    """What BodyLimits enforces: a cap per route, and on a shared studio an upload allowance per visitor."""

    cap: Callable[[str], int] = route_cap
    items: Callable[[str], int | None] = route_items
    quota: UploadQuota | None = field(default=None, hash=False)
    forwarded: str = FORWARDED_NEVER


class UploadCutOff(MultipartParseError):
    """Raised into Gradio's upload parser when an upload is cut off: a parse error is what makes it
    delete the part files it has already written (a mere disconnect leaves them in its folder for good)."""


class BodyLimits:
    """ASGI middleware: every HTTP request body bounded by its route's cap before it is read (413), and
    uploads by the visitor's allowance (429). WebSockets and lifespan pass through untouched."""

    def __init__(self, app: ASGIApp, limits: Limits = Limits()):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        # 1. The route's cap; for an upload on a shared studio, at most what the visitor has left.
        route_bytes = self.limits.cap(path)
        quota = self.limits.quota if path == UPLOAD_PATH else None
        address = client_address(scope, self.limits.forwarded) if quota else ""
        left = quota.left(address) if quota is not None else route_bytes
        cap = min(route_bytes, left)
        # 2. A declared length over it is refused before one byte of the body is read.
        declared = content_length(scope)
        if declared is not None and declared > cap:
            await self.refuse(send, path, cap, quota if left < route_bytes else None)
            return
        # 3. Else the body is counted as it streams (chunked, or a sender that outruns its Content-Length).
        seen = items = 0
        item_cap = self.limits.items(path)
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal seen, items, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                chunk = len(body)
                seen += chunk
                over_quota = quota is not None and chunk > 0 and not quota.charge(address, chunk)
                if item_cap is not None:
                    items += json_items(body)
                    if items > item_cap:
                        refused = True
                        if not started:
                            await self.answer(send, 413, f"Request body for {path} holds too many JSON items: "
                                                         f"at most {item_cap} (`,` `:` `[` `{{` counted).")
                        return {"type": "http.disconnect"}
                if seen > cap or over_quota:
                    refused = True
                    if not started:
                        by_quota = over_quota or left < route_bytes
                        await self.refuse(send, path, quota.left(address) if by_quota else cap,
                                          quota if by_quota else None)
                    if path == UPLOAD_PATH:
                        raise UploadCutOff(f"upload cut off at {cap} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer; the app's reply to its cut-off body goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # the app's complaint about the body it never got in full (Starlette's ClientDisconnect, ...)

    @staticmethod
    async def refuse(send: Send, path: str, cap: int, quota: UploadQuota | None) -> None:
        """413 naming the route's cap, or 429 when the visitor's upload allowance (`quota`) is what ran
        out (then `cap` is what is left of it)."""
        if quota is not None:
            status, text = 429, (f"Upload allowance used: {cap / MB:.1f} MB more may come from your address "
                                 f"in this window (at most {quota.limit_bytes / MB:.0f} MB per "
                                 f"{quota.window_s / 60:.0f} minutes). Try again later.")
        else:
            status, text = 413, f"Request body too large for {path}: at most {cap} bytes ({cap / MB:.1f} MB)."
        await BodyLimits.answer(send, status, text)

    @staticmethod
    async def answer(send: Send, status: int, text: str) -> None:
        body = text.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def content_length(scope: Scope) -> int | None:
    """The declared body length; None when absent (a chunked body). A malformed one counts as too large."""
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 2**62
    return None


# -- sessions ---------------------------------------------------------------------------------------

def forget_idle_sessions(state_holder: Any, idle_s: float) -> int:
    """Drop Gradio sessions (StateHolder entries) unused for `idle_s`; returns how many."""
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=idle_s)
    with state_holder.lock:
        idle = [s for s, used in list(state_holder.time_last_used.items()) if used < cutoff]
        for session in idle:
            state_holder.session_data.pop(session, None)
            state_holder.time_last_used.pop(session, None)
    return len(idle)


def session_sweep(idle_s: float, every_s: float = SESSION_SWEEP_S):
    """A lifespan for Gradio's app: every `every_s`, sessions idle `idle_s` are forgotten."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        async def sweep() -> None:
            while True:
                await asyncio.sleep(every_s)
                holder = getattr(app, "state_holder", None)
                if holder is not None:
                    gone = forget_idle_sessions(holder, idle_s)
                    if gone:
                        log.info("Forgot %d idle sessions", gone)

        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()

    return lifespan


# -- launch -----------------------------------------------------------------------------------------

def cache_sweep(shared: bool) -> tuple[int, int]:
    """Gradio's delete_cache: (how often, how old) in seconds."""
    return SHARED_CACHE_SWEEP if shared else LOCAL_CACHE_SWEEP


def limits_for(shared: bool, forwarded: str = FORWARDED_NEVER) -> Limits:
    """Body caps everywhere; on a shared studio an upload allowance per visitor too."""
    return Limits(quota=UploadQuota() if shared else None, forwarded=forwarded)


def launch_options(app_kwargs: dict, shared: bool, forwarded: str = FORWARDED_NEVER) -> dict:
    """launch() keywords: `app_kwargs` with BodyLimits in front of its middleware (and, on a shared
    studio, the session sweep), Gradio's own file cap and its session store's size."""
    from starlette.middleware import Middleware

    app_kwargs = {**app_kwargs, "middleware": [Middleware(BodyLimits, limits=limits_for(shared, forwarded)),
                                               *app_kwargs.get("middleware", [])]}
    if shared:
        app_kwargs["lifespan"] = session_sweep(SHARED_SESSION_IDLE_S)
    return {"app_kwargs": app_kwargs, "max_file_size": UPLOAD_FILE_BYTES,
            "state_session_capacity": SHARED_SESSIONS if shared else LOCAL_SESSIONS}
