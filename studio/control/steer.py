"""A generation's ControlNet units, ready to steer its passes: the active units' models (loaded once),
their control maps (preprocessed once, at the generation size) and each pass's arguments.

Units that cannot steer anything (weight 0, or an empty start..end range) are left out here, and a
generation with no active unit runs the model's plain pipelines: exactly the image without ControlNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from ..errors import InvalidValue
from ..loading import LoadedModel, call_parameters
from .folder import resolve
from .models import ControlNets, check_fits, kind_of
from .pipes import MULTI, check_supported, control_pipe
from .preprocessors import preprocess, read_size
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
    family = loaded.family_def
    nets, maps, union_modes = [], [], []
    for i, unit in active:
        between_units()
        if unit.image is None:
            raise InvalidValue(f"controlnets[{i}].image", None, "a picture to preprocess, or a control map with "
                                                                "module none (PNGs do not store them: add it again)")
        if unit.control_mode != CONTROL_MODES[0] and family.denoiser != "unet":
            raise InvalidValue(f"controlnets[{i}].control_mode", unit.control_mode,
                               f"{CONTROL_MODES[0]} on {loaded.name} (the other modes are for SD 1.x and SDXL)")
        ref = resolve(unit.model, folder, controlnets.allow_pickle)
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
