"""The field table: every generation setting, declared once.

Each `Field` says its name, kind, default, range or choices, label and help, which tasks and
families use it, how it is written to and read from A1111's infotext, and how the page shows it.
Everything else derives from this table: `GenerationRequest` (its fields and their checks), the
page's widgets (built into `components[name]`), the `/generate` API's parameters and types, the
infotext writer and reader, PNG Info and History's "restore", and the request JSON in every PNG.
Adding a setting = one entry here + its effect in the engine. What an entry can say (`Field`,
`Infotext`, `A1111`) and the table's views (`FieldTable`) are in studio/field_spec.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import prompts, references, samplers, validation
from .control import units as control_units
from .control import image_prompts
from .control import infotext as control_infotext
from .detail import fields as detail_fields
from .dynamic import fields as dynamic_fields
from .xyz import axes as xyz_axes, fields as xyz_fields
from .field_spec import (A1111, FROM_MODEL, KIND_CHECKS, MISSING, Context, Field, FieldTable, Infotext,
                         describe_image, number_text)
from .images import RESIZE_MODES
from .families import FAMILIES
from .previews import METHOD_NAMES as PREVIEW_METHODS
from .styles import style_names
from .tasks import TASK_NAMES, outpaint
from . import upscalers, variation_fields

if TYPE_CHECKING:
    from .request import GenerationRequest

DEFAULT_MODEL = "sd15"
MAX_SEED = 2**32 - 1
INPAINT_MODES = ("Inpaint masked", "Inpaint not masked")
MASKED_CONTENT = ("original", "fill", "latent noise")
INPAINT_AREAS = ("Whole picture", "Only masked")
RNG_SOURCES = ("cpu", "device")
__all__ = ["A1111", "DEFAULT_MODEL", "FIELDS", "FROM_MODEL", "KIND_CHECKS", "MAX_SEED", "MISSING", "TABLE", "Context",
           "Field", "FieldTable", "Infotext", "describe_image", "number_text"]


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


def _task(params: Mapping[str, str]) -> str:
    if "References" in params:
        return "edit"
    if "Outpaint fill" in params or "Mask blur" in params:
        return "outpaint" if "Outpaint fill" in params else "inpaint"
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


def _true_cfg(params: Mapping[str, str]) -> float:
    """Ours, or Forge's: beside "Distilled CFG Scale", Forge's "CFG scale" is FLUX's real CFG (1: off)."""
    if "True CFG scale" in params:
        return float(params["True CFG scale"])
    if "Distilled CFG Scale" in params and "CFG scale" in params:
        return max(1.0, float(params["CFG scale"]))
    return 1.0


def _is_img(request: GenerationRequest) -> bool:
    return request.task in IMAGE_TASKS


def _is_inpaint(request: GenerationRequest) -> bool:
    return request.task == "inpaint"


def _is_sd_upscale(request: GenerationRequest) -> bool:
    return request.task == "img2img" and bool(request.sd_upscale)


def _is_upscale(request: GenerationRequest) -> bool:
    return request.task == "upscale"


def _size_of(params: Mapping[str, str], key: str, part: int) -> Any:
    """One side of a `WxH` value (A1111's Postprocess upscale to), or MISSING."""
    width, sep, height = params.get(key, "").partition("x")
    return int((width, height)[part]) if sep and width.isdigit() and height.isdigit() else MISSING


def _is_hires(request: GenerationRequest) -> bool:
    return bool(request.hires)


IMAGE_TASKS = ("img2img", "inpaint")
STRENGTH_TASKS = (*IMAGE_TASKS, "outpaint")  # the tasks the denoising strength is for
SIZE_FROM = ("first reference", "width and height")

