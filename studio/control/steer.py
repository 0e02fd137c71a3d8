"""A generation's ControlNet units, ready to steer its passes: the active units' models (loaded once),
their control maps (preprocessed once, at the generation size) and each pass's arguments.

Units that cannot steer anything (weight 0, or an empty start..end range) are left out here, and a
generation with no active unit runs the model's plain pipelines: exactly the image without ControlNet.
A unit's model is a ControlNet or a T2I-Adapter (its files say which: t2i_adapter.is_adapter); the
active units of one request are all of one (diffusers has no pipeline that runs both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from ..errors import InvalidValue
from ..loading import LoadedModel, call_parameters
from . import adapter_pipes
from .folder import resolve
from .models import ControlNets, check_fits, kind_of
from .pipes import MULTI, check_supported, control_pipe
from .preprocessors import preprocess, read_size
from .t2i_adapter import adapter_layout, describe, fits, is_adapter, unet_layout
from .units import CONTROL_MODES, ControlUnit, union_index


def map_argument(pipe: Any) -> str:
    """Where a ControlNet pipeline takes the control maps: `control_image`, or `image` for SD's text to
    image (its img2img and inpaint pipelines take the picture to start from as `image`)."""
    return "control_image" if "control_image" in call_parameters(pipe) else "image"


@dataclass(frozen=True)
class Control:
    units: tuple[ControlUnit, ...]  # the active ones, in request order
    nets: list[Any]
    maps: list[Image.Image]  # at the generation size
    union_modes: list[int | None]  # each unit's control type number on a union ControlNet, else None
    indices: tuple[int, ...] = ()  # each active unit's place in the request's units

    def pipe(self, loaded: LoadedModel, task: str) -> Any:
        return control_pipe(loaded, task, self.nets, [u.control_mode for u in self.units])

    def arguments(self, pipe: Any, size: tuple[int, int], guided: bool) -> dict[str, Any]:
        """The control arguments of a pass through a control pipeline (the hires pass gets the maps at
        its larger size), else none. `guided`: the pass runs CFG's negative half in its batch."""
        if not isinstance(getattr(pipe, "controlnet", None), tuple(MULTI.values())):
            return {}
        pipe.controlnet.guided = guided
        maps = [m if m.size == size else m.resize(size, Image.Resampling.LANCZOS) for m in self.maps]
        unions = {"control_mode": self.union_modes} if any(m is not None for m in self.union_modes) else {}
        return {map_argument(pipe): maps, **unions,
                "controlnet_conditioning_scale": [u.weight for u in self.units],
                "control_guidance_start": [u.guidance_start for u in self.units],
                "control_guidance_end": [u.guidance_end for u in self.units]}


@dataclass(frozen=True)
class AdapterControl(Control):
    """Active units whose models are T2I-Adapters (`nets`): one adapter pipeline runs them all, for text
    to image only (prepare refuses other passes)."""

    def pipe(self, loaded: LoadedModel, task: str) -> Any:
        return adapter_pipes.adapter_pipe(loaded, self.nets)

    def arguments(self, pipe: Any, size: tuple[int, int], guided: bool) -> dict[str, Any]:
        if not isinstance(pipe, tuple(adapter_pipes.PIPELINES.values())):
            return {}
        return adapter_pipes.adapter_arguments(pipe, self.units, self.nets, self.maps, size)


