"""What a model family is: the data every family entry fills in (`studio/families/<name>.py`).

A family entry imports without torch (the field table and request checks read it): its encoders
import torch, compel and `studio.conditioning` inside the functions, and its tiny builders are
named as `Lazy("module:attr")` (`studio/lazy.py`), imported when one is first built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import InvalidValue
from ..validation import as_int


@dataclass(frozen=True)
class PreviewData:
    """Live previews of a latent format: a linear latent->RGB projection and a TAESD repo."""

    latent_rgb_factors: tuple[tuple[float, ...], ...]  # one (R, G, B) row per latent channel
    latent_rgb_bias: tuple[float, ...]
    taesd: str | None = None  # hub id or folder of the tiny decoder; "builtin:tiny" for tiny models


@dataclass(frozen=True)
class LatentFormat:
    """How a family's VAE latents look, as ComfyUI's latent_formats describe them."""

    name: str
    channels: int
    scale: float  # the VAE's scaling factor: latents are (vae latent - shift) * scale
    preview: PreviewData
    shift: float = 0.0
    downscale: int = 8  # pixels per latent cell
    layout: str = "grid"  # how the denoiser holds latents (studio/families/layouts.py): grid, flux, klein, qwen

    def grid(self, latents: Any, pipe: Any, size: tuple[int, int]) -> Any:
        """A step's or a pipeline's latents as a (batch, channels, h, w) grid in the denoiser's space."""
        from .layouts import LAYOUTS

        return LAYOUTS[self.layout].grid(latents, pipe, size)

    def decode(self, grid: Any, pipe: Any) -> Any:
        """A grid through the model's own VAE, as its pipeline decodes latents: (batch, 3, H, W) in [-1, 1]."""
        from .layouts import LAYOUTS

        layout = LAYOUTS[self.layout]
        raw = layout.raw(grid, pipe).to(pipe.vae.device, pipe.vae.dtype)
        return layout.image(pipe.vae.decode(raw, return_dict=False)[0])

    def tiny_decoder(self) -> Any:
        """A random-weight TAESD for these latents: the offline tiny models' `taesd` previews."""
        from ..tiny import build_tiny_taesd

        return build_tiny_taesd(self.channels)


@dataclass(frozen=True)
class SizeRule:
    """Which image sizes a family accepts: multiples of `multiple` from `low` to `high`."""

    multiple: int
    low: int
    high: int
    default: int

    def check(self, field: str, value: Any, model: str, size_range: tuple[int, int] | None = None) -> int:
        low, high = size_range or (self.low, self.high)
        allowed = f"a multiple of {self.multiple} from {low} to {high} for model {model}"
        number = as_int(field, value, allowed)
        if number % self.multiple or not low <= number <= high:
            raise InvalidValue(field, value, allowed)
        return number


