"""The field table: every generation setting, declared once.

Each `Field` says its name, kind, default, range or choices, label and help, which tasks and
families use it, how it is written to and read from A1111's infotext, and how the page shows it.
Everything else derives from this table: `GenerationRequest` (its fields and their checks), the
page's widgets (built into `components[name]`), the `/generate` API's parameters and types, the
infotext writer and reader, PNG Info and History's "restore", and the request JSON in every PNG.
Adding a setting = one entry here + its effect in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import loras, prompts, samplers, validation
from .control import units as control_units
from .control import image_prompts
from .control import infotext as control_infotext
from .images import RESIZE_MODES
from .families import FAMILIES
from .models import ModelSource
from .previews import METHOD_NAMES as PREVIEW_METHODS
from .styles import style_names
from .tasks import TASK_NAMES
from .tasks.hires import UPSCALERS

DEFAULT_MODEL = "sd15"
MAX_SEED = 2**32 - 1
INPAINT_MODES = ("Inpaint masked", "Inpaint not masked")
MASKED_CONTENT = ("original", "fill", "latent noise")
INPAINT_AREAS = ("Whole picture", "Only masked")
RNG_SOURCES = ("cpu", "device")


class _FromModel:
    """The default of a setting that comes from the requested model's preset (steps, size...)."""

    def __repr__(self) -> str:
        return "FROM_MODEL"


FROM_MODEL = _FromModel()
MISSING = object()  # an infotext does not say


@dataclass(frozen=True)
class Context:
    """What a field's check may depend on: the model the request names."""

    source: ModelSource


@dataclass(frozen=True)
class Infotext:
    """How a field appears on A1111's parameter line (`Key: value, ...`)."""

    key: str | None  # None: never written (the value is read back from other keys)
    position: int = 500  # A1111's order on the line
    when: Callable[[Any], bool] = lambda request: True
    format: Callable[[Any], object] = str
    parse: Callable[[str], Any] = str
    write: Callable[[Any, int], object] | None = None  # custom: (request, image index) -> value or None
    read: Callable[[Mapping[str, str]], Any] | None = None  # custom: params -> value or MISSING
    note: str = ""  # for a key that is never written: where the value comes from (the README says)


