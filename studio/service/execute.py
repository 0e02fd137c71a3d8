"""Executing a plan, whichever door it came through: its batches run as jobs on the engine, one after
another, registered under the caller (so their Stop can cancel them), their images saved as PNGs
with metadata, and every step of the way reported as a `RunView` of what the call has so far.

Here, batches run in this process and Stop cancels the job itself. On ZeroGPU they run in the GPU
worker `spaces` forks, asking for the GPU time their plan needs (`GpuBudget`): only data crosses (the
plan in, views out), and Stop closes the stream, which `spaces` turns into closing the worker's,
whose jobs then cancel.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import hosting
from ..config import StudioConfig
from ..engine.interface import Engine
from ..engine.partial import Interrupted
from ..errors import StudioError
from ..events import Cancelled, Preview, Progress, Result, Status
from ..fields import TABLE, FieldTable
from ..options import default
from ..outputs import OutputFolder
from .plan import Plan, make_plan
from .plot_run import with_grids
from .registry import Run, SessionJobs

log = logging.getLogger("studio")
HISTORY_LIMIT = 200  # images a caller's history keeps (paths only: a few KB)
HEARTBEAT_S = 1.0  # a view goes out at least this often, so a cancel or a gone client always lands
ProgressFn = Callable[..., None]  # gr.Progress's shape: (fraction or (done, total), desc=..., unit=...)


@dataclass(frozen=True)
class SavedImage:
    """One finished image: the PNG a door may hand out (with its metadata), its seed and infotext."""

    path: str
    seed: int
    infotext: str


@dataclass
class RunView:
    """What one call has produced so far; `changed` names what the last event changed. Plain data:
    on ZeroGPU it crosses from the GPU worker as a pickle."""

    saved: list[SavedImage] = field(default_factory=list)  # in order, every batch's
    infotext: str | None = None  # the first image's
    seed: int | None = None  # the first image's
    status: str = ""
    preview: Any = None  # the newest live preview (a PIL image)
    history: list[str] = field(default_factory=list)  # this caller's PNG paths, newest first
    control_maps: dict[int, Any] = field(default_factory=dict)  # ControlNet unit index -> the map it used
    batch: int = 0  # the batch running now (0-based) and how many the call has
    batches: int = 1
    step: int = 0  # the running batch's step and its total (every pass)
    total: int = 0
    model_name: str = ""  # the model the results came from, as their infotext names it
    notes: list[str] = field(default_factory=list)  # batches stopped or skipped, and where
    # Interrupted where the call asked for it (`execute(partial=True)`): the stopped batch's images as
    # far as they got, their seeds and infotexts (never saved: a door hands them out as they are)
    partial: Interrupted | None = None
    changed: frozenset[str] = frozenset()

    @property
    def images(self) -> list[str]:
        return [image.path for image in self.saved]


def status_line(event: Progress, batch: int = 0, batches: int = 1, eta_s: float | None = None,
                elapsed_s: float | None = None) -> str:
    """The status while a batch runs. `eta_s` and `elapsed_s`: the whole call's (every batch), where
    the caller knows them; else the batch's own."""
    prefix = f"Batch {batch + 1}/{batches} · " if batches > 1 else ""
    eta = event.eta_s if eta_s is None else eta_s
    elapsed = event.elapsed_s if elapsed_s is None else elapsed_s
    return (f"{prefix}Step {event.step}/{event.total} · {event.it_per_s:.2f} it/s · "
            f"ETA {eta:.1f}s · {elapsed:.1f}s elapsed")


