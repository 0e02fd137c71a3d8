"""The runs in progress, by caller (a browser tab, a gradio_client Client, an A1111 API user), so
that Stop cancels the caller's own work only, A1111's skip ends the caller's current batch, and the
page's queue estimates count every run, whichever door it came through."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections import deque
from typing import Iterator, Protocol

STOP_MEMORY_S = 30.0  # how long "your run was stopped at step k" is remembered for a late Stop reply
NOTHING_TO_STOP = "Nothing to stop."
STOP_WAIT_S = 10.0  # how long Stop waits for a run to end (it ends within one denoising step)
RECENT_RUNS = 8  # finished runs whose durations make the queue's "about N s"


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Run:
    """One call's work, possibly several jobs (batch count): `cancel()` stops the job running now
    and every job still to come; `skip()` (A1111's) stops only the job running now. `stopped_at`
    records where it stopped, for Stop's reply."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self.finished = threading.Event()
        self._job: Cancellable | None = None
        self._lock = threading.Lock()
        self.stopped_at: tuple[int, int] | None = None
        self.started = time.monotonic()
        self.eta_s: float | None = None  # seconds left, all batches and passes (set as steps report)

    def start(self, job: Cancellable) -> None:
        with self._lock:
            self._job = job
        if self._cancelled.is_set():
            job.cancel()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            job = self._job
        if job is not None:
            job.cancel()

    def skip(self) -> None:
        with self._lock:
            job = self._job
        if job is not None:
            job.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def stopped_message(self) -> str:
        if self.stopped_at is None:
            return "Stopped."
        step, total = self.stopped_at
        return f"Stopped at step {step}/{total}."


class SessionJobs:
    """Running runs by caller. One instance per studio, shared by its callers; the only thing a
    caller can do through it is stop what that same caller started."""

    def __init__(self) -> None:
        self._runs: dict[str, list[Run]] = {}
        self._stopped: dict[str, tuple[float, str]] = {}  # session -> (when, message) of its last stop
        self._durations: deque[float] = deque(maxlen=RECENT_RUNS)  # seconds, runs that finished
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self, session: str, run: Run) -> Iterator[Run]:
        with self._lock:
            self._runs.setdefault(session, []).append(run)
        try:
            yield run
        except GeneratorExit:  # the stream was closed (Gradio's cancel, a client gone): stop the work
            run.cancel()
            raise
        finally:
            now = time.monotonic()
            with self._lock:
                runs = self._runs.get(session, [])
                if run in runs:
                    runs.remove(run)
                if not runs:
                    self._runs.pop(session, None)
                if run.cancelled:
                    self._stopped[session] = (now, run.stopped_message())
                else:
                    self._durations.append(now - run.started)
                self._stopped = {s: v for s, v in self._stopped.items() if now - v[0] < STOP_MEMORY_S}
            run.finished.set()

    def stop(self, session: str, wait_s: float = STOP_WAIT_S) -> str:
        """Stop every run of this session, wait for them to end, and say where they stopped."""
        with self._lock:
            runs = list(self._runs.get(session, []))
        for run in runs:
            run.cancel()
        for run in runs:
            run.finished.wait(wait_s)
        with self._lock:
            when, message = self._stopped.get(session, (0.0, ""))
            recent = time.monotonic() - when < STOP_MEMORY_S
        if runs:
            return " ".join(run.stopped_message() if run.finished.is_set() else
                            f"Stopping: the current step is still running (asked {wait_s:g}s ago); it ends there."
                            for run in runs)
        # Nothing running now: Gradio's own cancel (or a closed connection) may have just ended it.
        return message if recent and message else NOTHING_TO_STOP

    def cancel(self, session: str) -> None:
        """Stop every run of this session without waiting (A1111's interrupt)."""
        with self._lock:
            runs = list(self._runs.get(session, []))
        for run in runs:
            run.cancel()

    def skip(self, session: str) -> None:
        """End the current batch of each run of this session; their next batches start (A1111's skip)."""
        with self._lock:
            runs = list(self._runs.get(session, []))
        for run in runs:
            run.skip()

    def busy(self) -> float | None:
        """Seconds the runs in progress still need (their ETA; 0 before their first step), or None
        when nothing runs."""
        with self._lock:
            runs = [run for group in self._runs.values() for run in group]
        return sum(run.eta_s or 0.0 for run in runs) if runs else None

    def running_total(self) -> int:
        """How many runs are in progress, every session's."""
        with self._lock:
            return sum(len(group) for group in self._runs.values())

    def typical_s(self) -> float | None:
        """The median duration of recent finished runs (None before the first)."""
        with self._lock:
            return statistics.median(self._durations) if self._durations else None

    def running_count(self, session: str) -> int:
        with self._lock:
            return len(self._runs.get(session, []))
