"""Turning a ModelSource into a ready pipeline on the chosen device.

One loader per source kind (a registry, not an if-chain). Every failure becomes a ModelLoadError
whose message says what happened and what to try instead; "the Hub cannot be reached" is its own
error (ModelUnavailable) so the app can fall back to the offline `tiny` model.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import diffusers
import torch
from diffusers import DiffusionPipeline

from . import models, samplers
from .cache import LRUCache
from .checkpoints import checkpoint_keys, denoiser_alone, family_of_keys, format_of, short_hash
from .devices import DeviceChoice
from .hub import hub_or_cache, plain, shadowed
from .errors import ModelLoadError, PickleRefused
from .quantize import quantize
from .families import FAMILIES, Family, family, family_of_pipeline

log = logging.getLogger("studio")

Report = Callable[[str], None]
# Resolved once, at import: diffusers' lazy module is not thread-safe (see samplers.py). Dedicated
# inpainting models (a UNet with 9 input channels) load as their family's inpainting pipeline.
PIPELINE_CLASSES = {name: getattr(diffusers, name) for fam in FAMILIES.values()
                    for name in (*fam.pipelines.values(), fam.inpaint_model_pipeline)}
DENOISER_CLASSES = {fam.denoiser_class: getattr(diffusers, fam.denoiser_class) for fam in FAMILIES.values()
                    if fam.denoiser_class}
samplers.scheduler_classes()  # the scheduler classes too, on this thread, before any model loads
INPAINT_UNET_CHANNELS = 9  # latents 4 + mask 1 + masked-image latents 4
NO_SAFETY_CHECKER = {"safety_checker": None, "requires_safety_checker": False}
NOISE_NOTICE = "The {name} model has random weights: its images are noise (it exists for offline tests and demos)."


@dataclass(frozen=True)
class LoadOptions:
    """How models are loaded; fixed for a Studio's lifetime."""

    device: DeviceChoice
    allow_pickle: bool = False
    # family -> hub id or local diffusers folder describing single-file checkpoints of that family
    single_file_configs: Mapping[str, str] = field(default_factory=dict, hash=False)
    offload: str = "none"  # none, model, sequential (CUDA only: StudioConfig checks)
    drop_t5: bool = False  # SD3 without its T5 encoder (about 9 GB less in bf16)
    quantize: str = "none"  # none, int8, fp8: the denoiser's weights (studio/quantize.py)

    def component_kwargs(self, source: models.ModelSource) -> dict[str, Any]:
        """Components left out when loading: SD3's T5 with drop_t5 (a model of unknown family too:
        a pipeline without those components ignores them)."""
        if self.drop_t5 and source.family in (None, "sd3"):
            return {"text_encoder_3": None, "tokenizer_3": None}
        return {}


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A pipeline ready to run, with what the engine and the infotext need to know about it."""

    source: models.ModelSource
    family: str
    pipe: Any
    scheduler_config: Mapping[str, Any]  # the model's own scheduler config: samplers build from it
    model_hash: str | None  # A1111's short hash (sha256[:10]) for single files
    load_s: float
    device: DeviceChoice
    # Mutable parts, changed only on the device thread: img2img / inpaint pipelines sharing this
    # model's components, and LoRA adapters loaded into them (file -> (adapter name, hash)).
    task_pipes: dict[str, Any] = field(default_factory=dict, compare=False)
    adapters: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False)
    # IP-Adapters loaded for it (studio/control/ip_adapter.py): a few, an SDXL one is 0.7 GB.
    ip_adapters: LRUCache = field(default_factory=lambda: LRUCache(3), compare=False)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def family_def(self) -> Family:
        """The family's registry entry: encoders, latent format, pipelines."""
        return family(self.family)

    @property
    def inpainting(self) -> bool:
        """A dedicated inpainting model: every task runs through its inpainting pipeline."""
        if type(self.pipe).__name__ == self.family_def.inpaint_model_pipeline:
            return True
        unet = getattr(self.pipe, "unet", None)
        return unet is not None and unet.config.in_channels == INPAINT_UNET_CHANNELS


def _family_of(pipe: Any, source: models.ModelSource) -> str:
    name = type(pipe).__name__
    fam = family_of_pipeline(name)
    if fam is None:
        runs = ", ".join(f"{f.title} ({f.pipeline})" for f in FAMILIES.values())
        raise ModelLoadError(f"{source.name} is a {name}; this studio runs {runs} models.")
    return fam.name


def _load_builtin(source: models.ModelSource, options: LoadOptions, report: Report) -> Any:
    report(f"Building {source.name} (random weights, offline)")
    log.warning(NOISE_NOTICE.format(name=source.name))
    name, _, variant = source.ref.partition("/")  # "flux/schnell": a variant of the family's tiny model
    pipe = family(name).build_tiny(variant)  # built in fp32; the other loaders load at the target dtype
    return pipe if options.device.dtype_name == "fp32" else pipe.to(dtype=options.device.dtype)


