"""The page's control inputs. ControlNet units: a picture (uploaded, or drawn on the canvas for a
scribble), its preprocessor and ControlNet, and its numbers, up to three units in tabs; "Preview map"
shows the control map the unit makes at the generation size (downloadable from the image's own button).
Image prompts (IP-Adapter): up to four reference pictures, each with its adapter and weight; a slot
with a picture is on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from ..control.preprocessors import PREPROCESSORS, find, preprocess
from ..control import image_prompts
from ..control.folder import folder_models
from ..control.units import MAX_UNITS, UNIT
from ..errors import StudioError
from .bounded import BoundedImageEditor
from .calls import as_gradio_error
from .widgets import part_widget

# Offered in the model box (any hub id, folder or file can be typed): the tiny models' own, and the
# ControlNet 1.1 models A1111 users know.
KNOWN_MODELS = ("builtin:controlnet/sd15", "builtin:controlnet/sdxl", "builtin:controlnet/sdxl-union",
                "builtin:controlnet/flux", "builtin:controlnet/flux-union", "xinsir/controlnet-union-sdxl-1.0",
                "InstantX/FLUX.1-dev-Controlnet-Union", "builtin:controlnet/sd3",
                "stabilityai/stable-diffusion-3.5-large-controlnet-canny",
                "lllyasviel/control_v11p_sd15_canny",
                "lllyasviel/control_v11p_sd15_scribble", "lllyasviel/control_v11f1p_sd15_depth",
                "lllyasviel/control_v11f1e_sd15_tile", "lllyasviel/control_v11p_sd15_openpose",
                "diffusers/controlnet-canny-sdxl-1.0", "InstantX/FLUX.1-dev-Controlnet-Canny")
# The image prompts' adapters: the tiny models' own, the ones A1111 users know (h94/IP-Adapter), XLabs' FLUX one.
KNOWN_ADAPTERS = ("builtin:ip-adapter/sd15", "builtin:ip-adapter/sdxl", "builtin:ip-adapter/flux",
                  *image_prompts.A1111_MODULES, "XLabs-AI/flux-ip-adapter")
# A unit's controls: its switch, then one per ControlUnit field (declared there once), laid out in these
# rows (the picture beside its control map); a test checks every field has its place.
UNIT_KEYS = ("enabled", *UNIT.fields.by_name)
UNIT_ROWS = (("image",), ("module", "model"), ("weight", "guidance_start", "guidance_end"),
             ("resize_mode", "pixel_perfect", "processor_res"), ("threshold_a", "threshold_b"),
             ("control_mode", "union_type"))
# Layout only: the control mode wide; in rows of sliders no help line (it would push one slider down).
UNIT_PAGE = {"control_mode": {"scale": 3}, "union_type": {"scale": 1}, "guidance_start": {"info": None},
             "pixel_perfect": {"info": None}}
ELEM_IDS = {"control_mode": "mode", "union_type": "union"}  # the element ids tests and users' scripts know


@dataclass
class Unit:
    parts: dict[str, Any]  # UNIT_KEYS -> component
    preview: Any  # the control map
    show: Any  # the "Preview map" button
    use_result: Any  # buttons: the shown result / the init image as the unit's picture
    use_init: Any


def picture(value: Any) -> Image.Image | None:
    """The unit's canvas as one RGB picture: the upload with anything drawn on it, or strokes on white."""
    if not isinstance(value, dict):
        return value if isinstance(value, Image.Image) else None
    composite = value.get("composite")
    if composite is None or (composite.getbbox() is None and value.get("background") is None):
        return None
    white = Image.new("RGBA", composite.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, composite.convert("RGBA")).convert("RGB")


def sliders(module: str) -> tuple[Any, Any]:
    """The two number sliders as this module names and bounds them (hidden when it has none)."""
    pre = PREPROCESSORS.get(module) or find("none")
    return tuple(gr.update(visible=False) if s is None else
                 gr.update(visible=True, label=s.label, minimum=s.low, maximum=s.high, value=s.default)
                 for s in (pre.a, pre.b))


def choices(folder: Any, known: tuple[str, ...]) -> list[str]:
    """A model box's list: the controlnets folder's files by name, then the known ones."""
    return [*folder_models(folder), *known]


