"""One Generate click, whoever clicks: the page's button and the `/generate` API both run it.

Settings (by field name) become a request and its batches (batch count); each batch runs as a job
registered under the caller's session (so their Stop can cancel it), its images are saved as PNGs
with metadata, and every step of the way is reported as a `RunView` of what the click has so far.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import gradio as gr

from ..engine import Studio
from ..engine.paths import check_model_name
from ..errors import InvalidValue, StudioError
from ..events import Cancelled, Preview, Progress, Result, Status
from ..outputs import OutputFolder
from ..fields import TABLE, FieldTable
from ..request import request_class
from .. import hosting
from .sessions import Run, SessionJobs

log = logging.getLogger("studio")
HISTORY_LIMIT = 200  # images a session's history keeps (paths only: a few KB)
HEARTBEAT_S = 1.0  # a handler yields at least this often, so a cancel or a gone client always lands


def as_gradio_error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def reported(fn: Callable) -> Callable:
    """An event handler whose every failure reaches the caller as a message: the studio's own errors
    as they are, anything else named by its type (and logged with its traceback). Gradio would
    answer those with a null error."""
    def message(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, StudioError):
            return as_gradio_error(exc)
        log.exception("%s failed", getattr(fn, "__name__", "a handler"))
        return gr.Error(f"{type(exc).__name__}: {str(exc)[:200] or 'failed'}", print_exception=False)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wait(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise message(exc) from None
        return wait

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise message(exc) from None
        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise message(exc) from None
    return call


def status_line(event: Progress, batch: int = 0, batches: int = 1) -> str:
    prefix = f"Batch {batch + 1}/{batches} · " if batches > 1 else ""
    return (f"{prefix}Step {event.step}/{event.total} · {event.it_per_s:.2f} it/s · "
            f"ETA {event.eta_s:.1f}s · {event.elapsed_s:.1f}s elapsed")


def session_of(request: gr.Request | None, fallback: object) -> str:
    """The caller's session id (a browser tab or a gradio_client Client)."""
    session = getattr(request, "session_hash", None)
    return session if session else f"anonymous-{id(fallback)}"


@dataclass
class RunView:
    """What one click has produced so far; `changed` names what the last event changed."""

    images: list[str] = field(default_factory=list)  # saved PNG paths, in order
    infotext: str | None = None  # the first image's
    seed: int | None = None  # the first image's
    status: str = ""
    preview: Any = None  # the newest live preview (a PIL image)
    history: list[str] = field(default_factory=list)  # this session's PNG paths, newest first
    control_maps: dict[int, Any] = field(default_factory=dict)  # ControlNet unit index -> the map it used
    changed: frozenset[str] = frozenset()


def build_requests(settings: Mapping[str, Any], table: FieldTable = TABLE) -> list[Any]:
    """The click's requests, one per batch (batch count), from settings by field name. Settings
    left out (or None where the model gives the default) take their defaults."""
    count = settings.get("batch_count")
    return request_class(table).from_settings(settings).batches(1 if count is None else count)


def check_cost(plan: list[Any], cap: float | None) -> None:
    """Refuse a click that asks more of the device than this studio allows, before it runs."""
    cost = sum(request.cost() for request in plan)
    if cap is not None and cost > cap:
        raise InvalidValue("cost", f"{cost:.0f} megapixel-steps",
                           f"at most {cap:g} per Generate on this studio (--max-cost; width x height x steps x "
                           "batch size x batch count, hires pass included): fewer steps, a smaller size or batch")


def plan(settings: Mapping[str, Any], allowed_roots: Any, max_cost: float | None,
         table: FieldTable = TABLE) -> list[Any]:
    """A call's requests, checked (paths, every field, the cost) before anything runs or any GPU time
    is asked for; a StudioError names what is wrong (the page's clicks and A1111's API share it)."""
    # A shared studio refuses paths outside its folders before the model string touches the disk.
    check_model_name(settings.get("model"), allowed_roots)
    requests = build_requests(settings, table)
    check_cost(requests, max_cost)
    return requests


