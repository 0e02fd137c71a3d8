"""The page's control inputs. ControlNet units: a picture (uploaded, or drawn on the canvas for a
scribble), its preprocessor and ControlNet, and its numbers, up to three units in tabs; "Preview map"
shows the control map the unit makes at the generation size (downloadable from the image's own button).
Image prompts (IP-Adapter): up to four reference pictures, each with its adapter and weight; a slot
with a picture is on. The model boxes list the ControlNets and adapters made for the page's model
(`wire_models`), a fitting one picked; "Show all" lists every family's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from ..control.preprocessors import PREPROCESSORS, find, preprocess
from ..control import image_prompts
from ..control.folder import family_by_name, folder_models, is_adapter_name
from ..control.known import KNOWN_ADAPTERS, KNOWN_MODELS
from ..control.units import MAX_UNITS, UNIT
from ..errors import StudioError
from ..models import resolve_model
from .bounded import BoundedImageEditor
from .calls import as_gradio_error
from .widgets import part_widget

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
BUILTIN = "builtin:"  # the tiny models' own ControlNets and adapters


@dataclass
class Unit:
    parts: dict[str, Any]  # UNIT_KEYS -> component
    preview: Any  # the control map
    show: Any  # the "Preview map" button
    use_result: Any  # buttons: the shown result / the init image as the unit's picture
    use_init: Any
    show_all: Any = None  # the panel's "Show all" box (every family's ControlNets listed)
    folder: Any = None  # the controlnets folder its list names


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


def model_fit(model: Any) -> tuple[str | None, bool]:
    """What the model's add-ons are made for (its family, or its preset's `base`; None: no model, or not
    known before it loads) and whether it is a tiny one (a builtin: the builtin ControlNets and adapters
    are the ones that fit it)."""
    try:
        source = resolve_model(model)
    except StudioError:
        return None, False
    return source.base, source.kind == "builtin"


def fits(name: str, made_for: str | None, family: str | None, tiny: bool) -> bool:
    """Whether a ControlNet or adapter made for `made_for` (None: its name does not say) fits the model."""
    return family is None or made_for is None or (made_for == family and name.startswith(BUILTIN) == tiny)


def choices(folder: Any, known: dict[str, str], family: str | None = None, tiny: bool = False,
            show_all: bool = False, adapters: bool = False) -> list[str]:
    """A model box's list: the controlnets folder's files by name (the IP-Adapters' in the adapters' box,
    the others in the ControlNets'), then the known ones; only those that fit the model (every one
    while its family is not known), or with `show_all` every one, those that fit first."""
    names = {name: family_by_name(name) for name in folder_models(folder)
             if show_all or is_adapter_name(name) == adapters}
    names.update((name, made_for) for name, made_for in known.items() if name not in names)
    fitting = [name for name, made_for in names.items() if fits(name, made_for, family, tiny)]
    return [*fitting, *(name for name in names if name not in fitting)] if show_all else fitting


def default_model(known: dict[str, str], family: str | None, tiny: bool) -> str | None:
    """The box's default: the first known one made for the model (the builtin one on a tiny model)."""
    return next((name for name, made_for in known.items()
                 if made_for == family and name.startswith(BUILTIN) == tiny), None)


def fitted(current: Any, known: dict[str, str], folder: Any, family: str | None, tiny: bool,
           show_all: bool = False) -> str | None:
    """A box's value for the model: kept when it fits (or is typed by hand, or every family is shown),
    else the model's default; an empty box takes the default."""
    current = current.strip() if isinstance(current, str) else ""
    if not current:
        return default_model(known, family, tiny)
    made_for = known[current] if current in known else (
        family_by_name(current) if current in folder_models(folder) else None)
    return current if show_all or fits(current, made_for, family, tiny) else default_model(known, family, tiny)


