"""A1111's `/sdapi/v1` request and response shapes, translated to and from the studio's fields: pure
functions, no I/O but decoding the base64 pictures a request carries.

A field A1111 has and the studio does not run is accepted; when it asks for something other than
A1111's default it is reported in the response's `info` under `ignored` (never silently changing
the result). Keys A1111 does not know either (SillyTavern sends its `url` and `auth`) are ignored as
A1111 ignores them, and listed there too.

The door is as lenient as A1111 1.10 and Forge (studio/web/sdapi/lenient.py): what it replaces is
said in `info`'s `notes`, one line each; the field table behind it stays strict (the page and
/generate refuse such values).
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any, Callable, Collection, Mapping

from PIL import Image

from ... import samplers, variation_fields
from ...detail import a1111 as adetailer
from ...errors import InvalidValue
from ...families import Family, family
from ...fields import DEFAULT_MODEL, TABLE, FieldTable
from ...infotext import parse_infotext
from ...models import ModelSource
from . import lenient
from . import scripts as scripts_
from .pictures import decode_image  # the door's one picture decoder
from .units import A1111_NAMES, RESIZE_MODES, UNIT_PICTURES, _indexed, controlnet_units, count_units

# A1111's fields that change nothing here, with the value that asks for nothing.
NO_EFFECT = {
    "restore_faces": False,
    "tiling": False, "eta": None, "s_min_uncond": None, "s_churn": None, "s_tmax": None, "s_tmin": None,
    "s_noise": None, "refiner_checkpoint": None, "refiner_switch_at": None, "disable_extra_networks": False,
    "firstpass_image": None, "comments": None, "firstphase_width": 0, "firstphase_height": 0,
    "hr_checkpoint_name": None, "hr_sampler_name": None, "hr_scheduler": None, "hr_prompt": "",
    "hr_negative_prompt": "", "script_name": None, "script_args": [], "alwayson_scripts": {}, "image_cfg_scale": None,
    "mask_round": True, "initial_noise_multiplier": None, "latent_mask": None, "force_task_id": None,
    "infotext": None, "include_init_images": False, "hr_additional_modules": [],
}
# Fields that only say how A1111 answers or saves (the studio always saves, answers with PNGs).
ACCEPTED = {"send_images", "save_images", "do_not_save_samples", "do_not_save_grid",
            "override_settings_restore_afterwards", "sampler_index"}
# A1111's schedule names (its /schedulers `name`) and labels, to the studio's schedules. "normal" and
# "simple" are the model's own spacing: the studio's Automatic.
SCHEDULES = {"automatic": "Automatic", "uniform": "Uniform", "karras": "Karras", "exponential": "Exponential",
             "beta": "Beta", "sgm_uniform": "SGM Uniform", "sgm uniform": "SGM Uniform", "normal": "Automatic",
             "simple": "Automatic"}
MASKED_CONTENT = ("fill", "original", "latent noise", "latent noise")  # 3: A1111's "latent nothing"
# Keys read here besides the table's: older spellings, a target size instead of a scale, Forge's FLUX guidance.
ALSO_READ = {"sampler_index", "hr_resize_x", "hr_resize_y", "mask_blur_x", "mask_blur_y", "distilled_cfg_scale"}
KNOWN = {key.split(".")[0] for key in A1111_NAMES.values()} | ALSO_READ | ACCEPTED

def route_task(route: str, payload: Mapping[str, Any]) -> str:
    """The studio's task for an A1111 route: img2img with a mask is inpainting."""
    return "txt2img" if route == "txt2img" else "inpaint" if payload.get("mask") else "img2img"


def direct_settings(payload: Mapping[str, Any], task: str, table: FieldTable = TABLE) -> dict[str, Any]:
    """The fields A1111 names the same way and gives in the same shape, as the request has them."""
    settings = {}
    for f in table:
        spec = f.a1111
        if spec is None or not spec.direct or task not in spec.tasks:
            continue
        if (spec.when is None or payload.get(spec.when)) and payload.get(spec.key) is not None:
            settings[f.name] = payload[spec.key]
    return settings


