"""Loading the starting model in the background, with the offline fallback."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from .. import models
from ..engine.interface import Engine
from ..errors import ModelLoadError, StudioError

log = logging.getLogger("studio")
FALLBACK_MODEL = "tiny"


def model_notice(source: models.ModelSource) -> str:
    """The header's line for a model (#notice): the offline tiny models' noise, said; else nothing."""
    return f"Running the offline **{source.name}** model: random weights, its images are noise." \
        if source.is_noise else ""


@dataclass
class Warmup:
    """Loads the starting model in the background so the page is up at once.

    When the model cannot be loaded (no network and not cached, say), the studio starts on the
    offline `tiny` model instead and `notice` says why and how to get real weights.
    """

    studio: Engine
    requested: str
    why: str = ""  # why this model (e.g. the CPU default), said first in the notice
    model: str = ""
    notice: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def start(self, background: bool = True) -> "Warmup":
        """Load in a thread (the page is up at once), or here and now (ZeroGPU: in the main thread)."""
        self.model = self.requested
        if background:
            threading.Thread(target=self._run, name="studio-warmup", daemon=True).start()
        else:
            self._run()
        return self

    def _run(self) -> None:
        try:
            self.studio.load(self.requested)
            log.info("Starting model %s loaded (thread: %s)", self.requested, threading.current_thread().name)
            noise = model_notice(models.resolve_model(self.requested))
            self.notice = " ".join(part for part in (self.why, noise) if part)
        except (ModelLoadError, StudioError) as exc:
            self.model = FALLBACK_MODEL
            self.notice = " ".join(part for part in (self.why, (
                f"**{self.requested} could not be loaded**, so the studio started on the offline "
                f"`{FALLBACK_MODEL}` model (random weights: images are noise). Reason: {exc}")) if part)
            log.warning("%s could not be loaded (%s); starting on %s", self.requested, exc, FALLBACK_MODEL)
            try:
                self.studio.load(FALLBACK_MODEL)
            except StudioError as tiny_exc:  # pragma: no cover - tiny needs no network or files
                log.error("The fallback model failed too: %s", tiny_exc)
        finally:
            self.done.set()