def prepare(units: Sequence[ControlUnit], loaded: LoadedModel, controlnets: ControlNets, size: tuple[int, int],
            seed: int, tasks: Sequence[str] = ("txt2img",), folder: Path | None = None,
            between_units: Callable[[], None] = lambda: None) -> Control | None:
    """The request's active units, checked against the model and preprocessed; None when none steers.
    `tasks`: the kinds of pass the request makes (hires: txt2img, then img2img), all checked first;
    `folder`: the controlnets folder, where models are found by name; `between_units`: raises the
    job's cancellation when Stop was pressed (called before each unit's model and preprocessing)."""
    active = [(i, u) for i, u in enumerate(units) if u.active()]
    if not active:
        return None
    for i, unit in active:  # every picture's size first: none is preprocessed if one is refused
        if unit.image is not None:
            read_size(unit.image.size, unit.module, size, unit.resize_mode,
                      None if unit.pixel_perfect else unit.processor_res, f"controlnets[{i}]")
    check_supported(loaded)
    if loaded.inpainting:
        raise InvalidValue("controlnets", f"{len(active)} units", f"none on {loaded.name}: ControlNet does not run "
                                                                   "on dedicated inpainting models (use its base model)")
    for i, unit in active:
        if unit.image is None:
            raise InvalidValue(f"controlnets[{i}].image", None, "a picture to preprocess, or a control map with "
                                                                "module none (PNGs do not store them: add it again)")
    refs = {i: resolve(unit.model, folder, controlnets.allow_pickle) for i, unit in active}
    adapters = {i: is_adapter(ref, controlnets.allow_pickle) for i, ref in refs.items()}
    first = active[0][0]
    mixed = next((i for i, _ in active if adapters[i] != adapters[first]), None)
    if mixed is not None:
        kinds = ("a ControlNet", "a T2I-Adapter")
        raise InvalidValue(f"controlnets[{mixed}].model", units[mixed].model, f"{kinds[adapters[first]]}, as unit "
                           f"{first}'s is (this one is {kinds[adapters[mixed]]}): diffusers has no pipeline that runs "
                           "ControlNets and T2I-Adapters together")
    if adapters[first]:
        return _prepare_adapters(active, refs, loaded, controlnets, size, seed, tasks, between_units)
    family = loaded.family_def
    nets, maps, union_modes = [], [], []
    for i, unit in active:
        between_units()
        if unit.control_mode != CONTROL_MODES[0] and family.denoiser != "unet":
            raise InvalidValue(f"controlnets[{i}].control_mode", unit.control_mode,
                               f"{CONTROL_MODES[0]} on {loaded.name} (the other modes are for SD 1.x and SDXL)")
        ref = refs[i]
        kind = kind_of(ref, family)
        net = controlnets.get(ref, kind)
        check_fits(net, unit.model, loaded.pipe, family.denoiser, loaded.name, f"controlnets[{i}].model")
        if nets and kind != type(nets[0]).__name__:
            raise InvalidValue(f"controlnets[{i}].model", unit.model, f"a ControlNet of the same kind as unit "
                               f"{active[0][0]}'s ({type(nets[0]).__name__}; this one is a {kind}): one pipeline "
                               "runs them all")
        missing = [t for t in tasks if t not in family.control_pipelines[kind]] if not nets else []  # one kind
        if missing:
            raise InvalidValue("controlnets", f"{len(active)} units", f"none for {missing[0]} on {loaded.name}: its "
                               f"ControlNets run for {', '.join(family.control_pipelines[kind])} only")
        union = kind == "ControlNetUnionModel" or getattr(net, "union", False)
        union_modes.append(union_index(kind, unit, f"controlnets[{i}].union_type") if union else None)
        nets.append(net)
        maps.append(preprocess(unit.image, unit.module, size, unit.resize_mode,
                               None if unit.pixel_perfect else unit.processor_res,
                               unit.threshold_a, unit.threshold_b, seed, f"controlnets[{i}]"))
    return Control(tuple(u for _, u in active), nets, maps, union_modes, tuple(i for i, _ in active))


def _prepare_adapters(active: Sequence[tuple[int, ControlUnit]], refs: dict[int, str], loaded: LoadedModel,
                      controlnets: ControlNets, size: tuple[int, int], seed: int, tasks: Sequence[str],
                      between_units: Callable[[], None]) -> AdapterControl:
    """The T2I-Adapter units: checked (adapter_pipes.check_units), each adapter loaded and fitted to the
    model's UNet (its features at the sizes and widths the UNet's blocks take them), its map made."""
    adapter_pipes.check_units(active, loaded, tasks)
    unet = unet_layout(loaded.pipe.unet, loaded.pipe.vae_scale_factor)
    adapters, maps = [], []
    for i, unit in active:
        between_units()
        field = f"controlnets[{i}].model"
        adapter = controlnets.adapter(refs[i], unet)
        made = adapter_layout(adapter.config)
        if not fits(made, unet):
            raise InvalidValue(field, unit.model, f"a T2I-Adapter made for {loaded.name}'s family (its UNet takes "
                               f"{describe(unet[0])}; this adapter makes {describe(made)})")
        adapter_pipes.check_size(adapter, size, unit.model, field)
        adapters.append(adapter)
        maps.append(preprocess(unit.image, unit.module, size, unit.resize_mode,
                               None if unit.pixel_perfect else unit.processor_res,
                               unit.threshold_a, unit.threshold_b, seed, f"controlnets[{i}]"))
    return AdapterControl(tuple(u for _, u in active), adapters, maps, [None] * len(active),
                          tuple(i for i, _ in active))
