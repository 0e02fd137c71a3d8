"""The preview worker: decodes the newest x0 off the denoising loop, at a bounded rate.

The loop never waits: `PreviewWorker.offer` drops the x0 into a one-item slot (a newer one
replaces an older one) and returns; a worker thread decodes the newest, at most once per
`interval_s`, on a side CUDA stream when there is one. A decoder that fails stops the previews
(never the generation) and is reported through `on_error`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from PIL import Image

from .decoders import Decoder

if TYPE_CHECKING:
    import torch


@dataclass
class PreviewStats:
    offered: int = 0  # x0s handed over by the loop
    decoded: int = 0  # previews made
    dropped: int = 0  # x0s replaced by a newer one before they were decoded


class PreviewWorker:
    """Decodes the newest x0 in a thread of its own; the loop only ever calls `offer`."""

    def __init__(self, decode: Decoder, emit: Callable[[int, Image.Image], None],
                 interval_s: float, device: torch.device | str = "cpu",
                 on_error: Callable[[BaseException], None] | None = None):
        import torch

        self._decode = decode
        self._emit = emit
        self._on_error = on_error
        self._interval = interval_s
        self._slot: tuple[int, torch.Tensor, Any] | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.stats = PreviewStats()
        self.error: BaseException | None = None
        cuda = torch.device(device).type == "cuda"
        self._stream = torch.cuda.Stream(device=device) if cuda else None
        self._thread = threading.Thread(target=self._run, name="studio-preview", daemon=True)
        self._thread.start()

    def offer(self, step: int, x0: torch.Tensor) -> None:
        """Called from the denoising loop: O(1), never blocks on decoding."""
        ready = None
        if self._stream is not None:
            import torch

            x0 = x0.detach().clone()  # the loop may reuse its buffers
            ready = torch.cuda.Event()
            ready.record()  # on the loop's stream: the worker waits for it on its own stream
        with self._cond:
            self.stats.offered += 1
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = (step, x0.detach(), ready)
            self._cond.notify()

    def close(self) -> None:
        """Stop: pending x0s are dropped, except when nothing has been shown yet (a 1-step Turbo run):
        then the last x0 is decoded first, so the page shows the picture before the final decode
        (a full VAE on a CPU takes seconds). Waits for the worker (before the final decode)."""
        with self._cond:
            self._closed = True
            if self._slot is not None and (self.stats.decoded or self.error is not None):
                self.stats.dropped += 1
                self._slot = None
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        next_time = 0.0
        while True:
            with self._cond:
                while self._slot is None and not self._closed:
                    self._cond.wait()
                if self._closed and self._slot is None:
                    return
            wait = next_time - time.monotonic()
            if wait > 0 and not self._closed:  # rate limit: let newer x0s replace this one meanwhile
                with self._cond:
                    self._cond.wait_for(lambda: self._closed, timeout=wait)
            with self._cond:
                if self._slot is None:
                    continue
                if self._closed and self.stats.decoded:  # closed while waiting: it goes unshown
                    self.stats.dropped += 1
                    self._slot = None
                    return
                step, x0, ready = self._slot
                self._slot = None
            next_time = time.monotonic() + self._interval
            try:
                image = self._decode_on_side_stream(x0, ready)
            except Exception as exc:  # a preview must never break the generation: stop them and say so
                self.error = exc
                if self._on_error is not None:
                    self._on_error(exc)
                return
            self.stats.decoded += 1
            self._emit(step, image)

    def _decode_on_side_stream(self, x0: torch.Tensor, ready: Any) -> Image.Image:
        import torch

        if self._stream is None:
            return self._decode(x0)
        with torch.cuda.stream(self._stream):
            self._stream.wait_event(ready)
            x0.record_stream(self._stream)
            return self._decode(x0)