def plan_click(settings: Mapping[str, Any], allowed_roots: Any, max_cost: float | None,
               table: FieldTable = TABLE) -> list[Any]:
    """`plan`, its refusals as the page shows them."""
    try:
        return plan(settings, allowed_roots, max_cost, table)
    except StudioError as exc:
        raise as_gradio_error(exc) from None


class Runner:
    """Where clicks run. Here, batches run as jobs in this process, and Stop cancels the job itself.
    On ZeroGPU they run in the GPU worker `spaces` forks, asking for the GPU time their plan needs
    (`GpuBudget`): only data crosses (the plan in, views out), and Stop closes the stream, which
    `spaces` turns into closing the worker's, whose jobs then cancel. One per page: `spaces`
    registers its GPU functions when the page is built."""

    def __init__(self, studio: Studio, outputs: OutputFolder, jobs: SessionJobs, gpu_cap_s: int = 120,
                 start_model: str = "") -> None:
        self.studio, self.outputs, self.jobs = studio, outputs, jobs
        self.remote = hosting.zero_gpu_active()

        def batches(key: str, plan: list[Any], history: list[str]) -> Iterator[RunView]:
            yield from self._batches(key, plan, history)

        self._on_gpu = hosting.on_gpu(batches, hosting.GpuBudget(gpu_cap_s, start_model))

    def click(self, session: Callable[[object], str], settings: Mapping[str, Any], history: list[str] | None = None,
              progress: Callable[..., None] | None = None, table: FieldTable = TABLE) -> Iterator[RunView]:
        """Run a click's batches one after another, yielding the view after each event. `session`
        names the caller from a fallback object (anonymous callers)."""
        config = self.studio.config
        plan = plan_click(settings, config.allowed_roots, config.max_cost, table)
        key = session(object())
        if not self.remote:
            yield from self._batches(key, plan, list(history or []), progress)
            return
        run = Run()  # what Stop finds in this process; the worker's own runs live in its memory
        view = RunView(history=list(history or []), status="Waiting for a GPU", changed=frozenset({"status"}))
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

    def _batches(self, key: str, plan: list[Any], history: list[str],
                 progress: Callable[..., None] | None = None) -> Iterator[RunView]:
        studio, outputs = self.studio, self.outputs
        view = RunView(history=list(history))
        run = Run()
        # Progress and previews reach the caller at most once per preview interval (10 a second by
        # default): every update costs Gradio a round of processing and streaming on the same cores as
        # the denoising, which on fast steps cost more than the previews themselves. What changed in
        # between is carried by the next update; the last step and every result always go out.
        interval = studio.config.preview_interval_s
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
            for n, batch in enumerate(plan):
                if run.cancelled:
                    break
                job = studio.generate(batch)
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
                            view.status = status_line(event, n, len(plan))
                            per_batch = event.elapsed_s + event.eta_s
                            run.eta_s = event.eta_s + (len(plan) - n - 1) * per_batch  # for the queue's estimate
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
                            run.stopped_at = (event.step, event.total)
                            run.cancel()
                            view.status = f"Stopped at step {event.step}/{event.total}."
                            yield changed("status")
                        elif isinstance(event, Result):
                            paths = [outputs.servable(p) for p in outputs.save(event)]  # PNGs with metadata
                            view.images += paths
                            view.history = (paths[::-1] + view.history)[:HISTORY_LIMIT]  # newest first
                            if n == 0:
                                view.infotext, view.seed = event.infotexts[0], event.seed
                                view.control_maps = dict(event.control_maps)
                            notes = " ".join(event.notices)
                            where = f"Batch {n + 1}/{len(plan)} done" if len(plan) > 1 else "Done"
                            view.status = f"{where} in {event.timings.total_s:.1f}s (seed {event.seed}). {notes}".strip()
                            yield changed("images", "infotext", "seed", "status", "history")
                except StudioError as exc:
                    raise as_gradio_error(exc) from None
                except Exception as exc:  # keep serving; the message names what failed
                    log.exception("generation failed")
                    raise gr.Error(f"Generation failed: {type(exc).__name__}: {exc}") from None
                finally:
                    job.cancel()  # a Stop press or a closed connection ends the job, not just the stream
                    events.close()