def number_text(value: float) -> str:
    """A1111's look (7, 0.75) where that is exact; otherwise every digit, so the text reads back
    into the very same number."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text, int, float, bool, choice, names, image, model, loras, controlnets, image_prompts
    default: Any  # FROM_MODEL: the requested model's preset default
    label: str
    help: str = ""
    range: tuple[float, float] | None = None  # int / float: inclusive bounds
    range_note: str = ""  # e.g. " (-1 = random)"
    model_range: bool = False  # the bounds are the model's size range (width, height)
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    tasks: tuple[str, ...] = TASK_NAMES  # the tasks it changes anything in
    families: tuple[str, ...] | None = None  # None: every family
    infotext: tuple[Infotext, ...] = ()
    widget: str | None = None  # the page's control (see studio/ui/widgets.py); None: not on the page
    step: float | None = None  # slider step
    page: Mapping[str, Any] = field(default_factory=dict)  # extra widget arguments (lines, placeholder...)
    scope: str = "request"  # "request": a GenerationRequest field; "run": per click (batch count)
    record: bool = True  # stored in the PNG's request JSON and restored from it
    api: bool = True  # a parameter of the /generate API
    check: Callable[["Field", Any, Context], Any] | None = None  # replaces the kind's check

    def choice_list(self) -> list[str]:
        choices = self.choices() if callable(self.choices) else self.choices
        return list(choices or ())

    def validate(self, value: Any, context: Context) -> Any:
        """The value normalised, or an InvalidValue naming this field."""
        if self.check is not None:
            return self.check(self, value, context)
        return KIND_CHECKS[self.kind](self, value, context)

    def infotext_pairs(self, request: Any, index: int) -> Iterator[tuple[int, str, object]]:
        """(position, key, value) for each key this field writes for image `index` of a batch."""
        for spec in self.infotext:
            if spec.key is None:
                continue
            if spec.write is not None:
                value = spec.write(request, index)
            else:
                value = spec.format(getattr(request, self.name)) if spec.when(request) else None
            if value is not None and value != "":
                yield spec.position, spec.key, value

    def from_infotext(self, params: Mapping[str, str]) -> Any:
        """The value an infotext gives this field, or MISSING. Raises ValueError for a bad value."""
        for spec in self.infotext:
            if spec.read is not None:
                value = spec.read(params)
            elif spec.key is not None and spec.key in params:
                value = spec.parse(params[spec.key])
            else:
                continue
            if value is not MISSING:
                return value
        return MISSING


# -- checks per kind ------------------------------------------------------------------------------

def _check_int(f: Field, value: Any, context: Context) -> int:
    low, high = f.range
    return validation.int_in_range(f.name, value, int(low), int(high), f.range_note)


def _check_float(f: Field, value: Any, context: Context) -> float:
    return validation.float_in_range(f.name, value, *f.range, f.range_note)


KIND_CHECKS: dict[str, Callable[[Field, Any, Context], Any]] = {
    "text": lambda f, v, c: validation.text(f.name, v),
    "int": _check_int,
    "float": _check_float,
    "bool": lambda f, v, c: validation.boolean(f.name, v),
    "choice": lambda f, v, c: validation.choice(f.name, v, f.choice_list()),
    "names": lambda f, v, c: validation.names(f.name, v, f.choice_list()),
    "image": lambda f, v, c: validation.image(f.name, v),
    "loras": lambda f, v, c: loras.parse_refs(v),
    "controlnets": lambda f, v, c: control_units.parse_units(v),
    "image_prompts": lambda f, v, c: image_prompts.parse_prompts(v),
    "model": lambda f, v, c: c.source.name if c.source.preset else str(v).strip(),
}


def _check_size(f: Field, value: Any, context: Context) -> int:
    return context.source.size_rule.check(f.name, value, context.source.name, context.source.size_range)


def _check_task(f: Field, value: Any, context: Context) -> str | None:
    return None if value is None else validation.choice(f.name, value, f.choice_list())  # None: from the images


def _check_sampler(f: Field, value: Any, context: Context) -> str:
    if not isinstance(value, str):  # the name (a combined one too) is resolved with the schedule
        raise validation.UnknownName(f.name, value, samplers.sampler_names())
    return value


# -- reading keys that A1111 shares between fields --------------------------------------------------

def _size(params: Mapping[str, str], part: int) -> Any:
    if "Size" not in params:
        return MISSING
    width, sep, height = params["Size"].partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"{params['Size']!r} is not WIDTHxHEIGHT")
    return int((width, height)[part])


def _seed(params: Mapping[str, str]) -> Any:
    """A1111 writes each image's own seed; the batch it came from starts `Batch pos` earlier."""
    if "Seed" not in params:
        return MISSING
    return int(params["Seed"]) - int(params.get("Batch pos", "0"))


def _task(params: Mapping[str, str]) -> str:
    if "Mask blur" in params:
        return "inpaint"
    if "Denoising strength" in params and "Hires upscale" not in params:
        return "img2img"
    return "txt2img"


def _strength(hires: bool) -> Callable[[Mapping[str, str]], Any]:
    """A1111 writes "Denoising strength" for img2img's strength and for hires fix's."""
    def read(params: Mapping[str, str]) -> Any:
        if "Denoising strength" not in params or ("Hires upscale" in params) != hires:
            return MISSING
        return float(params["Denoising strength"])

    return read


def _is_img(request: Any) -> bool:
    return request.task != "txt2img"


def _is_inpaint(request: Any) -> bool:
    return request.task == "inpaint"


def _is_hires(request: Any) -> bool:
    return bool(request.hires)


IMAGE_TASKS = ("img2img", "inpaint")

