"""How the A1111 door is as lenient as A1111 1.10 and Forge (pydantic v1 reads "7.0" as 7; an unknown
style, LoRA, schedule or upscaler runs without it or as the nearest one), each replacement said in
`notes`: the tables of nearest names, and the steps that fit a translated request to its model. Pure
functions; the field table behind them stays strict, and nothing here widens what may run (caps,
paths and the cost cap still refuse; a size is only ever brought into the model's range)."""

from __future__ import annotations

import math
from typing import Any, Callable, Collection, Mapping

from ... import loras, naming, samplers
from ...errors import InvalidValue
from ...families import family
from ...fields import TABLE
from ...models import ModelSource
from ...request import family_sampler_names, sampler_kind
from ...sizes import snap

# A1111 1.10's and Forge's schedules the studio lacks, to the nearest it has (said in `notes`; any other
# name runs as Automatic, said too). Polyexponential is an exponential spacing bent by a power; KL
# optimal and Align Your Steps crowd the steps at low noise as Karras does; DDIM's own schedule is evenly
# spaced timesteps; Forge's turbo takes the last timesteps (trailing, SGM Uniform's).
NEAREST_SCHEDULES = {"polyexponential": "Exponential", "kl_optimal": "Karras", "align_your_steps": "Karras",
                     "align_your_steps_gits": "Karras", "align_your_steps_11": "Karras",
                     "align_your_steps_32": "Karras", "ddim": "Uniform", "turbo": "SGM Uniform"}
# A1111's, Forge's and SD.Next's samplers the studio lacks, to the nearest it has. DPM fast and adaptive
# are DPM-Solver variants (DPM++ 2M is its multistep successor); Restart runs Heun steps between its
# restarts; CFG++ is a change to the guidance, not the solver; iPNDM is PNDM's (PLMS's) linear multistep.
NEAREST_SAMPLERS = {naming.fold(name): ours for name, ours in {
    "DPM fast": "DPM++ 2M", "DPM adaptive": "DPM++ 2M", "Restart": "Heun", "DDIM CFG++": "DDIM",
    "Euler CFG++": "Euler", "Euler a CFG++": "Euler a", "DPM++ 2M CFG++": "DPM++ 2M", "DPM++ 2S a CFG++": "DPM++ 2S a",
    "DPM++ SDE CFG++": "DPM++ SDE", "iPNDM": "PLMS", "iPNDM_v": "PLMS", "HeunPP2": "Heun", "DPM SDE": "DPM++ SDE",
    "Euler FlowMatch": "Euler", "Flow Match Euler": "Euler", "Euler SMEA Dy": "Euler",
}.items()}
# On a flow model (FLUX, SD3): the diffusion samplers that have no flow counterpart, to the nearest flow
# one (ancestral and SDE samplers to the ones that draw fresh noise; the rest to Euler, which they refine).
FLOW_NEAREST = {"DPM++ SDE": "DPM++ 2M SDE", "DPM++ 2M SDE Heun": "DPM++ 2M SDE", "DPM++ 3M SDE": "DPM++ 2M SDE",
                "DPM++ 2S a": "Euler a", "DPM2 a": "Euler a", "DDPM": "Euler a", "LMS": "Euler", "Heun": "Euler",
                "DPM2": "Euler", "DDIM": "Euler", "PLMS": "Euler", "DEIS": "UniPC", "TCD": "LCM"}
# A1111's hires upscalers the studio lacks, to the nearest it has. "None" is A1111's plain resize (its
# Lanczos); the antialiased latent modes without the antialiasing. Any other name is an upscaler model
# (ESRGAN, SwinIR, LDSR...): run where the upscalers folder has it, else a picture resize; or another latent mode.
NEAREST_UPSCALERS = {naming.fold(name): ours for name, ours in {
    "None": "Lanczos", "Latent (antialiased)": "Latent", "Latent (bicubic antialiased)": "Latent (bicubic)",
    "Latent (nearest)": "Latent (nearest-exact)",
}.items()}
PICTURE_UPSCALER, LATENT_UPSCALER = "Lanczos", "Latent"
FORGE_DISTILLED_DEFAULT = 3.5  # Forge sends distilled_cfg_scale 3.5 with every request

# The keys that hold numbers (the table's int and float fields, and the ones read here), which A1111's
# pydantic also takes as text: "7.0", "42".
NUMBERS = {**{f.a1111.key: f.kind for f in TABLE if f.kind in ("int", "float") and f.a1111 is not None
              and f.a1111.key is not None and "." not in f.a1111.key},
           "hr_resize_x": "int", "hr_resize_y": "int", "mask_blur_x": "int", "mask_blur_y": "int",
           "distilled_cfg_scale": "float", "resize_mode": "int", "inpainting_fill": "int"}