@dataclass(frozen=True)
class Family:
    """A model architecture. Everything the engine does differently per family is here."""

    name: str
    title: str
    # diffusers pipeline class per kind of pass; img2img and inpaint are built from the loaded
    # text-to-image pipeline with `from_pipe`, sharing its weights.
    pipelines: Mapping[str, str]
    inpaint_model_pipeline: str  # dedicated inpainting checkpoints (9-channel UNet) load as this
    single_file_config: str  # hub repo whose configs describe a single-file checkpoint
    checkpoint_keys: tuple[str, ...]  # tensor-name prefixes that mark its single-file checkpoints
    detect_order: int  # families are tried in this order (SDXL files also carry SD 1.x-like keys)
    latent: LatentFormat
    size: SizeRule
    # (pipe, clip_skip) -> an encoder with .encode(parsed) -> Conditioning and .empty()
    prompt_encoder: Callable[[Any, int], Any]
    # (pipe, positive, negative, empty) -> the pipeline's keyword arguments for both prompts
    conditioning: Callable[[Any, Any, Any, Callable[[], Any]], dict]
    # (pipe, parsed prompt) -> prompt tokens in each chunk, for the token counter
    count_tokens: Callable[[Any, Any], list[int]]
    tiny: Callable[[], Any]  # the offline random-weight pipeline of this family
    tiny_variants: Mapping[str, Callable[[], Any]] = field(default_factory=dict)  # "builtin:flux/schnell"
    samplers: tuple[str, ...] | None = None  # None: every sampler of its kind
    sampler_kind: str = "diffusion"  # which sampler registry: diffusion (noise prediction) or flow
    clip_skip: bool = True  # whether the clip skip setting changes anything
    denoiser: str = "unet"  # the pipeline component that denoises (unet, transformer)
    # its diffusers class, for single files that hold the denoiser alone (FLUX / SD3 fine-tunes as
    # Civitai ships them; the rest comes from single_file_config); None: whole checkpoints only
    denoiser_class: str | None = None
    # (pipe) -> what the CFG scale drives: "cfg" (a negative pass each step), "distilled" (an
    # embedding, one pass: FLUX dev) or "none" (schnell, turbo models)
    guidance: Callable[[Any], str] = lambda pipe: "cfg"
    default_guidance: str = "cfg"  # before loading (a model's preset may say otherwise: schnell)
    token_limit: int | None = None  # None: 75-token chunks, no limit; else tokens read, the rest cut
    # Whether its pipelines repeat given prompt embeddings for num_images_per_prompt (SD3's do not:
    # the engine then hands them one embedding per image)
    repeats_embeds: bool = True
    true_cfg: bool = False  # offers real CFG beside distilled guidance (FLUX's true_cfg_scale)
    weighted: bool = True  # its text encoder takes token weights (an LLM encoder does not: Z-Image)
    # A1111's prompt editing and alternation: its prompt may change between steps (studio/engine/prompt_steps.py)
    prompt_editing: bool = True
    # Text encoding in the cost (studio/request.py): how many text encoders, and how a prompt's length
    # reaches them: "chunks" (SD, SDXL: every 75 tokens another pass through each), "parts" (SD3,
    # FLUX: one fixed window per BREAK / AND part, the rest cut) or "whole" (an LLM: one pass, capped)
    text_encoders: tuple[int, str] = (2, "chunks")
    latent_img2img: bool = True  # its img2img pipeline takes latents as the image (hires latent upscale)
    # Editing by instruction (the edit task, its pipeline in `pipelines["edit"]`): how many reference
    # pictures it reads (0: it does not edit), and whether it needs one (an edit-only model)
    references: int = 0
    needs_references: bool = False
    encoder_reads_references: bool = False  # its text encoder sees the pictures too (Qwen-Image-Edit's VL model)
    cfg_argument: str = "guidance_scale"  # the pipeline argument the CFG scale goes to (Qwen's: true_cfg_scale)
    # Fixed arguments of a pipeline class's every call (Kontext's inpaint must not resize its picture)
    call_arguments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Settings for a model of this family that no preset describes (a folder, a single file), over
    # the studio-wide defaults: steps, cfg_scale, sampler, schedule (the size is the size rule's)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # ZeroGPU: seconds of GPU a megapixel-step takes (CFG included), with a margin (a run that
    # outlives what it asked for is aborted). Estimates for half an H200, not measured here.
    gpu_s_per_mp_step: float = 0.3
    # ControlNet: per kind of ControlNet (its diffusers class), the pipeline class per task, built on
    # the model's own weights (none: the family has no ControlNet support yet)
    control_pipelines: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    controlnet_class: str = "ControlNetModel"  # the kind its ControlNets are unless their files say another
    control_latent_img2img: bool = True  # its ControlNet img2img pipeline takes latents (FLUX's does not)
    image_prompts: bool = False  # IP-Adapter image prompts on its denoiser (studio/control/ip_adapter.py)
    notes: tuple[str, ...] = field(default=())

    def build_tiny(self, variant: str = "") -> Any:
        """The family's offline tiny pipeline, or one of its variants (FLUX schnell)."""
        if not variant:
            return self.tiny()
        if variant not in self.tiny_variants:
            raise InvalidValue("builtin model", f"{self.name}/{variant}",
                               ", ".join([self.name, *(f"{self.name}/{v}" for v in self.tiny_variants)]))
        return self.tiny_variants[variant]()

    @property
    def pipeline(self) -> str:
        """The pipeline a model of the family loads as: text to image's, else its only task's (an edit model)."""
        return self.pipelines.get("txt2img") or next(iter(self.pipelines.values()))
