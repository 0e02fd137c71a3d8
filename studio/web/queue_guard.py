"""Gradio's queue seen per visitor: a cap on the requests one visitor may have waiting for the GPU,
and Stop removing a visitor's waiting requests before they start.

Gradio offers no hook for either: its queue has one size for everybody, and its own cancel removes a
single event by id while cancelling *every* running task of a session id. So this is the one module
that reaches into `Blocks._queue` (its `push`, its per-concurrency queues and its message queues);
tests/app/test_visitor_queue.py drives both through a real server and fails if Gradio changes them.

A visitor is a Gradio session id plus the page's tab key (the API's calls have the empty key): the
session id travels in URLs (`/queue/data?session_hash=...`), the tab key only in request bodies, so
Stop on the page needs both.

Both are chosen by the client, so on a studio others can reach (a `--host` other than this machine, a
`--share` link, a Space) the guard also counts per address (visitors.client_address): one address keeps
at most `max_waiting + 1` requests waiting, and never more than half the queue, however many session
ids it makes up. There each session id is bound to the address that used it first
(sessions.SessionOwners), and StreamGuard keeps a session's event stream to that address and to one
stream at a time. The queue's size (`queue(max_size=...)`) counts the GPU's waiting requests only: the
page's helpers (the parsed prompt, PNG Info, the form's updates) never wait behind a full GPU queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from gradio.server_messages import ProcessCompletedMessage

from ..options import default
from .sessions import SessionOwners
from .visitors import (FORWARDED_ALWAYS, FORWARDED_NEVER, client_address, forwarding, is_shared,
                       set_visitor_cookie, visitor_cookie)

DEFAULT_MAX_WAITING = default("max_queued")  # requests one visitor may have waiting behind the running one
STOPPED_BEFORE_START = "Stopped before it started (cancelled while it waited in the queue)."
HELPER_QUEUE_FACTOR = 4  # the page's helpers may have this many times the GPU queue's size waiting
FOREIGN_SESSION = ("session_hash: this session belongs to another visitor (a session id is good only for the "
                   "address and browser that first used it); reload the page")


def visitor(session: str | None, key: str | None) -> str:
    """The name a visitor's runs are registered under (SessionJobs): session id and tab key."""
    return f"{session or ''}/{key or ''}"


@dataclass(frozen=True)
class Waiting:
    """One request in the GPU queue, as the guard recorded it when it was queued."""

    session: str
    key: str
    page: bool  # the page's own event (its client is the browser) rather than an API call
    address: str = ""  # where it came from, on a studio others can reach ("" on a local one)