FIELDS: tuple[Field, ...] = (
    # -- prompts (the infotext's first lines, written by studio/infotext.py) --
    Field("prompt", "text", "", "Prompt", help="what to draw; (word:1.3) weights, BREAK, <lora:name:0.8>",
          widget="textbox", infotext=(Infotext(None, note="the first lines"),), page={"lines": 3, "placeholder": "a lighthouse at dusk, (dramatic sky:1.2) — "
                                                              "Ctrl+Enter generates"},
          a1111=A1111("prompt", converted=True)),
    Field("negative_prompt", "text", "", "Negative prompt", help="what to keep out", widget="textbox",
          page={"lines": 2}, infotext=(Infotext(None, note="the Negative prompt: line"),),
          a1111=A1111("negative_prompt")),
    Field("styles", "names", (), "Styles", choices=style_names, widget="checkboxgroup",
          help="applied in order; the final prompt is shown in the infotext",
          infotext=(Infotext(None, read=lambda params: (), note="in the final prompt"),),
          a1111=A1111("styles")),
    # -- model and sampling --
    Field("model", "model", DEFAULT_MODEL, "Model", widget="model",
          help="a preset, a checkpoint in the models folder, a hub id, a folder or a .safetensors file; ● = loaded",
          infotext=(Infotext("Model", 90, write=lambda r, i: r.source.name, read=lambda p: p.get("Model", MISSING)),),
          a1111=A1111("override_settings.sd_model_checkpoint", converted=True)),
    Field("sampler", "choice", FROM_MODEL, "Sampler", choices=samplers.sampler_names, widget="dropdown",
          check=_check_sampler, help="A1111's names; old combined names such as 'DPM++ 2M Karras' work too",
          infotext=(Infotext("Sampler", 20),),
          a1111=A1111("sampler_name", converted=True)),
    Field("schedule", "choice", FROM_MODEL, "Schedule type", choices=samplers.schedule_names, widget="dropdown",
          infotext=(Infotext("Schedule type", 30, write=lambda r, i: r.sampler_choice.effective_schedule.name
                             if r.schedule != samplers.AUTOMATIC or r.sampler_choice.sampler.auto_schedule else None,
                             read=lambda p: p.get("Schedule type", samplers.AUTOMATIC)),),
          a1111=A1111("scheduler", converted=True)),
    Field("steps", "int", FROM_MODEL, "Steps", range=(1, 150), widget="slider", step=1,
          infotext=(Infotext("Steps", 10, parse=int),),
          a1111=A1111("steps")),
    Field("cfg_scale", "float", FROM_MODEL, "CFG scale", range=(0.0, 30.0), widget="slider", step=0.5,
          help="how closely to follow the prompt (FLUX dev: its distilled guidance)",
          infotext=(Infotext("CFG scale", 40, format=number_text, parse=float,
                             # A guidance-distilled model (FLUX dev): written as Forge writes it, the value
                             # as "Distilled CFG Scale" and "CFG scale" the real CFG (1: off; infotext.py
                             # format_infotext), so Forge reads no CFG 7 where none ran; read back so too
                             read=lambda p: float(p.get("Distilled CFG Scale", p.get("CFG scale", "nan")))
                             if "Distilled CFG Scale" in p or "CFG scale" in p else MISSING),),
          a1111=A1111("cfg_scale")),
    Field("true_cfg_scale", "float", 1.0, "True CFG scale (FLUX)", range=(1.0, 30.0), widget="slider", step=0.5,
          families=tuple(f.name for f in FAMILIES.values() if f.true_cfg),  # the families say which
          help="FLUX: real CFG with the negative prompt, two passes a step (1 = off, one pass)",
          infotext=(Infotext("True CFG scale", 42, when=lambda r: r.true_cfg_scale != 1, format=number_text,
                             parse=float, read=_true_cfg),),
          a1111=A1111(None, note="not in A1111's API (Forge's FLUX field): /generate takes it")),
    Field("seed", "int", -1, "Seed (-1 = random)", range=(-1, MAX_SEED), range_note=" (-1 = random)",
          widget="seed", infotext=(
              Infotext("Seed", 60, write=variation_fields.image_seed, read=variation_fields.read_seed),
              Infotext("Batch pos", 101, write=lambda r, i: i if r.batch_size > 1 else None, read=lambda p: MISSING),
          ),
          a1111=A1111("seed")),
    *variation_fields.FIELDS,  # -- variation seeds (A1111's subseed) after the seed: studio/variation_fields.py --
    Field("width", "int", FROM_MODEL, "Width", model_range=True, check=_check_size, widget="slider", step=8,
          infotext=(Infotext("Size", 70, write=lambda r, i: f"{r.width}x{r.height}", read=lambda p: _size(p, 0)),),
          a1111=A1111("width")),
    Field("height", "int", FROM_MODEL, "Height", model_range=True, check=_check_size, widget="slider", step=8,
          infotext=(Infotext(None, read=lambda p: _size(p, 1), note="Size"),),
          a1111=A1111("height")),
    Field("batch_size", "int", 1, "Batch size", range=(1, 8), widget="slider", step=1, help="images per batch",
          infotext=(Infotext("Batch size", 100, when=lambda r: r.batch_size > 1, parse=int,
                             read=lambda p: int(p.get("Batch size", "1"))),),
          a1111=A1111("batch_size")),
    Field("batch_count", "int", 1, "Batch count", range=(1, 32), widget="slider", step=1, scope="run",
          record=False, help="batches one after another; batch n starts at seed + n x batch size",
          infotext=(Infotext(None, read=lambda p: 1, note="restored as 1"),),
          a1111=A1111("n_iter", converted=True)),
    # -- prompt reading --
    Field("prompt_syntax", "choice", prompts.A1111, "Prompt syntax", choices=prompts.syntax_names, widget="radio",
          help="A1111: (word:1.3) ((word)) [word] BREAK · compel: word++ (words)1.3 .blend()",
          infotext=(Infotext("Prompt syntax", 170, read=lambda p: p.get("Prompt syntax", prompts.A1111)),),
          a1111=A1111(None, note="A1111's API reads A1111 syntax only")),
    Field("clip_skip", "int", 1, "Clip skip (SD 1.x)", range=(1, 2), widget="slider", step=1,
          families=tuple(f.name for f in FAMILIES.values() if f.clip_skip),  # the families say which
          help="2 = condition on CLIP's penultimate layer",
          infotext=(Infotext("Clip skip", 120, when=lambda r: r.clip_skip != 1, parse=int,
                             read=lambda p: int(p.get("Clip skip", "1"))),),
          a1111=A1111("override_settings.CLIP_stop_at_last_layers", converted=True)),
    Field("rng", "choice", "cpu", "Noise source", choices=RNG_SOURCES, widget="radio",
          help="cpu: the same image from a seed on any device (A1111's RNG: CPU)",
          infotext=(Infotext("RNG", 160, write=lambda r, i: "CPU" if r.rng == "cpu" else None,
                             read=lambda p: "cpu" if p.get("RNG", "").upper() == "CPU" else "device"),),
          a1111=A1111(None, note="A1111's randn_source option is reported as ignored; the CPU noise runs")),
    Field("preview", "choice", "auto", "Live preview", choices=PREVIEW_METHODS, widget="dropdown", record=False,
          help="auto: TAESD on a GPU, else latent2rgb; changes nothing in the result",
          a1111=A1111(None, note="GET /sdapi/v1/progress serves the live preview")),
    Field("fast_decode", "bool", False, "Fast decode (TAESD)", widget="checkbox",
          help="decode the final image with the tiny autoencoder: several times faster on a CPU, a little softer",
          infotext=(Infotext("Fast decode", 175, when=lambda r: r.fast_decode, format=lambda v: "TAESD",
                             read=lambda p: p.get("Fast decode") == "TAESD"),),
          a1111=A1111(None, note="not in A1111's API: /generate takes it")),
    *dynamic_fields.FIELDS,  # -- wildcards and {a|b} choices (sd-dynamic-prompts): studio/dynamic/ --
    # -- task and its input images (never stored in the PNG: they are described) --
    Field("task", "choice", None, "Task", choices=lambda: TASK_NAMES, check=_check_task, widget="task",
          help="txt2img, img2img (needs init_image) or inpaint (needs init_image and mask); "
               "left out: inpaint with a mask, img2img with an init image, else txt2img",
          infotext=(Infotext(None, read=_task, note="Mask blur: inpaint, Denoising strength: img2img"),),
          a1111=A1111(None, note="the route: txt2img, or img2img (inpaint with a mask)")),
    Field("init_image", "image", None, "Start from", widget="image", tasks=IMAGE_TASKS, record=False,
          page={"image_mode": "RGB", "height": 320},
          a1111=A1111("init_images", tasks=IMAGE_TASKS, converted=True)),
    Field("mask", "image", None, "Mask (white = repaint)", widget="image", tasks=("inpaint",), record=False,
          page={"image_mode": "L", "height": 200},
          a1111=A1111("mask", tasks=IMAGE_TASKS, converted=True)),
    Field("references", "records", (), "Reference pictures", items=references.REFERENCE, tasks=("edit",),
          record=False,  # pictures are never stored: PNG Info has none to restore (the JSON describes them)
          families=tuple(name for name, fam in FAMILIES.items() if fam.references),
          help=f"edit by instruction: up to {references.MAX_REFERENCES} pictures (the model's own limit applies), "
               f"{references.REFERENCE.shape()}; the first one sets the size unless size_from says otherwise",
          infotext=(Infotext("References", 112, when=lambda r: r.task == "edit",
                             write=lambda r, i: references.infotext(r.references) if r.task == "edit" else None,
                             read=lambda p: MISSING, note="pictures named by hash and size; given again to edit"),),
          a1111=A1111("init_images", tasks=("edit",), converted=True, note="init_images on an edit model")),
    Field("size_from", "choice", SIZE_FROM[0], "Output size", choices=SIZE_FROM, widget="radio", tasks=("edit",),
          help="edit: the first reference's aspect at the model's size, or width and height as set",
          infotext=(Infotext("Size from", 113, when=lambda r: r.task == "edit" and r.size_from != SIZE_FROM[0],
                             read=lambda p: p.get("Size from", SIZE_FROM[0])),),
          a1111=A1111(None, tasks=("edit",), note="the first reference's size, as A1111's img2img takes its init image's")),
    Field("denoising_strength", "float", 0.75, "Denoising strength", range=(0.0, 1.0), widget="slider", step=0.01,
          tasks=STRENGTH_TASKS, help="image to image, inpaint, outpaint: 0 keeps the picture, 1 ignores it",
          infotext=(Infotext("Denoising strength", 110, when=lambda r: r.task in STRENGTH_TASKS, format=number_text,
                             read=_strength(False)),),
          a1111=A1111("denoising_strength", tasks=STRENGTH_TASKS)),
    Field("resize_mode", "choice", "Just resize", "Resize mode", choices=tuple(RESIZE_MODES), widget="dropdown",
          tasks=IMAGE_TASKS, infotext=(Infotext("Resize mode", 115,
                                                when=lambda r: _is_img(r) and r.resize_mode != "Just resize",
                                                read=lambda p: p.get("Resize mode", "Just resize")),),
          a1111=A1111("resize_mode", tasks=IMAGE_TASKS, converted=True)),
    # -- SD upscale (A1111's img2img script): enlarge, then repaint in tiles of width x height --
    Field("sd_upscale", "bool", False, "SD upscale (tiled)", widget="checkbox", tasks=("img2img",),
          help="enlarge the picture, then repaint it in overlapping tiles of width x height (the tile size)",
          infotext=(Infotext("SD upscale scale", 120, format=number_text, write=lambda r, i: number_text(
              r.sd_upscale_scale) if _is_sd_upscale(r) else None, read=lambda p: "SD upscale overlap" in p),),
          a1111=A1111(None, tasks=("img2img",), note='script_name "SD upscale"')),
    Field("sd_upscale_scale", "float", 2.0, "Scale factor", range=(1.0, 4.0), widget="slider", step=0.05,
          tasks=("img2img",), infotext=(Infotext(None, read=lambda p: float(p.get("SD upscale scale", 2.0))),),
          a1111=A1111(None, tasks=("img2img",), note="script_args[3]")),
    Field("sd_upscale_upscaler", "choice", "Lanczos", "Upscaler", choices=upscalers.PIXEL_FILTERS, widget="dropdown",
          tasks=("img2img",), check=lambda f, v, c: upscalers.check_name(f.name, v, pictures=True),
          infotext=(Infotext("SD upscale upscaler", 122, when=_is_sd_upscale),),
          a1111=A1111(None, tasks=("img2img",), note="script_args[2]: the upscaler's index")),
    Field("sd_upscale_overlap", "int", 64, "Tile overlap", range=(0, 256), widget="slider", step=8,
          tasks=("img2img",), infotext=(Infotext("SD upscale overlap", 121, when=_is_sd_upscale, parse=int),),
          a1111=A1111(None, tasks=("img2img",), note="script_args[1]")),
    Field("mask_blur", "int", 4, "Mask blur", range=(0, 64), widget="slider", step=1, tasks=("inpaint",),
          infotext=(Infotext("Mask blur", 130, when=_is_inpaint, parse=int),),
          a1111=A1111("mask_blur", tasks=("inpaint",))),
    Field("inpaint_mode", "choice", INPAINT_MODES[0], "Mask mode", choices=INPAINT_MODES, widget="radio",
          tasks=("inpaint",), infotext=(Infotext("Mask mode", 131,
                                                 when=lambda r: _is_inpaint(r) and r.inpaint_mode != INPAINT_MODES[0],
                                                 read=lambda p: p.get("Mask mode", INPAINT_MODES[0])),),
          a1111=A1111("inpainting_mask_invert", tasks=("inpaint",), converted=True)),
    Field("masked_content", "choice", "original", "Masked content", choices=MASKED_CONTENT, widget="radio",
          tasks=("inpaint",), infotext=(Infotext("Masked content", 132, when=_is_inpaint),),
          a1111=A1111("inpainting_fill", tasks=("inpaint",), converted=True)),
    Field("inpaint_area", "choice", INPAINT_AREAS[0], "Inpaint area", choices=INPAINT_AREAS, widget="radio",
          tasks=("inpaint",), infotext=(Infotext("Inpaint area", 133,
                                                 when=lambda r: _is_inpaint(r) and r.inpaint_area != INPAINT_AREAS[0],
                                                 read=lambda p: p.get("Inpaint area", INPAINT_AREAS[0])),),
          a1111=A1111("inpaint_full_res", tasks=("inpaint",), converted=True)),
    Field("masked_padding", "int", 32, "Only masked padding, pixels", range=(0, 256), widget="slider", step=4,
          tasks=("inpaint",), infotext=(Infotext("Masked area padding", 134,
                                                 when=lambda r: _is_inpaint(r) and r.inpaint_area == "Only masked",
                                                 parse=int),),
          a1111=A1111("inpaint_full_res_padding", tasks=("inpaint",))),
    # -- Outpaint: the picture on a larger canvas, the new area painted by the family's inpaint pipeline --
    Field("outpaint_image", "image", None, "Picture to extend", widget="image", tasks=("outpaint",), record=False,
          page={"image_mode": "RGB", "height": 320}, a1111=A1111(None, tasks=("outpaint",), note=outpaint.A1111_NOTE)),
    *(Field(f"outpaint_{side}", "int", 0, f"Extend {side}, pixels", range=(0, outpaint.MAX_PADDING), widget="slider",
            step=8, tasks=("outpaint",), help="the canvas is rounded up to the model's size multiple",
            infotext=(Infotext(f"Outpaint {side}", 135 + n, write=outpaint.side_writer(side),
                               read=outpaint.side_reader(side, MISSING)),),
            a1111=A1111(None, tasks=("outpaint",), note=outpaint.A1111_NOTE)) for n, side in enumerate(outpaint.SIDES)),
    Field("outpaint_fill", "choice", "fill", "New area starts as", choices=outpaint.FILLS, widget="radio",
          tasks=("outpaint",), help=outpaint.FILL_HELP, infotext=(Infotext("Outpaint fill", 139, when=outpaint.is_it),),
          a1111=A1111(None, tasks=("outpaint",), note=outpaint.A1111_NOTE)),
    Field("outpaint_overlap", "int", 16, "Overlap, pixels", range=(0, 256), widget="slider", step=4,
          tasks=("outpaint",), help=outpaint.OVERLAP_HELP,
          infotext=(Infotext("Outpaint overlap", 139, when=outpaint.is_it, parse=int),),
          a1111=A1111(None, tasks=("outpaint",), note=outpaint.A1111_NOTE)),
    # -- hires fix (text to image) --
    Field("hires", "bool", False, "Hires fix: generate, upscale, repaint at the larger size", widget="checkbox",
          tasks=("txt2img",), infotext=(Infotext(None, read=lambda p: "Hires upscale" in p, note="Hires upscale"),),
          a1111=A1111("enable_hr", tasks=("txt2img",), converted=True)),
    Field("hires_scale", "float", 2.0, "Upscale by", range=(1.0, 4.0), widget="slider", step=0.05,
          tasks=("txt2img",), infotext=(Infotext("Hires upscale", 140, when=_is_hires, format=number_text, parse=float),),
          a1111=A1111("hr_scale", tasks=("txt2img",), when="enable_hr")),
    Field("hires_upscaler", "choice", "Latent", "Upscaler", choices=tuple(upscalers.BUILTIN), widget="dropdown",
          check=lambda f, v, c: upscalers.check_name(f.name, v),
          help="a built-in, or a model of the upscalers folder (--upscalers-dir) by name",
          tasks=("txt2img",), infotext=(Infotext("Hires upscaler", 142, when=_is_hires),),
          a1111=A1111("hr_upscaler", tasks=("txt2img",), when="enable_hr")),
    Field("hires_steps", "int", 0, "Hires steps", range=(0, 150), range_note=" (0 = as the first pass)",
          widget="slider", step=1, tasks=("txt2img",), help="0 = as many as the first pass",
          infotext=(Infotext("Hires steps", 141, when=lambda r: r.hires and r.hires_steps != 0, parse=int,
                             read=lambda p: int(p.get("Hires steps", "0"))),),
          a1111=A1111("hr_second_pass_steps", tasks=("txt2img",), when="enable_hr")),
    Field("hires_strength", "float", 0.7, "Hires denoising strength", range=(0.0, 1.0), widget="slider", step=0.01,
          tasks=("txt2img",),
          infotext=(Infotext("Denoising strength", 110, when=_is_hires, format=number_text, read=_strength(True)),),
          a1111=A1111("denoising_strength", tasks=("txt2img",), when="enable_hr")),
    *detail_fields.FIELDS,  # -- the detailer (A1111's ADetailer), after text / image to image: studio/detail/ --
    *upscalers.face_fields.FIELDS,  # -- Restore faces (A1111's), after txt2img / img2img and in an upscale --
    # -- Upscale (A1111's Extras): no diffusion model runs; A1111's Postprocess keys in the infotext --
    Field("upscale_image", "image", None, "Picture to upscale", widget="image", tasks=("upscale",), record=False,
          page={"image_mode": "RGB", "height": 320},
          a1111=A1111(None, tasks=("upscale",), note="image of /sdapi/v1/extra-single-image")),
    Field("upscaler", "choice", "Lanczos", "Upscaler", choices=upscalers.PIXEL_FILTERS, widget="dropdown",
          tasks=("upscale",), check=lambda f, v, c: upscalers.check_name(f.name, v, pictures=True),
          help="a pixel filter, or a model of the upscalers folder (--upscalers-dir) by name",
          infotext=(Infotext("Postprocess upscaler", 301, when=_is_upscale),),
          a1111=A1111(None, tasks=("upscale",), note="upscaler_1 of /sdapi/v1/extra-single-image")),
    Field("upscale_by", "float", 2.0, "Scale by", range=(1.0, 8.0), widget="slider", step=0.05, tasks=("upscale",),
          infotext=(Infotext("Postprocess upscale by", 300, format=number_text,
                             when=lambda r: _is_upscale(r) and not r.upscale_width),),
          a1111=A1111(None, tasks=("upscale",), note="upscaling_resize")),
    Field("upscale_width", "int", 0, "Scale to width", range=(0, 8192), range_note=" (0 = scale by the factor)",
          widget="number", tasks=("upscale",), help="with a height, the result's size (0: scale by the factor)",
          infotext=(Infotext("Postprocess upscale to", 300, when=lambda r: _is_upscale(r) and bool(r.upscale_width),
                             write=lambda r, i: f"{r.upscale_width}x{r.upscale_height}" if _is_upscale(r)
                             and r.upscale_width else None, read=lambda p: _size_of(p, "Postprocess upscale to", 0)),),
          a1111=A1111(None, tasks=("upscale",), note="upscaling_resize_w")),
    Field("upscale_height", "int", 0, "Scale to height", range=(0, 8192), range_note=" (0 = scale by the factor)",
          widget="number", tasks=("upscale",),
          infotext=(Infotext(None, read=lambda p: _size_of(p, "Postprocess upscale to", 1)),),
          a1111=A1111(None, tasks=("upscale",), note="upscaling_resize_h")),
    Field("upscale_crop", "bool", True, "Crop to fit", widget="checkbox", tasks=("upscale",),
          help="scale to a size: cover it and cut the middle (else stretch)",
          infotext=(Infotext("Postprocess crop to", 302, when=lambda r: _is_upscale(r) and bool(r.upscale_width),
                             write=lambda r, i: f"{r.upscale_width}x{r.upscale_height}" if _is_upscale(r)
                             and r.upscale_width and r.upscale_crop else None,
                             read=lambda p: "Postprocess crop to" in p if "Postprocess upscale to" in p else MISSING),),
          a1111=A1111(None, tasks=("upscale",), note="upscaling_crop")),
    Field("upscaler_2", "choice", "None", "Upscaler 2", choices=("None", *upscalers.PIXEL_FILTERS), widget="dropdown",
          tasks=("upscale",), check=lambda f, v, c: upscalers.check_name(f.name, v, pictures=True, none=True),
          infotext=(Infotext("Postprocess upscaler 2", 303,
                             when=lambda r: _is_upscale(r) and r.upscaler_2 != "None" and r.upscaler_2_visibility > 0),),
          a1111=A1111(None, tasks=("upscale",), note="upscaler_2")),
    Field("upscaler_2_visibility", "float", 0.0, "Upscaler 2 visibility", range=(0.0, 1.0), widget="slider",
          step=0.05, tasks=("upscale",),
          infotext=(Infotext("Postprocess upscaler 2 visibility", 304, format=number_text,
                             when=lambda r: _is_upscale(r) and r.upscaler_2 != "None" and r.upscaler_2_visibility > 0),),
          a1111=A1111(None, tasks=("upscale",), note="extras_upscaler_2_visibility")),
    # -- LoRAs given by name (tags in the prompt add to these; the page writes tags) --
    Field("loras", "loras", (), "LoRAs", help="[name, weight] pairs; <lora:name:weight> in the prompt adds to these",
          infotext=(Infotext(None, read=lambda p: (), note="tags in the prompt; Lora hashes"),),
          a1111=A1111(None, note="<lora:name:weight> tags in the prompt, as A1111 reads them")),
    # -- ControlNet units (A1111's extension format in the infotext; their pictures are not stored) --
    Field("controlnets", "records", (), "ControlNet units", items=control_units.UNIT,
          families=tuple(name for name, fam in FAMILIES.items() if fam.control_pipelines),
          help=f"up to {control_units.MAX_UNITS} units: {control_units.UNIT.shape()}",
          infotext=tuple(Infotext(f"ControlNet {k}", 200 + k, write=control_infotext.line(k),
                                  read=control_infotext.read_units if k == 0 else lambda p: MISSING)
                         for k in range(control_infotext.MAX_LINES)),
          a1111=A1111("alwayson_scripts.controlnet.args", converted=True)),
    # -- image prompts (IP-Adapter; written after the units as A1111's extension writes them) --
    Field("image_prompts", "records", (), "Image prompts (IP-Adapter)", items=image_prompts.PROMPT,
          families=tuple(name for name, fam in FAMILIES.items() if fam.image_prompts),
          help=f"up to {image_prompts.MAX_PROMPTS} reference pictures: {image_prompts.PROMPT.shape()}",
          infotext=(Infotext(None, read=control_infotext.read_image_prompts,
                             note="ControlNet N lines whose module is an ip-adapter one"),),
          a1111=A1111("alwayson_scripts.controlnet.args", converted=True, note="units whose module is ip-adapter*")),
    *xyz_fields.fields(lambda: list(xyz_axes.axes(TABLE))),  # -- the X/Y/Z plot's axes, per click: studio/xyz/
)


TABLE = FieldTable(FIELDS)