def number(key: str, value: Any, kind: str) -> Any:
    """A number sent as text ("7.0", "42"), read as A1111's pydantic reads it: an int field takes "7.0"
    (integral) but not "7.5". Other values are left as they are (the field's own check names them)."""
    if not isinstance(value, str):
        return value
    allowed = "an integer" if kind == "int" else "a number"
    text = value.strip()
    try:
        parsed = float(text) if kind == "float" or not text.lstrip("+-").isdigit() else int(text)
    except ValueError:
        raise InvalidValue(key, value, allowed) from None
    if not math.isfinite(parsed) or (kind == "int" and not float(parsed).is_integer()):
        raise InvalidValue(key, value, allowed)
    return int(parsed) if kind == "int" else float(parsed)


def read_numbers(payload: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """The body with the numbers sent as text read as numbers (and a note naming them)."""
    body = dict(payload)
    read = [key for key, kind in NUMBERS.items() if isinstance(body.get(key), str)]
    for key in read:
        body[key] = number(key, body[key], NUMBERS[key])
    overrides = body.get("override_settings")
    if isinstance(overrides, Mapping) and isinstance(overrides.get("CLIP_stop_at_last_layers"), str):
        key = "override_settings.CLIP_stop_at_last_layers"
        body["override_settings"] = {**overrides, "CLIP_stop_at_last_layers": number(
            key, overrides["CLIP_stop_at_last_layers"], "int")}
        read.append(key)
    if read:
        notes.append("numbers sent as text read as numbers: " + ", ".join(f"{k} {_sent(k, payload)!r}" for k in read))
    return body


def _sent(key: str, payload: Mapping[str, Any]) -> Any:
    head, _, tail = key.partition(".")
    return payload[head][tail] if tail else payload[key]


def known_styles(value: Any, notes: list[str]) -> Any:
    """The styles the studio has, in order; the others (clients send ["None"]) left out, as A1111 does."""
    if not isinstance(value, list):
        return value  # the field's check names what is wrong
    known = TABLE["styles"].choice_list()
    kept = [name for name in value if naming.find(name, known) is not None]
    for name in value:
        if name not in kept:
            notes.append(f"style {name!r} not found: ran without it")
    return kept


def nearest_upscaler(value: Any, notes: list[str], has_model: Callable[[str], bool] | None = None) -> Any:
    """A hires upscaler the studio has (a built-in, or a model of the upscalers folder: `has_model`), or
    the nearest: a model the folder lacks resizes the picture (Lanczos)."""
    have = TABLE["hires_upscaler"].choice_list()
    if not isinstance(value, str) or naming.find(value, have) is not None:
        return value
    if has_model is not None and has_model(value):
        return value.strip()
    key = naming.fold(value)
    nearest = NEAREST_UPSCALERS.get(key) or (LATENT_UPSCALER if key.startswith("latent") else PICTURE_UPSCALER)
    why = ("the nearest latent mode" if nearest.startswith("Latent")
           else "a picture resize: this studio's upscalers folder has no such model")
    notes.append(f"hr_upscaler {value!r} ran as {nearest} ({why})")
    return nearest


# -- fitting a request to its model, as A1111 runs it --------------------------------------------

def fit_sizes(settings: dict[str, Any], source: ModelSource, notes: list[str]) -> None:
    """Width and height brought to the nearest size the model takes (a multiple of its family's step,
    within its range): A1111 rounds down to 8 itself; a size out of range is clamped, never widened."""
    low, high = source.size_range
    step = source.size_rule.multiple
    for name in ("width", "height"):
        value = settings.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue  # the field's check names it
        fitted = snap(step * math.floor(value / step + 0.5), low, high, step)  # half up: 100 -> 104, not 96
        if fitted != value:
            settings[name] = fitted
            notes.append(f"{name} {value:g} ran as {fitted} (model {source.name} takes multiples of {step} "
                         f"from {low} to {high})")


def hires_target(settings: dict[str, Any], payload: Mapping[str, Any], source: ModelSource | None,
                 notes: list[str]) -> None:
    """A1111's hires target size (`hr_resize_x` / `hr_resize_y`, 0: not given) as the studio's scale: it
    wins over `hr_scale`; one side alone keeps the first pass's aspect. Both sides of another aspect
    than the first pass's: the scale that covers both (A1111 would crop the rest; said in `notes`)."""
    sides = {key: payload.get(key) for key in ("hr_resize_x", "hr_resize_y")}
    if not any(sides.values()):
        return
    default = source.defaults if source is not None else None
    first = [settings.get(name) if isinstance(settings.get(name), int) and not isinstance(settings.get(name), bool)
             else getattr(default, name, 512) for name in ("width", "height")]
    low, high = TABLE["hires_scale"].range
    scales = []
    for (key, value), size in zip(sides.items(), first):
        if not value:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value / size <= high:
            raise InvalidValue(key, value, f"a size {low:g} to {high:g} times the first pass's {size}")
        scales.append(value / size)
    settings["hires_scale"] = scale = max(scales)
    asked = "x".join(str(v or "auto") for v in sides.values())
    got = "x".join(str(round(v * scale)) for v in first)
    notes.append(f"hr_resize_x/y {asked} ran as Upscale by {scale:g} ({got}, rounded to the model's sizes; "
                 "a target size wins over hr_scale, as in A1111)")


def _find_sampler(name: str, kind: str) -> tuple[samplers.Sampler, samplers.Schedule, str] | None:
    """(sampler, the schedule its name carries, why it was replaced: "" if not) for a name among a kind's
    samplers: its own, A1111's nearest, or on a flow model the nearest flow one. None: no such name."""
    mapped = NEAREST_SAMPLERS.get(naming.fold(name))
    for candidate, why in ((name, ""), (mapped, "the nearest sampler the studio has")):
        if candidate is None:
            continue
        for where in dict.fromkeys((kind, samplers.DIFFUSION)):
            try:
                sampler, schedule = samplers.parse_name(candidate, where)
            except InvalidValue:
                continue
            if where == kind:
                return sampler, schedule, why
            flow = samplers.get_sampler(FLOW_NEAREST.get(sampler.name, sampler.name), kind)
            return flow, schedule, f"the nearest sampler for a {kind} model"
    return None


def fit_sampler(settings: dict[str, Any], source: ModelSource, notes: list[str]) -> None:
    """Any sampler with any schedule A1111 lists runs, as A1111 runs it: a sampler the studio or the
    model's kind lacks as the nearest one, a schedule the sampler cannot take as its Automatic. A name
    neither known nor mapped is left for the field's check (a 422 listing the samplers)."""
    given, schedule_given = settings.get("sampler"), settings.get("schedule")
    if given is None and schedule_given is None:
        return
    name = source.defaults.sampler if given is None else given
    if not isinstance(name, str):
        return
    kind = sampler_kind(source.family)
    found = _find_sampler(name, kind)
    if found is None:
        return
    sampler, embedded, why = found
    allowed = family_sampler_names(source.family)
    if sampler.name not in allowed:
        fallback = source.defaults.sampler if source.defaults.sampler in allowed else allowed[0]
        sampler, why = samplers.get_sampler(fallback, kind), f"the {source.family} family runs {', '.join(allowed)}"
    if why:
        notes.append(f"sampler_name {name!r} ran as {sampler.name} ({why})")
    if schedule_given not in (None, samplers.AUTOMATIC):
        schedule = schedule_given  # A1111: a scheduler given wins over the one a combined name carries
        if embedded.name not in (samplers.AUTOMATIC, schedule):
            notes.append(f"sampler_name {name!r} ran with schedule {schedule} (the scheduler given wins, as in A1111)")
    elif embedded.name != samplers.AUTOMATIC:
        schedule = embedded.name
    else:
        schedule = schedule_given or source.defaults.schedule
    try:
        fits = samplers.supports(sampler, samplers.get_schedule(schedule))
    except InvalidValue:
        return  # the field's check names it
    if not fits:
        notes.append(f"schedule {schedule} ran as {samplers.AUTOMATIC} (sampler {sampler.name} cannot take it; "
                     "Automatic is its own)")
        schedule = samplers.AUTOMATIC
    settings["sampler"], settings["schedule"] = sampler.name, schedule


def distilled_guidance(settings: dict[str, Any], payload: Mapping[str, Any], source: ModelSource | None,
                       notes: list[str], ignored: dict[str, Any]) -> None:
    """Forge's `distilled_cfg_scale`: on a guidance-distilled model (FLUX dev) it is the distilled
    guidance (the studio's CFG scale there), and `cfg_scale` beside it the real CFG (the studio's true
    CFG scale; 1: off), as PNG Info reads Forge's infotext. On other models it changes nothing."""
    value = payload.get("distilled_cfg_scale")
    if value is None:
        return
    if source is None or source.guidance != "distilled":
        if value != FORGE_DISTILLED_DEFAULT:
            ignored["distilled_cfg_scale"] = value
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue("distilled_cfg_scale", value, "a number")
    real = payload.get("cfg_scale")
    settings["cfg_scale"] = value
    said = f"distilled_cfg_scale {value:g} ran as the CFG scale ({source.name}'s distilled guidance)"
    if isinstance(real, (int, float)) and not isinstance(real, bool) and source.family \
            and family(source.family).true_cfg:
        settings["true_cfg_scale"] = max(1.0, float(real))
        said += f"; cfg_scale {real:g} as its real CFG (True CFG scale {settings['true_cfg_scale']:g}; 1: off)"
    notes.append(said)


def drop_missing_loras(settings: dict[str, Any], lora_names: Collection[str], notes: list[str]) -> None:
    """A prompt's `<lora:name:w>` tag naming a LoRA the loras folder lacks is left out, as A1111 runs the
    prompt without it. Only plain names: a path or a hub id is left for the studio's checks (its path
    rule; a shared studio never says whether a file outside its folders exists)."""
    missing: list[str] = []
    for field in ("prompt", "negative_prompt"):
        text = settings.get(field)
        if not isinstance(text, str):
            continue
        kept, start = [], 0
        for tag in loras.find_tags(text):
            name = tag.name.strip()
            if name in lora_names or "/" in name or "\\" in name or name.lower().endswith(".safetensors"):
                continue
            kept.append(text[start:tag.start])
            start = tag.end
            missing.append(name)
        if start:
            settings[field] = "".join(kept) + text[start:]
    for name in dict.fromkeys(missing):
        notes.append(f"LoRA {name!r} not found: ran without it")
