"""A run interrupted through A1111's API answers, as A1111 does, with what its denoising had reached:
each image's predicted x0 at the step it stopped, decoded once, as the pass would have decoded it.

Only when the job was asked for it (`Studio.generate(request, partial=True)`): the page's Stop keeps
its promise (no half-denoised image) and costs nothing more, not even the x0 of each step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..devices import free_device_memory
from ..events import Cancelled

if TYPE_CHECKING:
    from PIL import Image

    from ..loading import LoadedModel
    from ..previews import PreviewDecoders

log = logging.getLogger("studio")
INTERRUPTED_KEY = "Interrupted"  # the infotext's mark on a partial image: "Interrupted: step 3/20"


@dataclass(frozen=True)
class Interrupted(Cancelled):
    """Cancelled, with the partial images: never saved as outputs. `step`: the step they reached."""

    images: tuple["Image.Image", ...] = ()
    seeds: tuple[int, ...] = ()
    infotexts: tuple[str, ...] = ()  # each one's, marked "Interrupted: step k/n"


class LatestX0:
    """The running pass's newest predicted x0: a reference kept each step, decoded only at a cancel."""

    def __init__(self) -> None:
        self.x0: Any = None
        self.step = 0  # the user step it came from, earlier passes counted (hires fix)
        self.size = (0, 0)  # its pass's image size (width, height)
        self.fast = False  # its pass decodes with TAESD (Fast decode)

    def keep(self, step: int, x0: Any, size: tuple[int, int], fast: bool) -> None:
        self.x0, self.step, self.size, self.fast = x0, step, size, fast

    def decode(self, loaded: LoadedModel, previews: PreviewDecoders) -> list[Image.Image]:
        """The batch's images, as its pass would have decoded them: TAESD for Fast decode, else the VAE."""
        if self.fast:
            return previews.final_images(loaded, self.x0, self.size)
        return vae_decode(loaded, self.x0, self.size)


def vae_decode(loaded: LoadedModel, latents: Any, size: tuple[int, int]) -> list[Image.Image]:
    """A batch of latents decoded in one call as the pipelines decode theirs: FLUX's unpacked first, and
    a float16 VAE whose config asks for it run in float32 (SDXL's own gives NaNs in float16)."""
    import torch

    from ..tasks.hires import decode_latents

    pipe = loaded.pipe
    vae = pipe.vae
    latents = loaded.family_def.latent.grid(latents, pipe, size)  # FLUX's packed tokens...: a grid
    upcast = vae.dtype == torch.float16 and bool(vae.config.get("force_upcast"))
    if upcast:
        vae.to(torch.float32)
    try:
        return decode_latents(loaded, latents.to(dtype=vae.dtype))  # schedulers may hand x0 in float32
    finally:
        if upcast:
            vae.to(torch.float16)


def interrupted(kept: LatestX0 | None, loaded: LoadedModel, previews: PreviewDecoders, step: int, total: int,
                seeds: list[int], infotexts: tuple[str, ...]) -> Cancelled:
    """The cancel event: with the partial images where they were asked for and an x0 was reached, else
    a plain Cancelled at `step`. A decode that fails leaves a plain cancel: the partial is a courtesy."""
    import torch

    if kept is None or kept.x0 is None:
        return Cancelled(step, total)
    try:
        images = kept.decode(loaded, previews)
    except Exception as exc:
        if isinstance(exc, torch.OutOfMemoryError):
            free_device_memory(loaded.device)
        log.warning("the partial images of an interrupted run could not be decoded: %s: %s", type(exc).__name__, exc)
        return Cancelled(step, total)
    finally:
        kept.x0 = None  # the latents go with the job
    mark = f", {INTERRUPTED_KEY}: step {kept.step}/{total}"  # the parameter line is the infotext's last
    return Interrupted(kept.step, total, tuple(images), tuple(seeds), tuple(text + mark for text in infotexts))