def _variant(source: models.ModelSource, options: LoadOptions) -> str | None:
    # Half the download, for 16-bit runs: bf16 (a CPU with native bf16) gets the same values from
    # the fp16 files as from the fp32 ones, bar rounding far below bf16's own precision.
    half = source.preset and source.preset.fp16_variant and options.device.dtype_name in ("fp16", "bf16")
    return "fp16" if half else None


def _load_hub(source: models.ModelSource, options: LoadOptions, report: Report) -> Any:
    variant = _variant(source, options)
    report(f"Loading {source.ref} from the Hugging Face cache or Hub (downloads show in the log)")

    def fetch(local_only: bool):
        ref = source.ref
        if shadowed(ref):  # a folder of the working directory has the id's name: diffusers would load it
            ref = DiffusionPipeline.download(ref, variant=variant, local_files_only=local_only, use_safetensors=True,
                                             **options.component_kwargs(source))
        return DiffusionPipeline.from_pretrained(
            ref, torch_dtype=options.device.dtype, variant=variant,
            local_files_only=local_only, use_safetensors=True, **NO_SAFETY_CHECKER, **options.component_kwargs(source),
        )

    return hub_or_cache(f"Model {source.ref}", fetch)


def pickle_files(folder: str | Path) -> list[str]:
    """Pickle weight files in a diffusers folder (its top level and component folders)."""
    root = Path(folder)
    found = [p for pattern in ("*", "*/*") for p in root.glob(pattern)
             if p.is_file() and p.suffix.lower() in models.PICKLE_SUFFIXES]
    return sorted(str(p.relative_to(root)) for p in found)


def _load_folder(source: models.ModelSource, options: LoadOptions, report: Report) -> Any:
    report(f"Loading diffusers folder {source.name}")  # names, not paths: messages reach visitors
    # Pickle weights (.bin...) can run code when loaded: only safetensors unless --allow-pickle.
    safe_only = not options.allow_pickle
    try:
        return DiffusionPipeline.from_pretrained(
            source.ref, torch_dtype=options.device.dtype, local_files_only=True, use_safetensors=safe_only or None,
            **NO_SAFETY_CHECKER, **options.component_kwargs(source),
        )
    except Exception as exc:
        pickles = pickle_files(source.ref) if safe_only else []
        if pickles:
            raise PickleRefused(
                f"The folder {Path(source.ref).name} holds pickle weights ({', '.join(pickles[:3])}): loading them can "
                "run arbitrary code. Convert them to .safetensors, or start the studio with --allow-pickle if you "
                "trust the files.") from exc
        raise ModelLoadError(f"The folder {source.name} could not be loaded as a diffusers model: {plain(exc)}") from exc


def _load_single_file(source: models.ModelSource, options: LoadOptions, report: Report) -> Any:
    if source.pickle and not options.allow_pickle:
        raise PickleRefused(
            f"{Path(source.ref).name} is a pickle checkpoint: loading it can run arbitrary code. "
            "Use a .safetensors file, or start the studio with --allow-pickle if you trust the file."
        )
    keys = checkpoint_keys(source.ref)
    family = family_of_keys(source.ref, keys)
    fam, fmt = models.family(family), format_of(source.ref)
    config = options.single_file_configs.get(family, fam.single_file_config)
    pipeline_cls = PIPELINE_CLASSES[fam.pipeline]
    name, dtype = Path(source.ref).name, options.device.dtype
    extra = NO_SAFETY_CHECKER if fam.denoiser == "unet" else {}
    if fam.denoiser_class is not None and (denoiser_alone(keys) or not fmt.whole):
        # A fine-tuned or quantized transformer alone (how Civitai ships FLUX, and every GGUF): the
        # VAE and text encoders come from the base model, in the HF cache, on the Hub or a folder.
        report(f"Loading {name} as a {fam.title} {fam.denoiser} with the rest of {config}")
        what = f"{name} is a {fam.title} {fam.denoiser} alone: the rest of the model ({config})"

        def fetch(local_only: bool):
            denoiser = DENOISER_CLASSES[fam.denoiser_class].from_single_file(
                source.ref, config=config, subfolder=fam.denoiser, torch_dtype=dtype, local_files_only=local_only,
                **fmt.load_kwargs(dtype))
            return pipeline_cls.from_pretrained(config, **{fam.denoiser: denoiser}, torch_dtype=dtype,
                                                local_files_only=local_only, **options.component_kwargs(source))
    elif not fmt.whole:
        raise ModelLoadError(f"{name}: {fmt.name} files are loaded as a {fam.title} denoiser alone, which this "
                             f"studio does not do for {fam.title}; use a .safetensors checkpoint")
    else:
        report(f"Loading {name} as {fam.title} (configs from {config})")
        what = f"The {fam.title} configuration ({config}) needed to read {name}"

        def fetch(local_only: bool):
            return pipeline_cls.from_single_file(source.ref, config=config, torch_dtype=dtype,
                                                 local_files_only=local_only, **extra)

    if Path(config).is_dir():
        try:
            return fetch(True)
        except Exception as exc:
            raise ModelLoadError(f"{name} could not be loaded with configs from {Path(config).name}: {plain(exc)}") from exc
    return hub_or_cache(what, fetch)


