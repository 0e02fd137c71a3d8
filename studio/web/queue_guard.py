"""Gradio's queue seen per visitor: a cap on the requests one visitor may have waiting for the GPU,
and Stop removing a visitor's waiting requests before they start.

Gradio offers no hook for either: its queue has one size for everybody, and its own cancel removes a
single event by id while cancelling *every* running task of a session id. So this is the one module
that reaches into `Blocks._queue` (its `push`, its per-concurrency queues and its message queues);
tests/app/test_visitor_queue.py drives both through a real server and fails if Gradio changes them.

A visitor is a Gradio session id plus the page's tab key (the API's calls have the empty key): the
session id travels in URLs (`/queue/data?session_hash=...`), the tab key only in request bodies, so
Stop on the page needs both.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from gradio.server_messages import ProcessCompletedMessage

from ..options import default

DEFAULT_MAX_WAITING = default("max_queued")  # requests one visitor may have waiting behind the running one
STOPPED_BEFORE_START = "Stopped before it started (cancelled while it waited in the queue)."


def visitor(session: str | None, key: str | None) -> str:
    """The name a visitor's runs are registered under (SessionJobs): session id and tab key."""
    return f"{session or ''}/{key or ''}"


@dataclass(frozen=True)
class Waiting:
    """One request in the GPU queue, as the guard recorded it when it was queued."""

    session: str
    key: str
    page: bool  # the page's own event (its client is the browser) rather than an API call


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

    # -- installing: wrap the queue's push ----------------------------------------------------------
    def install(self, blocks: Any) -> "QueueGuard":
        queue = blocks._queue
        original: Callable = queue.push

        async def push(body: Any, request: Any, username: str | None) -> tuple:
            fn = blocks.fns.get(body.fn_index) if body.fn_index is not None else None
            if fn is None or fn.concurrency_id != self.concurrency_id:
                return await original(body, request, username)
            who = Waiting(body.session_hash or "", self._key_of(fn, body.data), fn.api_name in self.page_fns)
            if self.count(who.session, who.key) >= self.max_waiting:
                return self._refusal(who)
            accepted, event_id, state = await original(body, request, username)
            if accepted and isinstance(event_id, str):
                with self._lock:
                    self._forget_gone(queue)
                    self._waiting[event_id] = who
            return accepted, event_id, state

        queue.push = push
        self._blocks = blocks
        return self

    def _key_of(self, fn: Any, data: Any) -> str:
        for index, block in enumerate(fn.inputs):
            if block is self.key_input and isinstance(data, list) and index < len(data):
                return data[index] if isinstance(data[index], str) else ""
        return ""

    def _refusal(self, who: Waiting) -> tuple:
        message = (f"{self.max_waiting} of your requests already wait for the GPU: at most {self.max_waiting} "
                   "per visitor on this studio (--max-queued); wait for one to start, or press Stop")
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


async def _json(send: Callable, status: int, payload: dict) -> None:
    raw = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})