class QueueGuard:
    """Installed on a page's Blocks after `queue()`: guards the events of one concurrency id (the GPU
    slot). `key_input` is the hidden tab-key component; events without it carry the empty key."""

    def __init__(self, concurrency_id: str, key_input: Any, max_waiting: int = DEFAULT_MAX_WAITING,
                 page_fns: Iterable[str] = ()):
        if max_waiting < 1:
            raise ValueError(f"max_waiting: {max_waiting} is not valid; expected a whole number >= 1")
        self.concurrency_id = concurrency_id
        self.key_input = key_input
        self.max_waiting = max_waiting
        self.page_fns = frozenset(page_fns)  # api names of the page's own events
        self._waiting: dict[str, Waiting] = {}  # event id -> who queued it
        self._lock = threading.Lock()
        self._blocks: Any = None
        self.queue_size: int | None = None  # the GPU queue's size: `queue(max_size=...)`, taken over by install
        self.owners = SessionOwners()  # session id -> the address that used it first (shared studios)

    # -- who can reach the studio ---------------------------------------------------------------------
    def reach(self) -> tuple[bool, str]:
        """(shared, whose X-Forwarded-For to believe): whether others can reach this studio, and how its
        visitors are told apart (visitors.py). Read per request: launch() sets the server's name and
        share after the page is built."""
        blocks = self._blocks
        space, share = bool(os.environ.get("SPACE_ID")), bool(getattr(blocks, "share", False))
        shared = is_shared(getattr(blocks, "server_name", None), share, space)
        return shared, forwarding(space, share) if shared else FORWARDED_NEVER

    def address_cap(self) -> int:
        """Requests one address may have waiting: a queue share (one more than a visitor's, so one
        person with two tabs is not refused), never more than half the queue."""
        half = self.queue_size // 2 if self.queue_size else self.max_waiting + 1
        return max(1, min(self.max_waiting + 1, half))

    # -- installing: wrap the queue's push ----------------------------------------------------------
    def install(self, blocks: Any) -> "QueueGuard":
        queue = blocks._queue
        original: Callable = queue.push
        # The queue's size bounds the GPU's waiting requests only (checked below); Gradio's own check
        # counts every event, so a full GPU queue refused the page's helpers too.
        self.queue_size, queue.max_size = queue.max_size, None

        async def push(body: Any, request: Any, username: str | None) -> tuple:
            fn = blocks.fns.get(body.fn_index) if body.fn_index is not None else None
            shared, proxy = self.reach()
            scope = getattr(request, "scope", {})
            address = client_address(scope, proxy) if shared else ""
            if shared and not self.owners.claim(body.session_hash or "", address, visitor_cookie(scope)):
                return False, FOREIGN_SESSION, "error"
            if fn is None or fn.concurrency_id != self.concurrency_id:
                if fn is not None and self.queue_size and self._others_waiting(queue) >= HELPER_QUEUE_FACTOR * self.queue_size:
                    return self._full(HELPER_QUEUE_FACTOR * self.queue_size)
                return await original(body, request, username)
            who = Waiting(body.session_hash or "", self._key_of(fn, body.data), fn.api_name in self.page_fns, address)
            if self.queue_size and len(self._queued()) >= self.queue_size:
                return self._full(self.queue_size)
            if self.count(who.session, who.key) >= self.max_waiting:
                return self._refusal(who)
            if shared and (mine := self.count_address(address)) >= self.address_cap():
                return self._refusal(who, mine)
            accepted, event_id, state = await original(body, request, username)
            if accepted and isinstance(event_id, str):
                with self._lock:
                    self._forget_gone(queue)
                    self._waiting[event_id] = who
            return accepted, event_id, state

        queue.push = push
        self._blocks = blocks
        return self

    def _full(self, size: int) -> tuple:
        return False, f"Queue is full. Max size is {size}: try again when a request has started.", "queue_full"

    def _others_waiting(self, queue: Any) -> int:
        return sum(len(events.queue) for slot, events in queue.event_queue_per_concurrency_id.items()
                   if slot != self.concurrency_id)

    def _key_of(self, fn: Any, data: Any) -> str:
        for index, block in enumerate(fn.inputs):
            if block is self.key_input and isinstance(data, list) and index < len(data):
                return data[index] if isinstance(data[index], str) else ""
        return ""

    def _refusal(self, who: Waiting, from_address: int | None = None) -> tuple:
        if from_address is None:
            message = (f"{self.max_waiting} of your requests already wait for the GPU: at most {self.max_waiting} "
                       "per visitor on this studio (--max-queued); wait for one to start, or press Stop")
        else:
            message = (f"Your address already has {from_address} requests waiting for the GPU: at most "
                       f"{self.address_cap()} per address on this shared studio, whatever the tab or client; "
                       "wait for one to start, or press Stop")
        if who.page:  # the page shows a plain message as an error toast
            return False, message, "error"
        # gradio_client shows a validation error's message (a plain 400 becomes "Bad Request").
        return False, [{"__type__": "validate", "is_valid": False, "parameter_name": "queue",
                        "message": message}], "validator_error"

    def _queued(self) -> list[Any]:
        queue = self._blocks._queue if self._blocks is not None else None
        if queue is None or self.concurrency_id not in queue.event_queue_per_concurrency_id:
            return []
        return list(queue.event_queue_per_concurrency_id[self.concurrency_id].queue)

    def _forget_gone(self, queue: Any) -> None:
        known = queue.event_ids_to_events
        for event_id in [e for e in self._waiting if e not in known]:
            del self._waiting[event_id]

    # -- what a visitor has waiting ------------------------------------------------------------------
    def _mine(self, session: str, key: str) -> list[Any]:
        with self._lock:
            return [event for event in self._queued()
                    if (who := self._waiting.get(event._id)) is not None and (who.session, who.key) == (session, key)]

    def count(self, session: str, key: str) -> int:
        return len(self._mine(session, key))

    def count_address(self, address: str) -> int:
        with self._lock:
            return sum(1 for event in self._queued()
                       if (who := self._waiting.get(event._id)) is not None and who.address == address)

    def place(self, session: str, key: str) -> int | None:
        """How many requests wait ahead of the visitor's first waiting one (None: none waiting)."""
        with self._lock:
            for index, event in enumerate(self._queued()):
                who = self._waiting.get(event._id)
                if who is not None and (who.session, who.key) == (session, key):
                    return index
        return None

    async def drop(self, session: str | None, key: str | None) -> int:
        """Remove the visitor's waiting requests; each one's client is told it stopped before starting."""
        if not session:
            return 0
        return await self._remove(lambda who: (who.session, who.key) == (session, key or ""))

    async def drop_event(self, session: str, event_id: str) -> int:
        """Remove one waiting request (gradio_client's cancel of a job still in the queue)."""
        return await self._remove(lambda who: who.session == session, event_id)

    def running_or_pending(self, session: str, event_id: str) -> bool:
        queue = self._blocks._queue if self._blocks is not None else None
        return queue is not None and event_id in queue.pending_event_ids_session.get(session, ())

    async def _remove(self, wanted: Callable[[Waiting], bool], event_id: str | None = None) -> int:
        if self._blocks is None:
            return 0
        queue = self._blocks._queue
        removed = 0
        async with queue.delete_lock:
            with self._lock:
                picked = [(event, who) for event in self._queued()
                          if (event_id is None or event._id == event_id)
                          and (who := self._waiting.get(event._id)) is not None and wanted(who)]
            for event, who in picked:
                try:
                    queue.event_queue_per_concurrency_id[self.concurrency_id].queue.remove(event)
                except ValueError:  # it started meanwhile: Stop cancels it as a running job
                    continue
                removed += 1
                queue.event_ids_to_events.pop(event._id, None)
                with self._lock:
                    self._waiting.pop(event._id, None)
                if who.page:  # the page's status line says what Stop did: its outputs are left as they are
                    outputs = getattr(getattr(event, "fn", None), "outputs", ()) or ()
                    output, success = {"data": [{"__type__": "update"}] * len(outputs)}, True
                else:  # an API client gets an error it can read, not an empty result
                    output, success = {"error": STOPPED_BEFORE_START, "visible": True}, False
                queue.send_message(event, ProcessCompletedMessage(output=output, success=success))
        return removed