def build_units(folder: Any = None) -> list[Unit]:
    units = []
    with gr.Accordion("ControlNet", open=False, elem_id="controlnet"):
        with gr.Tabs():
            for n in range(MAX_UNITS):
                with gr.Tab(f"Unit {n + 1}", elem_id=f"cn-tab-{n}"):
                    units.append(_unit(n, choices(folder, KNOWN_MODELS)))
    return units


def _unit(n: int, models: list[str]) -> Unit:
    parts: dict[str, Any] = {"enabled": gr.Checkbox(False, label="Enable", elem_id=f"cn-enabled-{n}")}
    fields = UNIT.fields
    canny = PREPROCESSORS["canny"]  # the module the page starts with: its two numbers' sliders
    for row in UNIT_ROWS:
        with gr.Row():
            for name in row:
                elem_id = f"cn-{ELEM_IDS.get(name, name.replace('_', '-'))}-{n}"
                if name == "image":
                    parts[name] = BoundedImageEditor(
                        type="pil", label=fields[name].label, height=300, sources=["upload", "clipboard"],
                        transforms=[], layers=False, format="png", canvas_size=(512, 512), elem_id=elem_id,
                        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=6))
                    preview = gr.Image(label="Control map", interactive=False, format="png", height=300,
                                       elem_id=f"cn-map-{n}")
                elif fields[name].widget == "threshold":  # named and bounded by the module (`sliders`)
                    s = canny.a if name == "threshold_a" else canny.b
                    parts[name] = gr.Slider(s.low, s.high, value=s.default, label=s.label, elem_id=elem_id)
                else:
                    parts[name] = part_widget(fields[name], elem_id, **UNIT_PAGE.get(name, {}),
                                              **({"choices": models} if name == "model" else {}))
    with gr.Row():
        show = gr.Button("Preview map", size="sm", elem_id=f"cn-show-{n}")
        use_result = gr.Button("Use the result", size="sm", elem_id=f"cn-use-result-{n}")
        use_init = gr.Button("Use the init image", size="sm", elem_id=f"cn-use-init-{n}")
    parts["module"].change(sliders, inputs=parts["module"], outputs=[parts["threshold_a"], parts["threshold_b"]],
                           api_visibility="private", show_progress="hidden")
    return Unit(parts, preview, show, use_result, use_init)


def unit_settings(unit: Unit, data: dict) -> dict[str, Any] | None:
    """A unit's settings for the request (its picture made one image), or None when it is off."""
    values = {key: data.get(component) for key, component in unit.parts.items()}
    if not values.pop("enabled"):
        return None
    values["image"] = picture(values["image"])  # a module without numbers ignores its hidden sliders' values
    return values


def show_map(image: Any, module: str, resize_mode: str, pixel_perfect: bool, processor_res: float,
             a: float, b: float, width: float, height: float) -> Image.Image:
    """"Preview map": the unit's control map at the generation size, as the generation will use it
    (content shuffle aside: a generation shuffles with its own seed)."""
    source = picture(image)
    if source is None:
        raise gr.Error("Add a picture first (upload one, or draw on the canvas).", print_exception=False)
    try:
        return preprocess(source, module, (int(width), int(height)), resize_mode,
                          None if pixel_perfect else int(processor_res), a, b, seed=0)
    except StudioError as exc:
        raise as_gradio_error(exc) from None


def wire(units: list[Unit], width: Any, height: Any) -> None:
    """Each unit's "Preview map" button (at the form's size)."""
    for unit in units:
        p = unit.parts
        unit.show.click(show_map, inputs=[p["image"], p["module"], p["resize_mode"], p["pixel_perfect"], p["processor_res"],
                                      p["threshold_a"], p["threshold_b"], width, height],
                        outputs=unit.preview, api_visibility="private", show_progress="minimal")


