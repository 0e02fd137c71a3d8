"""Live previews: the method registry and the decoders each method builds.

Methods: `latent2rgb` (a per-family linear projection with bias: free, no weights), `taesd`
(diffusers' AutoencoderTiny: cheap, sharp; this module owns the cache of loaded ones), `vae` (the
model's own decoder: slow, exact), `none`. `auto` is TAESD on a GPU, else latent2rgb. A TAESD that
cannot be loaded falls back to latent2rgb with a notice: previews are never a reason to fail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..cache import LRUCache
from ..errors import ModelLoadError
from ..hub import hub_or_cache
from ..families import PreviewData
from .decoders import Decoder, autoencoder_decoder, latent2rgb_decoder, to_image, vae_decoder
from .worker import PreviewStats, PreviewWorker

if TYPE_CHECKING:  # the method names import without torch (the field table lists them)
    from .. import loading
    from ..devices import DeviceChoice

log = logging.getLogger("studio")
TINY_TAESD = "builtin:tiny"
TAESD_CACHE_SIZE = 2  # small decoders, one per family in use


def preview_data(loaded: loading.LoadedModel) -> PreviewData:
    """The model's preview data: its preset's, else its family's latent format's."""
    return loaded.source.preview or loaded.family_def.latent.preview


def on_grid(decoder: Decoder | None, loaded: loading.LoadedModel, size: tuple[int, int]) -> Decoder | None:
    """A decoder of latent grids fed with what the steps hand over: the family's latent format turns
    each x0 (FLUX's packed tokens, Qwen's 5-D latents...) into a grid first."""
    if decoder is None:
        return None
    latent, pipe = loaded.family_def.latent, loaded.pipe
    return lambda x0: decoder(latent.grid(x0, pipe, size))


@dataclass(frozen=True)
class PreviewMethod:
    name: str
    title: str
    description: str
    # (decoders, loaded model, preview size) -> a decoder, or None for no previews
    build: Callable[["PreviewDecoders", loading.LoadedModel, tuple[int, int]], Decoder | None]


METHODS: dict[str, PreviewMethod] = {m.name: m for m in (
    PreviewMethod("latent2rgb", "latent2rgb", "a linear latent->RGB projection: free, no weights",
                  lambda d, loaded, size: on_grid(latent2rgb_decoder(preview_data(loaded), size), loaded, size)),
    PreviewMethod("taesd", "TAESD", "the tiny autoencoder (TAESD): cheap and sharp",
                  lambda d, loaded, size: d.taesd_decoder(loaded, size)),
    PreviewMethod("vae", "VAE", "the model's own VAE: exact, costs about a step each",
                  lambda d, loaded, size: vae_decoder(loaded, size)),
    PreviewMethod("none", "no", "no previews", lambda d, loaded, size: None),
)}
METHOD_NAMES = ("auto", *METHODS)


def resolve_method(requested: str, device_kind: str) -> str:
    """`auto` -> taesd on a GPU (CUDA or MPS), latent2rgb on the CPU."""
    if requested != "auto":
        return requested
    return "taesd" if device_kind in ("cuda", "mps") else "latent2rgb"


class PreviewDecoders:
    """Builds the decoder of a preview method for a loaded model; keeps the TAESDs it loaded."""

    def __init__(self, device: DeviceChoice, taesd_sources: Mapping[str, str] | None = None):
        self.device = device
        self.taesd_sources = dict(taesd_sources or {})  # family -> repo or folder, over the presets'
        self._taesd: LRUCache[Any] = LRUCache(TAESD_CACHE_SIZE)

    def decoder(self, loaded: loading.LoadedModel, requested: str,
                size: tuple[int, int]) -> tuple[Decoder | None, str | None]:
        """The decoder for a requested method, and a notice when it had to fall back."""
        method = resolve_method(requested, loaded.device.kind)
        try:
            return METHODS[method].build(self, loaded, size), None
        except ModelLoadError as exc:  # what loading a TAESD raises: never an error, latent2rgb instead
            notice = f"{METHODS[method].title} previews are unavailable ({exc}); showing latent2rgb previews instead."
            log.warning(notice)
            return on_grid(latent2rgb_decoder(preview_data(loaded), size), loaded, size), notice

    def final_images(self, loaded: loading.LoadedModel, latents: Any, size: tuple[int, int]) -> list[Any]:
        """A pass's latents decoded by the family's TAESD at full size (Fast decode). Unlike previews,
        a TAESD that cannot be loaded is an error: the image would not be what was asked."""
        decode = self.taesd_decoder(loaded, size)
        return [decode(latents[i:i + 1]) for i in range(len(latents))]

    def taesd_ref(self, loaded: loading.LoadedModel) -> str | None:
        """The TAESD the model's previews and Fast decode use: --taesd's for its family, else its preset's
        or family's; None where none is known (FLUX.2 Klein)."""
        return self.taesd_sources.get(loaded.family) or preview_data(loaded).taesd

    def taesd_decoder(self, loaded: loading.LoadedModel, size: tuple[int, int]) -> Decoder:
        ref = self.taesd_ref(loaded)
        if not ref:
            raise ModelLoadError(f"no TAESD is known for the {loaded.family} family")
        latent = loaded.family_def.latent
        taesd, _ = self._taesd.get_or_load((ref, latent.name, self.device), lambda: self._load_taesd(ref, latent))
        return on_grid(autoencoder_decoder(taesd, size), loaded, size)

    def _load_taesd(self, ref: str, latent: Any) -> Any:
        from diffusers import AutoencoderTiny

        dtype = self.device.dtype
        if ref == TINY_TAESD:  # the latent format's own random-weight decoder, for the tiny models
            taesd = latent.tiny_decoder().to(self.device.device)
            return self._placed(taesd if self.device.dtype_name == "fp32" else taesd.to(dtype=dtype))
        if Path(ref).is_dir():
            try:
                return self._placed(AutoencoderTiny.from_pretrained(ref, torch_dtype=dtype))
            except (OSError, ValueError) as exc:  # missing or broken files in the folder
                raise ModelLoadError(f"TAESD folder {ref} could not be loaded: {exc}") from exc
        return self._placed(hub_or_cache(
            f"TAESD {ref}", lambda local: AutoencoderTiny.from_pretrained(ref, torch_dtype=dtype, local_files_only=local),
        ))

    def _placed(self, taesd: Any) -> Any:
        from .. import loading

        taesd = taesd.to(self.device.device)
        return loading.channels_last(taesd) if self.device.kind == "cpu" else taesd  # as the model's own VAE


__all__ = ["METHODS", "METHOD_NAMES", "PreviewDecoders", "PreviewMethod", "PreviewStats", "PreviewWorker",
           "Decoder", "autoencoder_decoder", "latent2rgb_decoder", "preview_data", "vae_decoder",
           "resolve_method", "to_image", "StudioError"]
