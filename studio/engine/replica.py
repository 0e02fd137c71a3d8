"""One Ray Serve replica: a whole `Studio` on one GPU, streaming a job's events to whoever asked.

What crosses between the front door (studio/engine/cluster.py) and a replica is data only: the
request in; the same frozen events a local job yields (Status, Progress, Preview, Result,
Cancelled) out, framed by a `Hello` (which replica took the job) and a `ReplicaState` (what it has
loaded, and the tokenizers the front door counts prompts with, when asked). Failures stay the
engine's own `StudioError`s, with their messages.

Cancelling is total: when the caller cancels the stream (Stop, a closed tab, a client gone), Serve
cancels this method's task; the job is told to stop (it ends within one denoising step) and the
method returns only once the job has ended, so Serve gives the replica's slot to the next request
when the device is really free, never while a step still runs on it. A stream closed any other way
(the generator dropped without a cancel) goes through the same `finally`.

Nothing here imports Ray: the front door wraps this class as a Serve deployment (`cluster.py`), so
a replica is also a plain object that tests can drive directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from .. import hardware
from ..config import StudioConfig
from ..devices import DeviceChoice
from ..errors import StudioError
from .admit import admit
from .studio import PromptReader, Studio

if TYPE_CHECKING:
    from ..request import GenerationRequest

log = logging.getLogger("studio")


@dataclass(frozen=True)
class Hello:
    """The first thing a replica sends for a job: who runs it (for logs, and to find it when it fails)."""

    replica: str
    pid: int
    host: str


@dataclass(frozen=True)
class ReplicaState:
    """The last thing a replica sends for a job: its loaded models, and a prompt reader when asked."""

    replica: str
    loaded: tuple[str, ...]
    reader: PromptReader | None = None


_END = object()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class StudioReplica:
    """The engine of one replica. `warm_model` is loaded before the replica reports ready, so the
    first request does not wait for it (a model that cannot be loaded is logged, and loaded or
    refused by the request that asks for it, with the engine's own message)."""

    def __init__(self, config: StudioConfig, warm_model: str | None = None, name: str = "", lease: Any = None,
                 actor: str = ""):
        self.studio = Studio(config)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.actor = actor  # this replica's Ray actor name, by which the front door sees it is alive
        if warm_model:
            try:
                self.studio.load(warm_model)
            except StudioError as exc:
                log.warning("replica %s could not load %s at start: %s", self.name, warm_model, exc)
        self.check_in(lease)

    def card(self) -> hardware.DeviceCard:
        return hardware.card(self.studio.device.describe(), self.name, self.actor)

    def check_in(self, lease: Any) -> None:
        """This replica's card, to the front door's roster (studio/lease.py); not waited for."""
        if lease is None:
            return
        try:
            lease.check_in.remote(self.card())
        except Exception as exc:  # the page's "Runs on" misses a line; the job itself goes on
            log.warning("replica %s could not check in with the front door: %s: %s", self.name,
                        type(exc).__name__, exc)

    def device(self) -> DeviceChoice:
        return self.studio.device

    def state(self, reader_for: str | None = None) -> ReplicaState:
        reader = None
        if reader_for:
            try:
                reader = self.studio.prompt_reader(reader_for)
            except StudioError:  # a model this studio cannot name: no counts, the job said why
                reader = None
        return ReplicaState(self.name, tuple(self.studio.loaded_models()), reader)

    async def load(self, model: str) -> ReplicaState:
        """Load a model here (the front door's warm-up) and say what is loaded."""
        await asyncio.to_thread(self.studio.load, model)
        return self.state(model)

    async def place(self, model: str | None) -> None:
        """Tell the router this replica holds `model` (the deployment marks it serve.multiplexed)."""

    async def generate(self, request: GenerationRequest, want_reader: bool = False,
                       lease: Any = None) -> AsyncIterator[Any]:
        """The job's events, framed by Hello and ReplicaState. The job runs in its own thread; this
        coroutine only passes events on, so the replica's event loop stays free to hear a cancel.
        `lease`: the caller's studio.lease.Lease actor, which ends with the caller's process: the job is
        then cancelled, since a dead caller sends no cancel (Serve would run its job to the end)."""
        loop = asyncio.get_running_loop()
        request = admit(request, self.studio.config)  # checked again here, as this replica's own
        model = request.model
        events: asyncio.Queue = asyncio.Queue()
        job = self.studio.generate(request)

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, item)

        def pump() -> None:
            try:
                for event in job:
                    put(event)
            except BaseException as exc:  # handed to the stream below
                put(_Failed(exc))
            finally:
                put(_END)

        await self.place(model)
        yield Hello(self.name, os.getpid(), socket.gethostname())
        self.check_in(lease)  # a restarted lease has lost the roster; and the memory shown is this job's
        ended = loop.run_in_executor(None, pump)  # done once the job has ended, whichever way
        watch = asyncio.ensure_future(_cancel_when_lost(lease, job)) if lease is not None else None
        try:
            while (item := await events.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.error
                yield item
            yield self.state(model if want_reader else None)
        finally:
            # Cancelled (asyncio.CancelledError: the caller's cancel), closed, or failed: the job stops
            # within a step, and the slot is freed once it has (a second cancel does not cut this short).
            job.cancel()
            if watch is not None:
                watch.cancel()
            while not ended.done():
                try:
                    await asyncio.shield(ended)
                except asyncio.CancelledError:
                    continue


async def _cancel_when_lost(lease: Any, job: Any) -> None:
    try:
        await lease.hold.remote()  # never returns; cancelled when the job ends first
    except Exception:  # the caller's process died: nobody will read or cancel this job
        log.warning("the caller of a job went away without cancelling it; cancelling it here")
        job.cancel()