def build_units(folder: Any = None) -> list[Unit]:
    units = []
    with gr.Accordion("ControlNet", open=False, elem_id="controlnet"):
        show_all = gr.Checkbox(False, label="Show all ControlNets (those made for other families too)",
                               elem_id="cn-show-all")
        with gr.Tabs():
            for n in range(MAX_UNITS):
                with gr.Tab(f"Unit {n + 1}", elem_id=f"cn-tab-{n}"):
                    units.append(_unit(n, choices(folder, KNOWN_MODELS)))
    for unit in units:
        unit.show_all, unit.folder = show_all, folder
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
    show_all: Any = None  # the panel's "Show all" box (every family's adapters listed)
    folder: Any = None

    @property
    def image(self) -> Any:
        return self.parts["image"]


def build_slots(folder: Any = None) -> list[Slot]:
    slots, adapters, fields = [], choices(folder, KNOWN_ADAPTERS, adapters=True), image_prompts.PROMPT.fields
    with gr.Accordion("Image prompts (IP-Adapter)", open=False, elem_id="image-prompts"):
        show_all = gr.Checkbox(False, label="Show all adapters (those made for other families too)",
                               elem_id="ip-show-all")
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
                    slots.append(Slot(parts, use_result, show_all, folder))
    return slots


@dataclass
class Controls:
    """The page's ControlNet units and image prompt slots, as the Generate, restore and wiring see them."""
    units: list[Unit]
    slots: list[Slot]
    model: Any = None  # the page's model box (`wire_models`): an empty ControlNet or adapter box takes its default

    def inputs(self) -> list[Any]:
        return [*(c for unit in self.units for c in unit.parts.values()),
                *(c for slot in self.slots for c in slot.parts.values())]

    def settings(self, data: dict) -> dict[str, Any]:
        """The request's `controlnets` and `image_prompts` from the page's values; an empty model box
        takes the default made for the model (the API's callers name theirs)."""
        fit = model_fit(data.get(self.model)) if self.model is not None else (None, False)
        units = [u for u in (unit_settings(unit, data) for unit in self.units) if u]
        prompts = [{name: data.get(c) for name, c in slot.parts.items()}
                   for slot in self.slots if data.get(slot.image) is not None]
        for values, known in [*((u, KNOWN_MODELS) for u in units), *((p, KNOWN_ADAPTERS) for p in prompts)]:
            if not values.get("model"):
                values["model"] = default_model(known, *fit) or values.get("model")
        return {"controlnets": units, "image_prompts": prompts}

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


def model_boxes(controls: Controls) -> list[Any]:
    """Each unit's ControlNet box, then each slot's adapter box."""
    return [*(unit.parts["model"] for unit in controls.units), *(slot.parts["model"] for slot in controls.slots)]


def fit_to_model(controls: Controls, model: Any, show_all_models: bool, show_all_adapters: bool,
                 *current: Any) -> list[Any]:
    """Each box (`model_boxes`) for the model: what fits it listed (every one with "Show all"), its value
    kept when it fits, else the model's default."""
    family, tiny = model_fit(model)
    boxes = [*((KNOWN_MODELS, unit.folder, show_all_models, False) for unit in controls.units),
             *((KNOWN_ADAPTERS, slot.folder, show_all_adapters, True) for slot in controls.slots)]
    return [gr.update(choices=choices(folder, known, family, tiny, bool(show_all), adapters),
                      value=fitted(value, known, folder, family, tiny, bool(show_all)))
            for (known, folder, show_all, adapters), value in zip(boxes, current)]


def wire_models(controls: Controls, model: Any) -> None:
    """The boxes list what fits the page's model from the start, and again when it changes or a "Show
    all" box is ticked; a Generate's empty box takes the model's default (`Controls.settings`)."""
    controls.model = model
    boxes = model_boxes(controls)
    show = [part.show_all for part in (*controls.units[:1], *controls.slots[:1])]
    if len(show) != 2 or None in show:  # a page without both panels
        return
    # The starting model's lists, set before the page's config is made (no empty box while it loads).
    for box, update in zip(boxes, fit_to_model(controls, model.value, False, False, *(b.value for b in boxes))):
        box.choices, box.value = [(name, name) for name in update["choices"]], update["value"]
    gr.on([model.change, *(box.change for box in show)], lambda *values: fit_to_model(controls, *values),
          inputs=[model, *show, *boxes], outputs=boxes, api_visibility="private", show_progress="hidden",
          concurrency_limit=None)