def _fetch_hub(source: models.ModelSource, options: LoadOptions, report: Report) -> None:
    """The repo's files in the HF cache (downloaded if missing), nothing loaded."""
    variant = _variant(source, options)
    hub_or_cache(f"Model {source.ref}", lambda local: DiffusionPipeline.download(
        source.ref, variant=variant, local_files_only=local, use_safetensors=True))


def _check_single_file(source: models.ModelSource, options: LoadOptions, report: Report) -> None:
    if format_of(source.ref).safe:  # a pickle is opened only by its load (and refused there unless allowed)
        family_of_keys(source.ref, checkpoint_keys(source.ref))  # readable, and of a family we run


# What can fail before loading (a repo that cannot be fetched, an unreadable file), checked before the
# cache makes room: a model that cannot load never costs the working one its place.
PREFLIGHTS: dict[str, Callable[[models.ModelSource, LoadOptions, Report], None]] = {
    "hub": _fetch_hub,
    "single_file": _check_single_file,
}


def preflight(source: models.ModelSource, options: LoadOptions, report: Report = lambda message: None) -> None:
    check = PREFLIGHTS.get(source.kind)
    if check is not None:
        check(source, options, report)


LOADERS: dict[str, Callable[[models.ModelSource, LoadOptions, Report], Any]] = {
    "builtin": _load_builtin,
    "hub": _load_hub,
    "folder": _load_folder,
    "single_file": _load_single_file,
}


def place(pipe: Any, options: LoadOptions) -> Any:
    """On the device, or offloaded to the CPU between uses (model: a component at a time;
    sequential: layer by layer) with the GPU as the execution device."""
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=options.device.device)
        return pipe
    if options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=options.device.device)
        return pipe
    pipe = pipe.to(options.device.device)
    if options.device.kind == "cpu":
        for name in ("unet", "vae"):  # the convolution-heavy ones
            channels_last(getattr(pipe, name, None))
    return pipe


def channels_last(module: Any) -> Any:
    """A module in channels-last layout, for a CPU: that is what oneDNN's fast convolution kernels want
    (measured with bf16 on a 2-core AMX CPU: SD's VAE decode at 512 px 6.5 s -> 2.4 s). Quantized
    weights keep their layout, and so do video VAEs (Qwen-Image's 3-D convolutions have no such layout)."""
    if module is not None and not any(type(p).__name__ != "Parameter" or p.dim() > 4 for p in module.parameters()):
        module.to(memory_format=torch.channels_last)
    return module


def load(source: models.ModelSource, options: LoadOptions, report: Report = lambda message: None) -> LoadedModel:
    """Load a model, move it to the device and prepare it for the engine."""
    start = time.perf_counter()
    pipe = LOADERS[source.kind](source, options, report)
    family = _family_of(pipe, source)
    mode = options.quantize
    if mode != "none" and source.kind == "single_file" and format_of(source.ref).quantized:
        report(f"{source.name} is quantized already ({format_of(source.ref).name}): --quantize {mode} leaves it as it is")
        mode = "none"
    pipe = place(quantize(pipe, FAMILIES[family].denoiser, mode), options)
    pipe.set_progress_bar_config(disable=True)  # the engine reports progress itself
    model_hash = None
    if source.kind == "single_file":
        report("Hashing the checkpoint for the infotext")
        model_hash = short_hash(source.ref)
    loaded = LoadedModel(
        source=source,
        family=family,
        pipe=pipe,
        scheduler_config=dict(pipe.scheduler.config),
        model_hash=model_hash,
        load_s=time.perf_counter() - start,
        device=options.device,
    )
    log.info("Loaded %s (%s) on %s in %.1fs", source.name, family, options.device.describe(), loaded.load_s)
    return loaded


# -- task pipelines: img2img and inpainting on the same weights ----------------------------------

def call_parameters(pipe: Any) -> frozenset[str]:
    """The keyword arguments a pipeline's call takes (read once per pipeline class)."""
    return _call_parameters(type(pipe))