class CancelGuard:
    """ASGI middleware in front of Gradio's `POST .../cancel` (gradio_client's `job.cancel()`).

    Gradio's route cancels every running task of the session id it is given, whatever the event id.
    Here a cancel passes only with an event id that session really has pending (event ids are never
    in URLs), and a cancel of a request still waiting removes just that request: the same client's
    running job goes on.
    """

    def __init__(self, app: Any, guard: QueueGuard):
        self.app = app
        self.guard = guard

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith("/cancel"):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False) and sum(map(len, chunks)) < 64 * 1024
        body = b"".join(chunks)
        try:
            data = json.loads(body)
            session, event_id = str(data.get("session_hash") or ""), str(data.get("event_id") or "")
        except (ValueError, AttributeError):
            session = event_id = ""
        if not self.guard.running_or_pending(session, event_id):
            await _json(send, 404, {"detail": "event_id: no such request of this session"})
            return
        if await self.guard.drop_event(session, event_id):
            await _json(send, 200, {"success": True})
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


STREAM_HANDOVER_S = 2.0  # a session's previous stream may take this long to end before a new one is refused


class StreamGuard:
    """ASGI middleware in front of Gradio's session streams: `GET .../queue/data?session_hash=...` (and
    `.../heartbeat/<session>`, which the page does not use).

    Gradio hands a session's messages to whoever opens its stream, and cancels the session's running
    and waiting work when that stream hangs up; the session id is in the URL. On a studio others can
    reach, every answer to a browser without the visitor cookie sets one (visitors.py); a stream opens
    only for the visitor that used the session first, its address and its cookie (403 otherwise), and
    only one stream per session is open at a time (409 for a second one while the first is live: it
    reads nothing and its hang-up cancels nothing). A local studio is left as Gradio serves it.
    """

    def __init__(self, app: Any, guard: QueueGuard):
        self.app = app
        self.guard = guard
        self._live: dict[str, int] = {}  # session id -> streams open

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        shared, proxy = self.guard.reach() if scope.get("type") == "http" else (False, FORWARDED_NEVER)
        if not shared:
            await self.app(scope, receive, send)
            return
        cookie = visitor_cookie(scope)
        if not cookie:  # the visitor's first answer brings its cookie (visitors.py)
            send = _with_header(send, set_visitor_cookie(proxy == FORWARDED_ALWAYS))
        session, stream = _session_stream(scope)
        if session is None:
            await self.app(scope, receive, send)
            return
        if not self.guard.owners.claim(session, client_address(scope, proxy), cookie):
            await _json(send, 403, {"detail": FOREIGN_SESSION})
            return
        if not stream:
            await self.app(scope, receive, send)
            return
        if not await self._alone(session):
            await _json(send, 409, {"detail": "session_hash: this session's stream is already open elsewhere"})
            return
        self._live[session] = self._live.get(session, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._live[session] -= 1
            if not self._live[session]:
                del self._live[session]

    async def _alone(self, session: str) -> bool:
        """No other stream of the session is open (one that is just ending gets STREAM_HANDOVER_S)."""
        deadline = asyncio.get_running_loop().time() + STREAM_HANDOVER_S
        while self._live.get(session):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def _session_stream(scope: dict) -> tuple[str | None, bool]:
    """(session id, whether it is the event stream) of a request for a session's stream or heartbeat."""
    if scope.get("type") != "http" or scope.get("method") != "GET":
        return None, False
    path = scope.get("path", "")
    if path.endswith("/queue/data"):
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return (query.get("session_hash") or [""])[0], True
    if "/heartbeat/" in path:
        return path.rsplit("/heartbeat/", 1)[1], False
    return None, False


def _with_header(send: Callable, header: tuple[bytes, bytes]) -> Callable:
    """`send` with `header` added to the response's start."""

    async def sending(message: dict) -> None:
        if message.get("type") == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), header]}
        await send(message)

    return sending


async def _json(send: Callable, status: int, payload: dict) -> None:
    raw = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})
