"""A Job: one generation's events as a stream that any thread can cancel.

The work runs in a thread of its own and puts events on a queue; the reader takes whatever is
waiting at once and drops stale previews and progress (`coalesce`), so a slow reader gets the
newest and the denoising loop never waits for it.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Callable, Iterator

from ..events import Cancelled, Event, Preview, Progress, Result

if TYPE_CHECKING:
    from ..request import GenerationRequest

_END = object()  # queue sentinel: the work has finished
Work = Callable[[Callable[[Event], None], threading.Event], None]  # (emit, cancel) -> None


def coalesce(batch: list[Event]) -> list[Event]:
    """Events waiting together, minus stale previews and progress: a slow reader gets the newest.

    This is where frames are dropped for a slow consumer: the denoising loop never waits for one.
    """
    newest = {type(e): i for i, e in enumerate(batch) if isinstance(e, (Preview, Progress))}
    return [e for i, e in enumerate(batch) if newest.get(type(e), i) == i]


class Job:
    """One generation. Iterate it for events; `cancel()` from any thread stops it."""

    def __init__(self, request: GenerationRequest, work: Work):
        self.request = request
        self._work = work
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._started = False

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        """True once the work is over, whether or not its events have been read yet."""
        return self._finished.is_set()

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self, idle_s: float | None = None) -> Iterator[Event | None]:
        """The job's events; with `idle_s`, also None after every `idle_s` seconds without one (a
        heartbeat: a reader that yields on it gives its own caller a chance to stop it, as Gradio
        does when a client has gone away while the model loads or a long step runs)."""
        if self._started:
            raise RuntimeError("a Job can be iterated once")
        self._started = True
        events: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self._work(events.put, self._cancel)
            except BaseException as exc:  # handed to the consumer's thread below
                failure.append(exc)
            finally:
                self._finished.set()
                events.put(_END)

        worker = threading.Thread(target=work, name="studio-job", daemon=True)
        worker.start()
        try:
            done = False
            while not done:
                try:
                    batch = [events.get(timeout=idle_s)]
                except queue.Empty:
                    yield None
                    continue
                while True:  # take whatever else is already waiting
                    try:
                        batch.append(events.get_nowait())
                    except queue.Empty:
                        break
                if _END in batch:
                    done = True
                    batch = batch[: batch.index(_END)]
                yield from coalesce(batch)
            if failure:
                raise failure[0]
        finally:
            # The consumer stopped early (closed generator, client gone): stop the work too.
            self._cancel.set()
            worker.join()

    def result(self) -> Result | Cancelled:
        """Run to the end and return the final event."""
        final: Result | Cancelled | None = None
        for event in self:
            if isinstance(event, (Result, Cancelled)):
                final = event
        assert final is not None
        return final