def unit_updates(units: list[Unit], restored: Any) -> tuple[dict[Any, Any], list[str]]:
    """A PNG's units back in the page's units (their pictures are never in a PNG: the note says to add
    them again); units it does not use are switched off."""
    restored = list(restored or ())
    updates: dict[Any, Any] = {}
    for n, unit in enumerate(units):
        if n >= len(restored):
            updates[unit.parts["enabled"]] = gr.update(value=False)
            continue
        saved = restored[n]
        values = {key: getattr(saved, key) for key in UNIT_KEYS if key not in ("enabled", "image")}
        updates[unit.parts["enabled"]] = gr.update(value=True)
        for key, value in values.items():
            if value is not None:
                updates[unit.parts[key]] = gr.update(value=value)
    notes = [f"{len(restored)} ControlNet unit(s) restored without their pictures (PNGs do not hold them): add "
             f"each unit's picture again."] if restored else []
    if len(restored) > len(units):
        notes.append(f"Only the first {len(units)} units fit in the page.")
    return updates, notes


def outputs(units: list[Unit]) -> list[Any]:
    return [c for unit in units for c in unit.parts.values() if c is not unit.parts["image"]]


@dataclass
class Slot:
    """One image prompt: a control per ImagePrompt field (on when it has a picture), and its button."""
    parts: dict[str, Any]  # ImagePrompt's field names -> component
    use_result: Any

    @property
    def image(self) -> Any:
        return self.parts["image"]


def build_slots(folder: Any = None) -> list[Slot]:
    slots, adapters, fields = [], choices(folder, KNOWN_ADAPTERS), image_prompts.PROMPT.fields
    with gr.Accordion("Image prompts (IP-Adapter)", open=False, elem_id="image-prompts"):
        with gr.Tabs():
            for n in range(image_prompts.MAX_PROMPTS):
                with gr.Tab(f"Image {n + 1}", elem_id=f"ip-tab-{n}"):
                    parts = {}
                    with gr.Row():
                        parts["image"] = part_widget(fields["image"], f"ip-image-{n}", height=220)
                        with gr.Column():
                            for name in fields.by_name:  # the adapter, the weight (and any field added)
                                if name != "image":
                                    parts[name] = part_widget(fields[name], f"ip-{name.replace('_', '-')}-{n}",
                                                              **({"choices": adapters} if name == "model" else {}))
                            use_result = gr.Button("Use the result", size="sm", elem_id=f"ip-use-result-{n}")
                    slots.append(Slot(parts, use_result))
    return slots


@dataclass
class Controls:
    """The page's ControlNet units and image prompt slots, as the Generate, restore and wiring see them."""
    units: list[Unit]
    slots: list[Slot]

    def inputs(self) -> list[Any]:
        return [*(c for unit in self.units for c in unit.parts.values()),
                *(c for slot in self.slots for c in slot.parts.values())]

    def settings(self, data: dict) -> dict[str, Any]:
        """The request's `controlnets` and `image_prompts` from the page's values."""
        return {"controlnets": [u for u in (unit_settings(unit, data) for unit in self.units) if u],
                "image_prompts": [{name: data.get(c) for name, c in slot.parts.items()}
                                  for slot in self.slots if data.get(slot.image) is not None]}

    def maps(self) -> list[Any]:
        """The units' control map images (a generation shows there the maps it used)."""
        return [unit.preview for unit in self.units]

    def used_maps(self, data: dict, used: dict[int, Any]) -> dict[Any, Any]:
        """The maps a generation used, each in its unit's image: request unit i is the i-th unit on."""
        on = [unit for unit in self.units if data.get(unit.parts["enabled"])]
        return {on[i].preview: image for i, image in used.items() if i < len(on)}

    def outputs(self) -> list[Any]:
        """What restoring settings changes (units' numbers; slots' adapters, weights, and pictures past
        the restored ones)."""
        return [*outputs(self.units), *(c for slot in self.slots for c in slot.parts.values())]

    def updates(self, fields: dict) -> tuple[dict[Any, Any], list[str]]:
        changes, notes = unit_updates(self.units, fields.get("controlnets"))
        restored = list(fields.get("image_prompts") or ())
        for n, slot in enumerate(self.slots):
            if n < len(restored):
                for name, component in slot.parts.items():
                    if name != "image":  # PNGs never hold the picture
                        changes[component] = gr.update(value=getattr(restored[n], name))
            else:  # a slot with a picture is on: those the PNG did not use are emptied
                changes[slot.image] = gr.update(value=None)
        if restored:
            notes.append(f"{len(restored)} image prompt(s) restored without their pictures (PNGs do not hold them): "
                         f"add each reference picture again.")
        return changes, notes