FIELDS: tuple[Field, ...] = (
    # -- prompts (the infotext's first lines, written by studio/infotext.py) --
    Field("prompt", "text", "", "Prompt", help="what to draw; (word:1.3) weights, BREAK, <lora:name:0.8>",
          widget="textbox", infotext=(Infotext(None, note="the first lines"),), page={"lines": 3, "placeholder": "a lighthouse at dusk, (dramatic sky:1.2) — "
                                                              "Ctrl+Enter generates"}),
    Field("negative_prompt", "text", "", "Negative prompt", help="what to keep out", widget="textbox",
          page={"lines": 2}, infotext=(Infotext(None, note="the Negative prompt: line"),)),
    Field("styles", "names", (), "Styles", choices=style_names, widget="checkboxgroup",
          help="applied in order; the final prompt is shown in the infotext",
          infotext=(Infotext(None, read=lambda params: (), note="in the final prompt"),)),
    # -- model and sampling --
    Field("model", "model", DEFAULT_MODEL, "Model", widget="model",
          help="a preset, a checkpoint in the models folder, a hub id, a folder or a .safetensors file; ● = loaded",
          infotext=(Infotext("Model", 90, write=lambda r, i: r.source.name, read=lambda p: p.get("Model", MISSING)),)),
    Field("sampler", "choice", FROM_MODEL, "Sampler", choices=samplers.sampler_names, widget="dropdown",
          check=_check_sampler, help="A1111's names; old combined names such as 'DPM++ 2M Karras' work too",
          infotext=(Infotext("Sampler", 20),)),
    Field("schedule", "choice", FROM_MODEL, "Schedule type", choices=samplers.schedule_names, widget="dropdown",
          infotext=(Infotext("Schedule type", 30, write=lambda r, i: r.sampler_choice.effective_schedule.name
                             if r.schedule != samplers.AUTOMATIC or r.sampler_choice.sampler.auto_schedule else None,
                             read=lambda p: p.get("Schedule type", samplers.AUTOMATIC)),)),
    Field("steps", "int", FROM_MODEL, "Steps", range=(1, 150), widget="slider", step=1,
          infotext=(Infotext("Steps", 10, parse=int),)),
    Field("cfg_scale", "float", FROM_MODEL, "CFG scale", range=(0.0, 30.0), widget="slider", step=0.5,
          help="how closely to follow the prompt (FLUX dev: its distilled guidance)",
          infotext=(Infotext("CFG scale", 40, format=number_text, parse=float,
                             # Forge writes FLUX dev's guidance as "Distilled CFG Scale" (and CFG scale 1)
                             read=lambda p: float(p.get("Distilled CFG Scale", p.get("CFG scale", "nan")))
                             if "Distilled CFG Scale" in p or "CFG scale" in p else MISSING),)),
    Field("true_cfg_scale", "float", 1.0, "True CFG scale (FLUX)", range=(1.0, 30.0), widget="slider", step=0.5,
          families=tuple(f.name for f in FAMILIES.values() if f.true_cfg),  # the families say which
          help="FLUX: real CFG with the negative prompt, two passes a step (1 = off, one pass)",
          infotext=(Infotext("True CFG scale", 42, when=lambda r: r.true_cfg_scale != 1, format=number_text,
                             parse=float, read=lambda p: float(p.get("True CFG scale", "1"))),)),
    Field("seed", "int", -1, "Seed (-1 = random)", range=(-1, MAX_SEED), range_note=" (-1 = random)",
          widget="seed", infotext=(
              Infotext("Seed", 60, write=lambda r, i: r.seed + i, read=_seed),
              Infotext("Batch pos", 101, write=lambda r, i: i if r.batch_size > 1 else None, read=lambda p: MISSING),
          )),
    Field("width", "int", FROM_MODEL, "Width", model_range=True, check=_check_size, widget="slider", step=8,
          infotext=(Infotext("Size", 70, write=lambda r, i: f"{r.width}x{r.height}", read=lambda p: _size(p, 0)),)),
    Field("height", "int", FROM_MODEL, "Height", model_range=True, check=_check_size, widget="slider", step=8,
          infotext=(Infotext(None, read=lambda p: _size(p, 1), note="Size"),)),
    Field("batch_size", "int", 1, "Batch size", range=(1, 8), widget="slider", step=1, help="images per batch",
          infotext=(Infotext("Batch size", 100, when=lambda r: r.batch_size > 1, parse=int,
                             read=lambda p: int(p.get("Batch size", "1"))),)),
    Field("batch_count", "int", 1, "Batch count", range=(1, 32), widget="slider", step=1, scope="run",
          record=False, help="batches one after another; batch n starts at seed + n x batch size",
          infotext=(Infotext(None, read=lambda p: 1, note="restored as 1"),)),
    # -- prompt reading --
    Field("prompt_syntax", "choice", prompts.A1111, "Prompt syntax", choices=prompts.syntax_names, widget="radio",
          help="A1111: (word:1.3) ((word)) [word] BREAK · compel: word++ (words)1.3 .blend()",
          infotext=(Infotext("Prompt syntax", 170, read=lambda p: p.get("Prompt syntax", prompts.A1111)),)),
    Field("clip_skip", "int", 1, "Clip skip (SD 1.x)", range=(1, 2), widget="slider", step=1,
          families=tuple(f.name for f in FAMILIES.values() if f.clip_skip),  # the families say which
          help="2 = condition on CLIP's penultimate layer",
          infotext=(Infotext("Clip skip", 120, when=lambda r: r.clip_skip != 1, parse=int,
                             read=lambda p: int(p.get("Clip skip", "1"))),)),
    Field("rng", "choice", "cpu", "Noise source", choices=RNG_SOURCES, widget="radio",
          help="cpu: the same image from a seed on any device (A1111's RNG: CPU)",
          infotext=(Infotext("RNG", 160, write=lambda r, i: "CPU" if r.rng == "cpu" else None,
                             read=lambda p: "cpu" if p.get("RNG", "").upper() == "CPU" else "device"),)),
    Field("preview", "choice", "auto", "Live preview", choices=PREVIEW_METHODS, widget="dropdown", record=False,
          help="auto: TAESD on a GPU, else latent2rgb; changes nothing in the result"),
    Field("fast_decode", "bool", False, "Fast decode (TAESD)", widget="checkbox",
          help="decode the final image with the tiny autoencoder: several times faster on a CPU, a little softer",
          infotext=(Infotext("Fast decode", 175, when=lambda r: r.fast_decode, format=lambda v: "TAESD",
                             read=lambda p: p.get("Fast decode") == "TAESD"),)),
    # -- task and its input images (never stored in the PNG: they are described) --
    Field("task", "choice", None, "Task", choices=lambda: TASK_NAMES, check=_check_task, widget="task",
          help="txt2img, img2img (needs init_image) or inpaint (needs init_image and mask); "
               "left out: inpaint with a mask, img2img with an init image, else txt2img",
          infotext=(Infotext(None, read=_task, note="Mask blur: inpaint, Denoising strength: img2img"),)),
    Field("init_image", "image", None, "Start from", widget="image", tasks=IMAGE_TASKS, record=False,
          page={"image_mode": "RGB", "height": 320}),
    Field("mask", "image", None, "Mask (white = repaint)", widget="image", tasks=("inpaint",), record=False,
          page={"image_mode": "L", "height": 200}),
    Field("denoising_strength", "float", 0.75, "Denoising strength", range=(0.0, 1.0), widget="slider", step=0.01,
          tasks=IMAGE_TASKS, help="image to image and inpaint: 0 keeps the picture, 1 ignores it",
          infotext=(Infotext("Denoising strength", 110, when=_is_img, format=number_text, read=_strength(False)),)),
    Field("resize_mode", "choice", "Just resize", "Resize mode", choices=tuple(RESIZE_MODES), widget="dropdown",
          tasks=IMAGE_TASKS, infotext=(Infotext("Resize mode", 115,
                                                when=lambda r: _is_img(r) and r.resize_mode != "Just resize",
                                                read=lambda p: p.get("Resize mode", "Just resize")),)),
    Field("mask_blur", "int", 4, "Mask blur", range=(0, 64), widget="slider", step=1, tasks=("inpaint",),
          infotext=(Infotext("Mask blur", 130, when=_is_inpaint, parse=int),)),
    Field("inpaint_mode", "choice", INPAINT_MODES[0], "Mask mode", choices=INPAINT_MODES, widget="radio",
          tasks=("inpaint",), infotext=(Infotext("Mask mode", 131,
                                                 when=lambda r: _is_inpaint(r) and r.inpaint_mode != INPAINT_MODES[0],
                                                 read=lambda p: p.get("Mask mode", INPAINT_MODES[0])),)),
    Field("masked_content", "choice", "original", "Masked content", choices=MASKED_CONTENT, widget="radio",
          tasks=("inpaint",), infotext=(Infotext("Masked content", 132, when=_is_inpaint),)),
    Field("inpaint_area", "choice", INPAINT_AREAS[0], "Inpaint area", choices=INPAINT_AREAS, widget="radio",
          tasks=("inpaint",), infotext=(Infotext("Inpaint area", 133,
                                                 when=lambda r: _is_inpaint(r) and r.inpaint_area != INPAINT_AREAS[0],
                                                 read=lambda p: p.get("Inpaint area", INPAINT_AREAS[0])),)),
    Field("masked_padding", "int", 32, "Only masked padding, pixels", range=(0, 256), widget="slider", step=4,
          tasks=("inpaint",), infotext=(Infotext("Masked area padding", 134,
                                                 when=lambda r: _is_inpaint(r) and r.inpaint_area == "Only masked",
                                                 parse=int),)),
    # -- hires fix (text to image) --
    Field("hires", "bool", False, "Hires fix: generate, upscale, repaint at the larger size", widget="checkbox",
          tasks=("txt2img",), infotext=(Infotext(None, read=lambda p: "Hires upscale" in p, note="Hires upscale"),)),
    Field("hires_scale", "float", 2.0, "Upscale by", range=(1.0, 4.0), widget="slider", step=0.05,
          tasks=("txt2img",), infotext=(Infotext("Hires upscale", 140, when=_is_hires, format=number_text, parse=float),)),
    Field("hires_upscaler", "choice", "Latent", "Upscaler", choices=tuple(UPSCALERS), widget="dropdown",
          tasks=("txt2img",), infotext=(Infotext("Hires upscaler", 142, when=_is_hires),)),
    Field("hires_steps", "int", 0, "Hires steps", range=(0, 150), range_note=" (0 = as the first pass)",
          widget="slider", step=1, tasks=("txt2img",), help="0 = as many as the first pass",
          infotext=(Infotext("Hires steps", 141, when=lambda r: r.hires and r.hires_steps != 0, parse=int,
                             read=lambda p: int(p.get("Hires steps", "0"))),)),
    Field("hires_strength", "float", 0.7, "Hires denoising strength", range=(0.0, 1.0), widget="slider", step=0.01,
          tasks=("txt2img",),
          infotext=(Infotext("Denoising strength", 110, when=_is_hires, format=number_text, read=_strength(True)),)),
    # -- LoRAs given by name (tags in the prompt add to these; the page writes tags) --
    Field("loras", "loras", (), "LoRAs", help="[name, weight] pairs; <lora:name:weight> in the prompt adds to these",
          infotext=(Infotext(None, read=lambda p: (), note="tags in the prompt; Lora hashes"),)),
    # -- ControlNet units (A1111's extension format in the infotext; their pictures are not stored) --
    Field("controlnets", "controlnets", (), "ControlNet units",
          families=tuple(name for name, fam in FAMILIES.items() if fam.control_pipelines),
          help=f"up to {control_units.MAX_UNITS} units: {{image, module, model, weight, guidance_start, "
               "guidance_end, resize_mode, processor_res, threshold_a, threshold_b, pixel_perfect}",
          infotext=tuple(Infotext(f"ControlNet {k}", 200 + k, write=control_infotext.line(k),
                                  read=control_infotext.read_units if k == 0 else lambda p: MISSING)
                         for k in range(control_infotext.MAX_LINES))),
    # -- image prompts (IP-Adapter; written after the units as A1111's extension writes them) --
    Field("image_prompts", "image_prompts", (), "Image prompts (IP-Adapter)",
          families=tuple(name for name, fam in FAMILIES.items() if fam.image_prompts),
          help=f"up to {image_prompts.MAX_PROMPTS} reference pictures: {{image, model, weight}}",
          infotext=(Infotext(None, read=control_infotext.read_image_prompts,
                             note="ControlNet N lines whose module is an ip-adapter one"),)),
)


class FieldTable:
    """The fields by name, and the views each door needs."""

    def __init__(self, fields: Sequence[Field]):
        self.fields = tuple(fields)
        self.by_name = {f.name: f for f in self.fields}
        if len(self.by_name) != len(self.fields):
            raise ValueError("two fields share a name")
        # The views each door needs, worked out once (the infotext writer reads them for every image).
        self.request = tuple(f for f in self.fields if f.scope == "request")  # GenerationRequest's, in order
        self.api = tuple(f for f in self.fields if f.api)
        self.page = tuple(f for f in self.fields if f.widget)
        # What PNG Info and History put back in the form (input images stay out of PNGs).
        self.restorable = tuple(f for f in self.fields if f.record or f.scope == "run")

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __getitem__(self, name: str) -> Field:
        return self.by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def with_fields(self, *extra: Field) -> "FieldTable":
        return FieldTable(self.fields + extra)

    def defaults_for(self, source: ModelSource) -> dict[str, Any]:
        """Every field's default for a model: preset values where the field takes them."""
        preset = vars(source.defaults)
        return {f.name: preset[f.name] if f.default is FROM_MODEL else f.default for f in self.fields}


TABLE = FieldTable(FIELDS)

