"""What the `/sdapi/v1` routes do, without HTTP: A1111's shapes translated to the studio's settings,
planned and executed by the same service as the page's clicks (the same checks, the one device queue,
the same outputs and metadata, the run registry the page's queue estimates count, ZeroGPU's GPU
worker on a Space), and each caller's own progress, options and runs.

A caller is the API user (HTTP Basic) or, without credentials, "anonymous" (one local user: a
studio others can reach requires credentials). Interrupt and skip act on the caller's own runs only;
progress shows the caller's own; the model a caller sets with POST /options is that caller's.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from PIL import Image

from ... import loras, metadata, models, upscalers
from ...engine.admit import check_cost
from ...engine.paths import check_model_name
from ...errors import InvalidValue, StudioError
from ...fields import TABLE
from ...upscalers.folder import find
from ...upscalers.models import a1111_list as upscaler_names, face_restorers
from ...service import RunView, Service
from ..queue_guard import DEFAULT_MAX_WAITING
from ...version import __version__
from . import extras, translate


class Busy(StudioError):
    """The caller has as many requests in flight as it may (answered 429)."""


# What POST /options keeps of keys it does not check (A1111 has hundreds; Open WebUI posts back the whole
# dict GET gave it): at most MAX_OPTIONS keys per caller, each name and JSON value small. Others are ignored.
MAX_OPTIONS = 64
MAX_OPTION_CHARS = 1024
CHECKED_OPTIONS = ("sd_model_checkpoint", "CLIP_stop_at_last_layers")

LATENT_MODES = ("Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)",
                "Latent (nearest)", "Latent (nearest-exact)")


@dataclass
class Board:
    """One caller's current run, as /progress reports it (A1111's shared.state, per caller)."""

    job_count: int = 0
    job_no: int = 0
    step: int = 0
    steps: int = 0
    started: float = 0.0
    image: Any = None  # the newest live preview (PIL)
    textinfo: str | None = None
    interrupted: bool = False
    skipped: bool = False
    job_timestamp: str = "0"
    job: str = ""  # A1111's name of the work: txt2img, img2img

    def show(self, view: RunView) -> None:
        """The call's view as A1111's state: the batch, its step, the newest preview."""
        if view.batch != self.job_no:
            self.skipped = False  # a skip ends one batch only
        self.job_no, self.step, self.steps, self.image = view.batch, view.step, view.total, view.preview

    def state(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "interrupted": self.interrupted, "stopping_generation": False,
                "job": self.job, "job_count": self.job_count,
                "job_timestamp": self.job_timestamp, "job_no": self.job_no, "sampling_step": self.step,
                "sampling_steps": self.steps}


class SdApi:
    def __init__(self, service: Service, server_model: Callable[[], str], max_waiting: int = DEFAULT_MAX_WAITING):
        self.service = service  # the page's: its run registry counts API runs in the queue estimates
        self.server_model = server_model  # () -> the model the studio started with (or fell back to)
        self.max_waiting = max_waiting  # a caller's requests waiting behind its running one, as the page's
        self._in_flight: dict[str, int] = {}
        self._boards: dict[str, Board] = {}
        self._options: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- options, per caller ---------------------------------------------------------------------
    def options(self, caller: str) -> dict[str, Any]:
        with self._lock:
            saved = dict(self._options.get(caller, {}))
        return {"sd_model_checkpoint": self.server_model(), "sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1,
                "samples_format": "png", "sd_checkpoint_hash": None, "outdir_samples": "", **saved}

    def set_options(self, caller: str, values: Mapping[str, Any]) -> None:
        """The model and clip skip checked (a 422 names a bad one: `sd_model_checkpoint` null or "" is
        refused, as A1111 refuses it, rather than meaning the default); any other key kept only while
        small and few (MAX_OPTIONS, MAX_OPTION_CHARS), else ignored: a client may post back everything
        GET gave it, and nothing it posts grows the server's memory past that."""
        if not isinstance(values, Mapping):
            raise InvalidValue("body", type(values).__name__, "an object of option: value")
        kept: dict[str, Any] = {}
        if "sd_model_checkpoint" in values:
            model = values["sd_model_checkpoint"]
            if not isinstance(model, str) or not model.strip():
                raise InvalidValue("sd_model_checkpoint", model, "a model's title (GET /sdapi/v1/sd-models)")
            check_model_name(model, self.service.config.allowed_roots, "sd_model_checkpoint")
            models.resolve_model(model)  # a clear error now for a model that does not exist
            kept["sd_model_checkpoint"] = model
        if values.get("CLIP_stop_at_last_layers") is not None:
            kept["CLIP_stop_at_last_layers"] = TABLE["clip_skip"].validate(values["CLIP_stop_at_last_layers"], {})
        with self._lock:
            saved = self._options.setdefault(caller, {})
            for key, value in values.items():
                if key in CHECKED_OPTIONS or not _small_option(key, value):
                    continue
                if key in saved or len(saved) < MAX_OPTIONS:
                    saved[key] = value
            saved.update(kept)

    # -- lists -------------------------------------------------------------------------------------
    def sd_models(self) -> list[dict[str, Any]]:
        config = self.service.config
        items = [(name, name) for name in models.preset_names()]
        items += [(label, path) for label, path in models.local_models(config.models_dir, config.allow_pickle)]
        return [{"title": ref, "model_name": label, "hash": None, "sha256": None, "filename": ref, "config": None}
                for label, ref in items]

    # -- generation --------------------------------------------------------------------------------
    def generate(self, caller: str, payload: Mapping[str, Any], task: str,
                 hung_up: threading.Event | None = None) -> dict[str, Any]:
        """One txt2img / img2img call: checked first (InvalidValue names the field), then its batches
        run one after another on the device queue; interrupted, it answers with what was finished.
        A caller has at most one running and `max_waiting` waiting (the page's --max-queued).
        `hung_up` set (the caller disconnected): this call's run stops at its next step and its batches
        to come do not start; the caller's other calls run on."""
        with self._lock:
            if self._in_flight.get(caller, 0) > self.max_waiting:
                raise Busy(f"{self.max_waiting} of your requests already wait for the device: at most "
                           f"{self.max_waiting} per caller on this studio (--max-queued)")
            self._in_flight[caller] = self._in_flight.get(caller, 0) + 1
        try:
            return self._generate(caller, payload, task, hung_up)
        finally:
            with self._lock:
                self._in_flight[caller] -= 1

    def _generate(self, caller: str, payload: Mapping[str, Any], task: str,
                  hung_up: threading.Event | None = None) -> dict[str, Any]:
        options = self.options(caller)
        config = self.service.config
        settings, ignored, notes = translate.to_settings(payload, task, options["sd_model_checkpoint"],
                                                          options.get("CLIP_stop_at_last_layers"),
                                                          source_of=self._model_source,
                                                          lora_names=loras.folder_loras(config.loras_dir),
                                                          has_upscaler=self._has_upscaler,
                                                          upscalers=lambda: upscaler_names(config))
        if payload.get("restore_faces") is True and ignored.pop("restore_faces", None) is not None:
            self._restore_faces(settings, notes)
        plan = self.service.plan(settings)
        board = Board(job_count=len(plan), started=time.time(), job_timestamp=time.strftime("%Y%m%d%H%M%S"),
                      job=task)
        key = run_key(caller)
        with self._lock:
            self._boards[caller] = board
        view = RunView()
        runs = self.service.execute(key, plan, partial=True)  # a partial image on interrupt
        try:
            for view in runs:
                board.show(view)
                if board.interrupted:  # also when it came before the run was registered
                    self.service.jobs.cancel(key)
                if hung_up is not None and hung_up.is_set():
                    notes = [*notes, "the caller hung up: the run stopped"]
                    break
        finally:
            # Closed at the yield it waits in: this call's own run is cancelled there (SessionJobs.running
            # cancels it on GeneratorExit), its job stops at its next step, no batch after it starts.
            runs.close()
            self._boards_done(caller, board)
        images = [{"png": Path(image.path).read_bytes(), "seed": image.seed, "infotext": image.infotext}
                  for image in view.saved]
        if view.partial is not None:  # interrupted: the batch as far as it got, as A1111 answers (never saved)
            part = view.partial
            images += [{"png": metadata.png_bytes(image, text), "seed": seed, "infotext": text}
                       for image, seed, text in zip(part.images, part.seeds, part.infotexts)]
            notes = [*notes, f"interrupted at step {part.step}/{part.total}: the last {len(part.images)} image(s) "
                             "are the partial result there, not saved"]
        send = payload.get("send_images", True) is not False
        return {"images": [translate.encode_png(i["png"]) for i in images] if send else [],
                "parameters": translate.parameters(payload),
                "info": translate.info(plan, images, ignored, notes + view.notes, view.model_name,
                                       f"studio {__version__}", board.job_timestamp)}

    def extras(self, caller: str, body: Any, batch: bool, hung_up: threading.Event | None = None) -> dict[str, Any]:
        """One Extras call: every picture measured, its upscale planned and the call's cost checked
        before any work; then each runs as an upscale task on the device queue (Stop / a hang-up ends it)."""
        config = self.service.config
        asked = extras.parse(body, config.upscalers_dir, config.allow_pickle)
        pictures = extras.pictures(body, batch)
        extras.check_cost(asked, [p.size for p in pictures])
        plans = [self.service.plan(extras.settings(asked, picture)) for picture in pictures]
        check_cost(sum(plan.cost for plan in plans), config.max_cost)
        key, results = run_key(caller), []
        for plan in plans:
            view, runs = RunView(), self.service.execute(key, plan)
            try:
                for view in runs:
                    if hung_up is not None and hung_up.is_set():
                        break
            finally:
                runs.close()
            if not view.saved:
                raise StudioError("the upscale was stopped" + (": the caller hung up" if hung_up and hung_up.is_set()
                                                               else ""))
            results.append(Image.open(view.saved[0].path))
        return extras.answer(asked, results, batch)

    def _restore_faces(self, settings: dict[str, Any], notes: list[str]) -> None:
        """A1111's `restore_faces: true`: the folder's first face restorer (GFPGAN) runs after the
        generation; without one it is said and not run, as lenient as A1111's clients expect."""
        config = self.service.config
        if face_restorers(config.upscalers_dir, config.allow_pickle):
            settings["restore_faces"] = True
        else:
            notes.append("restore_faces: this studio's upscalers folder has no face restoration model (GFPGAN): "
                         "not run")

    def _has_upscaler(self, name: str) -> bool:
        """Whether the upscalers folder has a model of this name (A1111's names too)."""
        config = self.service.config
        try:
            upscalers.check_name("hr_upscaler", name)
            find("hr_upscaler", name, config.upscalers_dir, config.allow_pickle)
        except InvalidValue:
            return False
        return True

    def _model_source(self, model: str) -> models.ModelSource:
        """The model a request names, to fit its settings to (a shared studio's path rule first, as the
        plan checks it: the name touches the disk only once it passed)."""
        check_model_name(model, self.service.config.allowed_roots)
        return models.resolve_model(model)

    def _boards_done(self, caller: str, board: Board) -> None:
        with self._lock:
            if self._boards.get(caller) is board:
                self._boards.pop(caller)

    # -- progress, interrupt, skip ----------------------------------------------------------------
    def progress(self, caller: str, skip_current_image: bool = False) -> dict[str, Any]:
        with self._lock:
            board = self._boards.get(caller)
        if board is None:
            return {"progress": 0.0, "eta_relative": 0.0, "state": Board().state(), "current_image": None,
                    "textinfo": None}
        done = 0.01 + board.job_no / board.job_count
        if board.steps:
            done += board.step / board.steps / board.job_count
        elapsed = time.time() - board.started
        image = None
        if board.image is not None and not skip_current_image:
            image = translate.encode_picture(board.image.convert("RGB"))
        return {"progress": min(done, 1.0), "eta_relative": max(0.0, elapsed / done - elapsed),
                "state": board.state(), "current_image": image, "textinfo": board.textinfo}

    def interrupt(self, caller: str) -> None:
        """The caller's run stops at its next step, and its batches to come do not start."""
        with self._lock:
            board = self._boards.get(caller)
        if board is not None:
            board.interrupted = True
            self.service.jobs.cancel(run_key(caller))

    def skip(self, caller: str) -> None:
        """The caller's current batch stops at its next step; the next batch starts. (On ZeroGPU the
        batches run in the GPU worker, out of reach of a skip: interrupt stops them.)"""
        with self._lock:
            board = self._boards.get(caller)
        if board is not None:
            board.skipped = True
            self.service.jobs.skip(run_key(caller))


def _small_option(key: str, value: Any) -> bool:
    if len(key) > 128:
        return False
    try:
        return len(json.dumps(value)) <= MAX_OPTION_CHARS
    except (TypeError, ValueError, RecursionError):
        return False


def run_key(caller: str) -> str:
    """An API caller's name in the run registry, apart from the page's visitors."""
    return f"sdapi:{caller}"