@functools.cache
def _call_parameters(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.__call__).parameters)


def task_pipe(loaded: LoadedModel, task: str) -> Any:
    """The model's pipeline for a task, built once with `from_pipe`: it shares every component
    (UNet, VAE, text encoders, and any LoRA loaded into them) with the text-to-image pipeline, so
    switching tasks loads nothing and uses no memory."""
    if task == "txt2img" or loaded.inpainting or loaded.family_def.pipelines.get(task) == loaded.family_def.pipeline:
        # A dedicated inpainting model loads as its inpainting pipeline; its UNet needs a mask and
        # a masked image on every call, so every task runs through it (see the engine). A task whose
        # pipeline is the text-to-image one (FLUX.2 Klein edits with it) is that pipeline.
        return loaded.pipe
    pipe = loaded.task_pipes.get(task)
    if pipe is None:
        # The base's dtype, always: without it from_pipe casts the *shared* modules to fp32 in place.
        # Modules quantized by diffusers (GGUF) refuse any cast, even to their own dtype: they join
        # after it.
        quantized = {name: module for name, module in loaded.pipe.components.items()
                     if getattr(module, "hf_quantizer", None) is not None}
        pipe = PIPELINE_CLASSES[loaded.family_def.pipelines[task]].from_pipe(
            loaded.pipe, torch_dtype=loaded.pipe.dtype, **dict.fromkeys(quantized))
        pipe.register_modules(**quantized)
        pipe.set_progress_bar_config(disable=True)
        loaded.task_pipes[task] = pipe
    return pipe


# -- LoRAs --------------------------------------------------------------------------------------

TEXT_ENCODER_LORA_PREFIXES = ("text_encoder", "lora_te")  # diffusers' and kohya's text-encoder keys
MAX_ADAPTERS = 8  # LoRAs kept loaded per model; the least recently used is deleted beyond this


def load_lora(loaded: LoadedModel, file: Any) -> tuple[str, str]:
    """Load a LoRA file (or hub repo) into the model once; returns (adapter name, short hash)."""
    if file.ref in loaded.adapters:
        entry = loaded.adapters.pop(file.ref)
        loaded.adapters[file.ref] = entry  # most recently used last
        return entry
    from safetensors.torch import load_file

    if file.is_hub:
        from huggingface_hub import hf_hub_download

        path = hub_or_cache(f"LoRA {file.ref}", lambda local: hf_hub_download(
            file.ref, "pytorch_lora_weights.safetensors", local_files_only=local))
    else:
        path = file.ref
    try:
        state = load_file(path)
    except Exception as exc:
        raise ModelLoadError(f"LoRA {file.name} is not a readable .safetensors file: {plain(exc)}") from exc
    adapter = f"lora_{hashlib.sha256(file.ref.encode()).hexdigest()[:12]}"
    try:
        with warnings.catch_warnings():  # peft warns on every adapter after the first: expected here
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            loaded.pipe.load_lora_weights(state, adapter_name=adapter)
    except Exception as exc:
        raise ModelLoadError(
            f"LoRA {file.name} does not fit {loaded.name} ({loaded.family}): {type(exc).__name__}: {plain(exc)}"
        ) from exc
    placed = {component for component, names in loaded.pipe.get_list_adapters().items() if adapter in names}
    denoiser = loaded.family_def.denoiser
    text_only = all(key.startswith(TEXT_ENCODER_LORA_PREFIXES) for key in state)
    if not placed or (denoiser not in placed and not text_only):
        # diffusers skips keys that match no module with only a warning (an SD LoRA on FLUX would
        # load its CLIP part alone): refuse rather than half-apply it.
        loaded.pipe.delete_adapters(adapter)
        raise ModelLoadError(f"LoRA {file.name} does not fit {loaded.name} ({loaded.family}): its layers for the "
                             f"{denoiser} match nothing in this model (a LoRA for another model family?)")
    entry = (adapter, short_hash(path, 12))
    loaded.adapters[file.ref] = entry
    while len(loaded.adapters) > MAX_ADAPTERS:
        old_ref, (old_adapter, _) = next(iter(loaded.adapters.items()))
        loaded.pipe.delete_adapters(old_adapter)
        del loaded.adapters[old_ref]
    return entry


def activate_loras(loaded: LoadedModel, adapters: list[str], weights: list[float]) -> None:
    loaded.pipe.enable_lora()
    loaded.pipe.set_adapters(adapters, adapter_weights=weights)


def disable_loras(loaded: LoadedModel) -> None:
    """No LoRA in this generation: the adapters stay loaded but are bypassed entirely, so the
    model computes exactly what it did before any was loaded."""
    if loaded.adapters:
        loaded.pipe.disable_lora()
