"""Live previews: decode the latest x0 off the denoising loop, at a bounded rate.

Methods (a registry): `latent2rgb` (a per-family linear projection with bias: free, no weights),
`taesd` (diffusers' AutoencoderTiny: cheap, sharp), `vae` (the model's own decoder: slow, exact),
`none`. `auto` is TAESD on a GPU, else latent2rgb.

The loop never waits: `PreviewWorker.offer` drops the x0 into a one-item slot (a newer one
replaces an older one) and returns; a worker thread decodes the newest, at most once per
`interval_s`, on a side CUDA stream when there is one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from .errors import UnknownName
from .models import PreviewData

METHODS = ("auto", "latent2rgb", "taesd", "vae", "none")
DEFAULT_INTERVAL_S = 0.1  # about 10 previews a second: more is wasted on the browser

Decoder = Callable[[torch.Tensor], Image.Image]


def canonical_method(name: Any) -> str:
    key = name.strip().casefold() if isinstance(name, str) else name
    if key not in METHODS:
        raise UnknownName("preview", name, METHODS)
    return key


def resolve_method(requested: str, device_kind: str) -> str:
    """`auto` -> taesd on a GPU (CUDA or MPS), latent2rgb on the CPU."""
    if requested != "auto":
        return requested
    return "taesd" if device_kind in ("cuda", "mps") else "latent2rgb"


def to_image(rgb: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """(h, w, 3) in [0, 1] -> a PIL image of `size` (width, height). Round: truncation darkens."""
    array = np.rint(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(array))
    return image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)


def latent2rgb_decoder(preview: PreviewData, size: tuple[int, int]) -> Decoder:
    factors = np.asarray(preview.latent_rgb_factors, dtype=np.float32)  # (channels, 3)
    bias = np.asarray(preview.latent_rgb_bias, dtype=np.float32)

    def decode(x0: torch.Tensor) -> Image.Image:
        # numpy, single-threaded: torch ops here would start a second OpenMP team that competes
        # with the denoising loop for the CPU cores.
        latent = x0[0].detach().float().cpu().numpy()
        rgb = np.einsum("chw,cr->hwr", latent, factors) + bias
        return to_image((rgb + 1) / 2, size)

    return decode


def autoencoder_decoder(vae: Any, size: tuple[int, int], scale: float) -> Decoder:
    """TAESD or the full VAE: decode latents / scale, output in [-1, 1]."""

    @torch.no_grad()
    def decode(x0: torch.Tensor) -> Image.Image:
        latent = x0[:1].to(vae.device, vae.dtype) / scale
        image = vae.decode(latent, return_dict=False)[0][0].float().permute(1, 2, 0).cpu().numpy()
        return to_image((image + 1) / 2, size)

    return decode


@dataclass
class PreviewStats:
    offered: int = 0  # x0s handed over by the loop
    decoded: int = 0  # previews made
    dropped: int = 0  # x0s replaced by a newer one before they were decoded


class PreviewWorker:
    """Decodes the newest x0 in a thread of its own; the loop only ever calls `offer`."""

    def __init__(self, decode: Decoder, emit: Callable[[int, Image.Image], None],
                 interval_s: float = DEFAULT_INTERVAL_S, device: torch.device | str = "cpu"):
        self._decode = decode
        self._emit = emit
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
        """Stop: pending x0s are dropped; waits for a decode in progress (before the final decode)."""
        with self._cond:
            self._closed = True
            if self._slot is not None:
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
                if self._closed:
                    return
            wait = next_time - time.monotonic()
            if wait > 0:  # rate limit: let newer x0s replace this one meanwhile
                with self._cond:
                    self._cond.wait_for(lambda: self._closed, timeout=wait)
            with self._cond:
                if self._closed or self._slot is None:
                    continue
                step, x0, ready = self._slot
                self._slot = None
            next_time = time.monotonic() + self._interval
            try:
                image = self._decode_on_side_stream(x0, ready)
            except Exception as exc:  # a preview must never break the generation
                self.error = exc
                return
            self.stats.decoded += 1
            self._emit(step, image)

    def _decode_on_side_stream(self, x0: torch.Tensor, ready: Any) -> Image.Image:
        if self._stream is None:
            return self._decode(x0)
        with torch.cuda.stream(self._stream):
            self._stream.wait_event(ready)
            x0.record_stream(self._stream)
            return self._decode(x0)