def schedule_name(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def encode_png(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_picture(picture: Image.Image) -> str:
    """A picture as A1111 answers with one: base64 PNG."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return encode_png(buffer.getvalue())


def _schedule(payload: Mapping[str, Any], notes: list[str]) -> str | None:
    """The studio's schedule for A1111's `scheduler` (its name or label): A1111 1.10's and Forge's that
    the studio lacks run as the nearest it has, any other as Automatic, each said in `notes`."""
    scheduler = payload.get("scheduler")
    if scheduler in (None, ""):
        return None
    if not isinstance(scheduler, str):
        raise InvalidValue("scheduler", scheduler, "a schedule name")
    key = schedule_name(scheduler)
    if key in ("normal", "simple"):
        notes.append(f"scheduler {scheduler!r} ran as Automatic (the model's own spacing)")
    if key in SCHEDULES:
        return SCHEDULES[key]
    nearest = lenient.NEAREST_SCHEDULES.get(key, samplers.AUTOMATIC)
    notes.append(f"scheduler {scheduler!r} ran as {nearest} (the nearest schedule the studio has)")
    return nearest


def edit_family(source: ModelSource | None) -> Family | None:
    """The family of a model whose img2img is an edit by instruction (FLUX.2 Klein, Qwen-Image-Edit,
    Kontext: an edit pipeline and no image-to-image one), else None."""
    fam = family(source.family) if source is not None and source.family else None
    return fam if fam is not None and "edit" in fam.pipelines and "img2img" not in fam.pipelines else None


def to_settings(payload: Mapping[str, Any], task: str, model: str | None, clip_skip: int | None,
                source_of: Callable[[str], ModelSource] | None = None,
                lora_names: Collection[str] | None = None, has_upscaler: Callable[[str], bool] | None = None,
                upscalers: Callable[[], list[str]] = lambda: ["None", "Lanczos", "Nearest"],
                ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the studio's settings, what was ignored, notes) for an A1111 txt2img or img2img body.
    `model` and `clip_skip` are the caller's own options (override_settings win for this request).
    With `source_of` (the model a name refers to, its path checked) the settings are fitted to the
    model as A1111 would run them (sizes, samplers, Forge's distilled CFG); with `lora_names` (the loras
    folder's) a prompt's tag naming a LoRA not there is left out; `has_upscaler`: whether the upscalers
    folder has a model of that name (else hr_upscaler runs as the nearest built-in); `upscalers`: GET
    /upscalers' names, which A1111's SD upscale script indexes."""
    if not isinstance(payload, Mapping):
        raise InvalidValue("body", type(payload).__name__, "a JSON object")
    notes: list[str] = []
    original, payload = payload, lenient.read_numbers(payload, notes)
    settings = direct_settings(payload, route_task(task, payload))
    if payload.get("prompt") is not None:
        prompt = payload["prompt"]  # A1111 takes one prompt per image; the first is used
        settings["prompt"] = (prompt[0] if prompt else "") if isinstance(prompt, list) else prompt
    if "styles" in settings:
        settings["styles"] = lenient.known_styles(settings["styles"], notes)
    settings["batch_count"] = 1 if payload.get("n_iter") is None else payload["n_iter"]
    name = payload.get("sampler_name") or payload.get("sampler_index")
    if name is not None:
        settings["sampler"] = name
    schedule = _schedule(payload, notes)
    if schedule is not None:
        settings["schedule"] = schedule
    overrides = payload.get("override_settings") or {}
    if not isinstance(overrides, Mapping):
        raise InvalidValue("override_settings", type(overrides).__name__, "an object of option: value")
    settings["model"] = overrides.get("sd_model_checkpoint") or model
    clip = overrides.get("CLIP_stop_at_last_layers", clip_skip)
    if clip is not None:
        settings["clip_skip"] = clip
    ignored = {k: v for k, v in overrides.items() if k not in ("sd_model_checkpoint", "CLIP_stop_at_last_layers")
               and not (k == "sd_vae" and v in (None, "Automatic", "None"))}
    ignored = {f"override_settings.{k}": v for k, v in ignored.items()}
    source = source_of(settings["model"] or DEFAULT_MODEL) if source_of is not None else None
    if source is not None:
        lenient.fit_sizes(settings, source, notes)
    scripts = payload.get("alwayson_scripts") or {}
    if not isinstance(scripts, Mapping):
        raise InvalidValue("alwayson_scripts", type(scripts).__name__, '{"controlnet": {"args": [units]}}')
    for name, script in scripts.items():
        if name.lower() == "controlnet":
            count_units(script)  # before any picture is decoded
    if task == "txt2img":
        if scripts_.apply(payload, settings, upscalers):  # "X/Y/Z plot"
            original = {k: v for k, v in original.items() if k not in ("script_name", "script_args")}
        if payload.get("enable_hr"):
            settings["hires"] = True
            if "hires_upscaler" in settings:
                settings["hires_upscaler"] = lenient.nearest_upscaler(settings["hires_upscaler"], notes, has_upscaler)
            lenient.hires_target(settings, payload, source, notes)
    else:
        images = payload.get("init_images")
        if not images:
            raise InvalidValue("init_images", None, "a list with one base64 image")
        if not isinstance(images, list):
            raise InvalidValue("init_images", type(images).__name__, "a list with one base64 image")
        editor = edit_family(source) if not payload.get("mask") else None
        if editor is not None:  # an edit model: its init images are the references (counted before decoding)
            if len(images) > editor.references:
                ignored[f"init_images[{editor.references}:]"] = (f"{len(images) - editor.references} more picture(s): "
                                                                 f"{source.name} reads {editor.references}")
            settings["references"] = [{"image": decode_image(f"init_images[{i}]", picture)}
                                      for i, picture in enumerate(images[:editor.references])]
            settings["task"] = "edit"
            images = []
        if len(images) > 1:
            ignored["init_images[1:]"] = f"{len(images) - 1} more picture(s): the first is used"
        if images:
            settings["init_image"] = decode_image("init_images[0]", images[0])
        mode = payload.get("resize_mode")
        if mode is not None:
            settings["resize_mode"] = _indexed("resize_mode", mode, RESIZE_MODES)
        if payload.get("mask"):
            settings["mask"] = decode_image("mask", payload["mask"])
            settings["task"] = "inpaint"
            if payload.get("mask_blur") is None and payload.get("mask_blur_x") is not None:
                settings["mask_blur"] = payload["mask_blur_x"]  # A1111's older spelling
            if payload.get("inpainting_fill") is not None:
                settings["masked_content"] = _indexed("inpainting_fill", payload["inpainting_fill"], MASKED_CONTENT)
            if payload.get("inpaint_full_res") is not None:
                settings["inpaint_area"] = "Only masked" if payload["inpaint_full_res"] else "Whole picture"
            if payload.get("inpainting_mask_invert") is not None:
                settings["inpaint_mode"] = ("Inpaint masked", "Inpaint not masked")[bool(payload["inpainting_mask_invert"])]
        elif editor is None:
            settings["task"] = "img2img"
            if scripts_.apply(payload, settings, upscalers):  # "SD upscale", "Poor man's outpainting"
                original = {k: v for k, v in original.items() if k not in ("script_name", "script_args")}
    for name, script in scripts.items():
        if name.lower() == "controlnet":
            settings["controlnets"], settings["image_prompts"] = controlnet_units(
                script, settings.get("init_image"), notes, need_image=task == "txt2img")
        elif name.lower() == adetailer.SCRIPT.lower():  # studio/detail/a1111.py
            settings.update(adetailer.settings(script, settings.get("task", task), notes, ignored))
        else:
            ignored[f"alwayson_scripts.{name}"] = "(not run here)"
    if source is not None:
        lenient.fit_sampler(settings, source, notes)
    lenient.distilled_guidance(settings, payload, source, notes, ignored)
    if lora_names is not None:
        lenient.drop_missing_loras(settings, lora_names, notes)
    for key, value in original.items():
        if key in KNOWN or (key in NO_EFFECT and value in (NO_EFFECT[key], None)):
            continue
        ignored[key] = value if key in NO_EFFECT else "(not an A1111 field)"
    return settings, ignored, notes


def info(result_requests: list[Any], images: list[dict[str, Any]], ignored: Mapping[str, Any], notes: list[str],
         model_name: str, version: str, job_timestamp: str) -> str:
    """The `info` JSON string A1111 answers with (`Processed.js()`'s keys), from the batches run."""
    first = result_requests[0] if result_requests else None
    seeds = [i["seed"] for i in images]
    # Each image's prompts, in run order: dynamic prompts resolve per image (a batch may run as several requests).
    per_image = [(r.prompt, r.negative_prompt) for r in result_requests for _ in range(r.batch_size)][:len(images)]
    prompts, negatives = [p for p, _ in per_image], [n for _, n in per_image]
    # The checkpoint's hash as the engine wrote it in the image's infotext (A1111's sd_model_hash).
    model_hash = parse_infotext(images[0]["infotext"]).params.get("Model hash") if images else None
    # An X/Y/Z plot's grids come first (A1111's index_of_first_image: the first image that is no grid).
    grids = max(0, len(images) - sum(r.batch_size for r in result_requests)) \
        if getattr(result_requests, "plot", None) is not None else 0
    obj = {
        "prompt": prompts[0] if prompts else (first.prompt if first else ""), "all_prompts": prompts,
        "negative_prompt": negatives[0] if negatives else "", "all_negative_prompts": negatives,
        "seed": seeds[0] if seeds else (first.seed if first else -1), "all_seeds": seeds,
        **_variation_info(result_requests, len(seeds)),
        "width": first.width if first else 0, "height": first.height if first else 0,
        "sampler_name": first.sampler if first else "", "cfg_scale": first.cfg_scale if first else 0,
        "steps": first.steps if first else 0, "batch_size": first.batch_size if first else 0,
        "restore_faces": False, "face_restoration_model": None, "sd_model_name": model_name, "sd_model_hash": model_hash,
        "sd_vae_name": None, "sd_vae_hash": None,
        "denoising_strength": (first.denoising_strength if first and first.task != "txt2img" else
                               first.hires_strength if first and first.hires else None),
        "extra_generation_params": {}, "index_of_first_image": grids, "infotexts": [i["infotext"] for i in images],
        "styles": list(first.styles) if first else [], "job_timestamp": job_timestamp,
        "clip_skip": first.clip_skip if first else 1, "is_using_inpainting_conditioning": False,
        "version": version, "ignored": dict(ignored), "notes": list(notes),
    }
    return json.dumps(obj, default=str)


def _variation_info(result_requests: list[Any], count: int) -> dict[str, Any]:
    """Processed.js()'s variation seed keys: image i of a batch has subseed + i (-1: none was drawn, the
    strength being 0); a seed resize that is off reads -1, as A1111's default."""
    first = result_requests[0] if result_requests else None
    subseeds = [-1 if r.subseed == -1 else variation_fields.image_subseed(r, i)
                for r in result_requests for i in range(r.batch_size)][:count]
    return {"subseed": subseeds[0] if subseeds else (first.subseed if first else -1), "all_subseeds": subseeds,
            "subseed_strength": first.subseed_strength if first else 0,
            "seed_resize_from_w": first.seed_resize_from_w if first and variation_fields.resized(first) else -1,
            "seed_resize_from_h": first.seed_resize_from_h if first and variation_fields.resized(first) else -1}


def parameters(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The request echoed as A1111 echoes it (pictures left out unless `include_init_images`; ControlNet
    units' pictures always: the answer never carries the request's megabytes back)."""
    echo = dict(payload)
    if not echo.get("include_init_images"):
        for key in ("init_images", "mask"):
            if key in echo:
                echo[key] = None
    scripts = echo.get("alwayson_scripts")
    if isinstance(scripts, Mapping):
        echo["alwayson_scripts"] = {name: _without_pictures(script) if name.lower() == "controlnet" else script
                                    for name, script in scripts.items()}
    return echo


def _without_pictures(script: Any) -> Any:
    args = script.get("args") if isinstance(script, Mapping) else None
    if not isinstance(args, list):
        return script
    units = [{k: None if k in UNIT_PICTURES and v else v for k, v in unit.items()} if isinstance(unit, Mapping)
             else unit for unit in args]
    return {**script, "args": units}


def sampler_items(kind: str = samplers.DIFFUSION) -> list[dict[str, Any]]:
    return [{"name": s.name, "aliases": list(s.aliases), "options": {}}
            for s in samplers.SAMPLER_SETS[kind]]


def schedule_items() -> list[dict[str, Any]]:
    return [{"name": schedule_name(name), "label": name, "aliases": None,
             "default_rho": 7.0 if name == "Karras" else -1.0, "need_inner_model": False}
            for name in samplers.schedule_names()]