class Service:
    """The studio as its front doors use it: `plan` a call's settings, `execute` the plan for a caller.
    One per studio: `spaces` registers its GPU functions when the page is built."""

    def __init__(self, engine: Engine, outputs: OutputFolder, jobs: SessionJobs | None = None,
                 gpu_cap_s: int = default("gpu_duration"), start_model: str = "") -> None:
        self.engine, self.outputs = engine, outputs
        self.jobs = jobs if jobs is not None else SessionJobs()
        self.remote = hosting.zero_gpu_active()

        def batches(key: str, plan: Plan, history: list[str]) -> Iterator[RunView]:
            yield from self._batches(key, plan, history)

        self._on_gpu = hosting.on_gpu(batches, hosting.GpuBudget(gpu_cap_s, start_model))

    @property
    def config(self) -> StudioConfig:
        return self.engine.config

    def plan(self, settings: Mapping[str, Any], table: FieldTable = TABLE) -> Plan:
        """A call's settings by field name, checked against this studio's rules (paths, cost)."""
        return make_plan(settings, self.config, table)

    def execute(self, key: str, plan: Plan, history: Sequence[str] = (),
                progress: ProgressFn | None = None, partial: bool = False) -> Iterator[RunView]:
        """Run a plan's batches one after another for caller `key`, yielding the view after each
        event. Raises StudioError only (anything unexpected is logged and named). `partial`: a Stop
        mid-denoising leaves the images reached in `view.partial` (A1111's interrupt), where the batches
        run in this process (on ZeroGPU a Stop closes the worker's stream: nothing more comes back).
        An X/Y/Z plot's grids are drawn after its cells, and come first (plot_run.py)."""
        views = self._execute(key, plan, history, progress, partial)
        yield from views if plan.plot is None else with_grids(views, plan, self.outputs, HISTORY_LIMIT)

    def _execute(self, key: str, plan: Plan, history: Sequence[str] = (),
                 progress: ProgressFn | None = None, partial: bool = False) -> Iterator[RunView]:
        if not self.remote:
            yield from self._batches(key, plan, list(history), progress, partial)
            return
        run = Run()  # what Stop finds in this process; the worker's own runs live in its memory
        view = RunView(history=list(history), status="Waiting for a GPU", batches=len(plan),
                       changed=frozenset({"status"}))
        with self.jobs.running(key, run):
            yield view
            stream = self._on_gpu(key, plan, list(view.history))
            try:
                for view in stream:
                    yield view
                    if run.cancelled:
                        break
            finally:
                stream.close()  # the worker closes its stream at its next update: its job cancels
            if run.cancelled:
                view.status, view.changed = run.stopped_message(), frozenset({"status"})
                yield view

    def _batches(self, key: str, plan: Plan, history: list[str],
                 progress: ProgressFn | None = None, partial: bool = False) -> Iterator[RunView]:
        engine = self.engine
        view = RunView(history=list(history), batches=len(plan))
        run = Run()
        # Progress and previews reach the caller at most once per preview interval (10 a second by
        # default): every update costs the door a round of processing and streaming on the same cores
        # as the denoising, which on fast steps cost more than the previews themselves. What changed in
        # between is carried by the next update; the last step and every result always go out.
        interval = engine.config.preview_interval_s
        pending: set[str] = set()
        last_update = [0.0]

        def changed(*names: str) -> RunView:
            view.changed = frozenset(pending.union(names))
            pending.clear()
            last_update[0] = time.monotonic()
            return view

        def due(*names: str, final: bool = False) -> bool:
            pending.update(names)
            return final or time.monotonic() - last_update[0] >= interval

        with self.jobs.running(key, run):
            # Hand control back once before any work: a request cancelled while it waited in the queue
            # (Stop, a client's cancel, a closed tab) is stopped here, before its first step.
            view.status = "Starting"
            yield changed("status")
            started = time.monotonic()
            for n, batch in enumerate(plan):
                if run.cancelled:
                    break
                view.batch, view.step, view.total = n, 0, batch.steps
                # Asked only where wanted: an engine that cannot hand back partial images takes the request alone.
                job = engine.generate(batch, partial=True) if partial else engine.generate(batch)
                run.start(job)
                events = job.events(idle_s=HEARTBEAT_S)
                try:
                    for event in events:
                        if event is None:  # nothing new for a while: a heartbeat
                            yield changed()
                        elif isinstance(event, Status):
                            if progress:
                                progress(0, desc=event.message)
                            view.status = event.message
                            yield changed("status")
                        elif isinstance(event, Progress):
                            per_batch = event.elapsed_s + event.eta_s
                            # The whole call's: this batch's rest and the batches to come, each as long.
                            run.eta_s = event.eta_s + (len(plan) - n - 1) * per_batch
                            view.status = status_line(event, n, len(plan), run.eta_s, time.monotonic() - started)
                            view.step, view.total = event.step, event.total
                            if due("status", final=event.step == event.total):
                                if progress:
                                    progress((n * event.total + event.step, len(plan) * event.total),
                                             desc="Denoising", unit="steps")
                                yield changed()
                        elif isinstance(event, Preview):
                            view.preview = event.image
                            if due("preview"):
                                yield changed()
                        elif isinstance(event, Cancelled):
                            where = f"step {event.step}/{event.total}"
                            if run.cancelled:  # Stop: this batch and every one to come
                                run.stopped_at = (event.step, event.total)
                                view.status = f"Stopped at {where}."
                                if isinstance(event, Interrupted):
                                    view.partial = event
                                    pending.add("partial")
                            else:  # skipped: the next batch starts
                                view.status = f"Batch {n + 1}/{len(plan)} skipped at {where}."
                            view.notes.append(f"batch {n + 1} stopped at {where}")
                            yield changed("status")
                        elif isinstance(event, Result):
                            self._keep(view, event, n, len(plan))
                            yield changed("images", "infotext", "seed", "status", "history")
                except StudioError:
                    raise
                except Exception as exc:  # keep serving; the message names what failed
                    log.exception("generation failed")
                    raise StudioError(f"Generation failed: {type(exc).__name__}: {exc}") from None
                finally:
                    job.cancel()  # a Stop press or a closed connection ends the job, not just the stream
                    events.close()

    def _keep(self, view: RunView, result: Result, n: int, batches: int) -> None:
        """A batch's images saved (PNGs with metadata) and added to the view."""
        outputs = self.outputs
        saved = [SavedImage(outputs.servable(path), seed, text)
                 for path, seed, text in zip(outputs.save(result), result.seeds, result.infotexts)]
        view.saved += saved
        view.history = ([image.path for image in saved][::-1] + view.history)[:HISTORY_LIMIT]  # newest first
        view.model_name = result.model_name
        if n == 0:
            view.infotext, view.seed = result.infotexts[0], result.seed
            view.control_maps = dict(result.control_maps)
        notes = " ".join(result.notices)
        where = f"Batch {n + 1}/{batches} done" if batches > 1 else "Done"
        seeds = f"seed {result.seed}" if len(view.saved) == 1 else \
            f"seeds {result.seeds[0]}–{result.seeds[-1]}; shown: seed {view.seed}"  # the status names the shown one
        if len(view.saved) > 1 and len(result.seeds) == 1:
            seeds = f"seed {result.seed}; shown: seed {view.seed}"
        view.status = f"{where} in {result.timings.total_s:.1f}s ({seeds}). {notes}".strip()
