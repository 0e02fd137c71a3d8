"""The sampler registry: A1111 sampler and schedule-type names mapped to diffusers schedulers.

Everything here is data. A sampler is a diffusers scheduler class, by name, plus constructor flags; a
schedule type is a set of sigma / timestep-spacing flags. The classes are imported from diffusers
only when a scheduler is built or a schedule is checked against one, so names import without torch.
A scheduler for one generation is always
rebuilt from the model's *original* scheduler config (`from_config`, well under a millisecond), so
switching samplers never reloads a model and never inherits flags from the previous choice.
"""

from __future__ import annotations

import functools
import inspect
import threading
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from . import lazy, naming
from .errors import InvalidValue, UnknownName

SIGMA_FLAGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
AUTOMATIC = "Automatic"


@dataclass(frozen=True)
class Schedule:
    """An A1111 schedule type, as the scheduler flags that produce it."""

    name: str
    sigma_flag: str | None = None  # one of SIGMA_FLAGS, or None for the model's own sigmas
    timestep_spacing: str | None = None  # None keeps the model's own spacing
    spacing_required: bool = False  # False: the spacing is applied only where the class has it
    note: str = ""


@dataclass(frozen=True)
class Sampler:
    """An A1111 sampler name and the diffusers scheduler that implements it."""

    name: str
    scheduler: str  # diffusers class name
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    aliases: tuple[str, ...] = ()
    auto_schedule: str | None = None  # what A1111's "Automatic" picks for this sampler
    only_automatic: bool = False  # schedulers with a schedule of their own (LCM, TCD)
    brownian_seeded: bool = False  # needs per-image seeds for its Brownian-tree noise
    step_seeded: bool = False  # draws fresh noise in step(): the run's generators are handed to it
    note: str = ""


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(AUTOMATIC, note="the sampler's A1111 default on top of the model's own timestep spacing"),
    Schedule("Uniform", timestep_spacing="linspace", note="evenly spaced timesteps, model sigmas"),
    Schedule("Karras", sigma_flag="use_karras_sigmas"),
    Schedule("Exponential", sigma_flag="use_exponential_sigmas"),
    Schedule("Beta", sigma_flag="use_beta_sigmas"),
    Schedule("SGM Uniform", timestep_spacing="trailing", spacing_required=True),
)

# Order and names follow A1111's sampler dropdown; the mapping follows the table in diffusers'
# scheduler overview docs, with A1111's per-sampler default schedule as `auto_schedule`.
SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", aliases=("k_dpmpp_2m",), auto_schedule="Karras"),
    Sampler(
        "DPM++ SDE", "DPMSolverSDEScheduler", aliases=("k_dpmpp_sde",), auto_schedule="Karras",
        brownian_seeded=True,
    ),
    Sampler(
        "DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"},
        aliases=("k_dpmpp_2m_sde",), auto_schedule="Exponential",
    ),
    Sampler(
        "DPM++ 2M SDE Heun", "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_type": "heun"},
        aliases=("k_dpmpp_2m_sde_heun",), auto_schedule="Exponential",
    ),
    Sampler(
        "DPM++ 2S a", "DPMSolverSinglestepScheduler", {"solver_order": 2, "lower_order_final": True},
        aliases=("k_dpmpp_2s_a",), auto_schedule="Karras",
        note="nearest diffusers equivalent: 2nd-order single-step DPM-Solver++ (not ancestral)",
    ),
    Sampler(
        "DPM++ 3M SDE", "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 3},
        aliases=("k_dpmpp_3m_sde",), auto_schedule="Exponential",
    ),
    Sampler("Euler a", "EulerAncestralDiscreteScheduler", aliases=("k_euler_a", "k_euler_ancestral")),
    Sampler("Euler", "EulerDiscreteScheduler", aliases=("k_euler",)),
    Sampler("LMS", "LMSDiscreteScheduler", aliases=("k_lms",)),
    Sampler("Heun", "HeunDiscreteScheduler", aliases=("k_heun",)),
    Sampler("DPM2", "KDPM2DiscreteScheduler", aliases=("k_dpm_2",), auto_schedule="Karras"),
    Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler", aliases=("k_dpm_2_a",), auto_schedule="Karras"),
    # No x0 clipping (SD's own configs say so; diffusers' class default would clip to [-1, 1]).
    Sampler("DDIM", "DDIMScheduler", {"set_alpha_to_one": False, "clip_sample": False}, aliases=("ddim",)),
    Sampler("DDPM", "DDPMScheduler", {"clip_sample": False}, aliases=("ddpm",)),
    Sampler("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, aliases=("plms",)),
    Sampler("UniPC", "UniPCMultistepScheduler", aliases=("unipc",)),
    Sampler("DEIS", "DEISMultistepScheduler", aliases=("deis",)),
    Sampler("LCM", "LCMScheduler", aliases=("lcm",), only_automatic=True,
            note="for LCM-distilled models and LCM LoRAs"),
    Sampler("TCD", "TCDScheduler", aliases=("tcd",), only_automatic=True,
            note="for TCD-distilled models and TCD LoRAs"),
)


# Flow-matching models (FLUX, SD3) predict a velocity and need schedulers in flow mode; the same A1111
# names map to these. Karras sigmas make flow DPM++ return NaNs and FlowMatchHeun cannot take FLUX's
# sigmas, so those are not offered.
FLOW_SOLVER = {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "use_dynamic_shifting": True}
FLOW_SAMPLERS: tuple[Sampler, ...] = (
    Sampler("Euler", "FlowMatchEulerDiscreteScheduler", aliases=("k_euler", "flow euler")),
    Sampler("Euler a", "FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True},
            aliases=("k_euler_a", "k_euler_ancestral"), step_seeded=True,
            note="flow Euler with fresh noise each step (stochastic sampling)"),
    Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", FLOW_SOLVER, aliases=("k_dpmpp_2m",), only_automatic=True,
            note="in flow mode"),
    Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {**FLOW_SOLVER, "algorithm_type": "sde-dpmsolver++"},
            aliases=("k_dpmpp_2m_sde",), only_automatic=True, step_seeded=True, note="in flow mode"),
    Sampler("UniPC", "UniPCMultistepScheduler", FLOW_SOLVER, aliases=("unipc",), only_automatic=True,
            note="in flow mode"),
    Sampler("LCM", "FlowMatchLCMScheduler", aliases=("lcm",), only_automatic=True, step_seeded=True,
            note="for LCM / few-step distilled flow models"),
)
# Which set of samplers a family's models take (Family.sampler_kind).
SAMPLER_SETS: dict[str, tuple[Sampler, ...]] = {"diffusion": SAMPLERS, "flow": FLOW_SAMPLERS}
DIFFUSION = "diffusion"


def _fold(name: str) -> str:
    """Case- and spacing-insensitive key: 'dpm++ 2m  karras' and 'DPM++ 2M Karras' match."""
    key = naming.fold(name)
    if key is None:
        raise KeyError(name)  # bytes, numbers, lists: no such name (the callers say which)
    return key


_SAMPLER_INDEXES = {kind: {_fold(alias): s for s in group for alias in (s.name, *s.aliases)}
                    for kind, group in SAMPLER_SETS.items()}
_SCHEDULE_INDEX = {_fold(s.name): s for s in SCHEDULES}


def sampler_names(kind: str = DIFFUSION) -> list[str]:
    return [s.name for s in SAMPLER_SETS[kind]]


def schedule_names() -> list[str]:
    return [s.name for s in SCHEDULES]


def get_sampler(name: str, kind: str = DIFFUSION) -> Sampler:
    """Look a sampler up by its A1111 name or alias (not a combined name: see resolve)."""
    try:
        return _SAMPLER_INDEXES[kind][_fold(name)]
    except (KeyError, AttributeError):
        raise UnknownName("sampler", name, sampler_names(kind)) from None


def get_schedule(name: str) -> Schedule:
    try:
        return _SCHEDULE_INDEX[_fold(name)]
    except (KeyError, AttributeError):
        raise UnknownName("schedule", name, schedule_names()) from None


_SCHEDULER_CLASSES: dict[str, type] = {}
_SCHEDULER_LOCK = threading.Lock()


def scheduler_classes() -> Mapping[str, type]:
    """Every registered scheduler class by its name, imported from diffusers on first use.

    All at once and under a lock: diffusers' lazy module is not thread-safe, and a first attribute
    access racing a model load in another thread raised AttributeError (`studio.loading` calls this
    as it imports diffusers, so the engine resolves them on its importing thread).
    """
    with _SCHEDULER_LOCK:
        if not _SCHEDULER_CLASSES:
            _SCHEDULER_CLASSES.update({s.scheduler: lazy.resolve(f"diffusers:{s.scheduler}")
                                       for group in SAMPLER_SETS.values() for s in group})
    return _SCHEDULER_CLASSES


def _scheduler_class(class_name: str):
    return scheduler_classes()[class_name]


@functools.cache
def _init_params(class_name: str) -> frozenset[str]:
    return frozenset(inspect.signature(_scheduler_class(class_name).__init__).parameters)


def supports(sampler: Sampler, schedule: Schedule) -> bool:
    """Whether the sampler's scheduler class can produce this schedule type."""
    if schedule.name == AUTOMATIC:
        return True
    if sampler.only_automatic:
        return False
    params = _init_params(sampler.scheduler)
    if schedule.sigma_flag and schedule.sigma_flag not in params:
        return False
    if schedule.spacing_required and "timestep_spacing" not in params:
        return False
    return True


def schedules_for(sampler: Sampler) -> list[str]:
    return [s.name for s in SCHEDULES if supports(sampler, s)]


@dataclass(frozen=True)
class SamplerChoice:
    """A resolved (sampler, schedule) pair, as the infotext names them."""

    sampler: Sampler
    schedule: Schedule

    @property
    def effective_schedule(self) -> Schedule:
        """The schedule actually applied: Automatic resolved to the sampler's default."""
        if self.schedule.name == AUTOMATIC and self.sampler.auto_schedule:
            return get_schedule(self.sampler.auto_schedule)
        return self.schedule


def resolve(sampler_name: str, schedule_name: str = AUTOMATIC, kind: str = DIFFUSION) -> SamplerChoice:
    """Resolve A1111 names, including old combined ones such as 'DPM++ 2M Karras', among the
    samplers of a kind (a family's `sampler_kind`: diffusion or flow).

    A combined name carries its schedule; it wins over an `Automatic` schedule argument and must
    agree with any other.
    """
    schedule = get_schedule(schedule_name)
    if not isinstance(sampler_name, str):
        raise UnknownName("sampler", sampler_name, sampler_names(kind))
    index = _SAMPLER_INDEXES[kind]
    key = _fold(sampler_name)
    if key in index:
        sampler = index[key]
    else:
        sampler, schedule = _split_combined(sampler_name, schedule, index, kind)
    if not supports(sampler, schedule):
        raise InvalidValue(
            "schedule", schedule.name,
            f"for sampler {sampler.name}: " + ", ".join(schedules_for(sampler)),
        )
    return SamplerChoice(sampler, schedule)


def parse_name(sampler_name: str, kind: str = DIFFUSION) -> tuple[Sampler, Schedule]:
    """(sampler, the schedule its name carries: Automatic if none) for a name among a kind's samplers,
    an old combined one too ('DPM++ 2M Karras'); not checked against each other (resolve checks).
    Raises UnknownName for a name that is no sampler of the kind."""
    if not isinstance(sampler_name, str):
        raise UnknownName("sampler", sampler_name, sampler_names(kind))
    index = _SAMPLER_INDEXES[kind]
    automatic = get_schedule(AUTOMATIC)
    if _fold(sampler_name) in index:
        return index[_fold(sampler_name)], automatic
    return _split_combined(sampler_name, automatic, index, kind)


def _split_combined(sampler_name: str, schedule: Schedule, index: Mapping[str, Sampler],
                    kind: str) -> tuple[Sampler, Schedule]:
    key = _fold(sampler_name)
    # Longest schedule suffix first so 'SGM Uniform' wins over 'Uniform'.
    for suffix in sorted(_SCHEDULE_INDEX, key=len, reverse=True):
        if key.endswith(" " + suffix) and key[: -len(suffix) - 1] in index:
            embedded = _SCHEDULE_INDEX[suffix]
            if schedule.name not in (AUTOMATIC, embedded.name):
                raise InvalidValue(
                    "schedule", schedule.name,
                    f"{embedded.name} or {AUTOMATIC}, since the sampler name {sampler_name!r} "
                    f"already names the {embedded.name} schedule",
                )
            return index[key[: -len(suffix) - 1]], embedded
    raise UnknownName("sampler", sampler_name, sampler_names(kind))


def scheduler_overrides(choice: SamplerChoice, seeds: Sequence[int] = ()) -> dict[str, Any]:
    """The constructor overrides that turn a model's scheduler config into this choice."""
    params = _init_params(choice.sampler.scheduler)
    overrides: dict[str, Any] = dict(choice.sampler.options)
    schedule = choice.effective_schedule
    if schedule.name != AUTOMATIC or choice.sampler.auto_schedule:
        # Reset every sigma flag first: a checkpoint config may ship with one switched on.
        overrides.update({flag: False for flag in SIGMA_FLAGS if flag in params})
    if schedule.sigma_flag:
        overrides[schedule.sigma_flag] = True
    if schedule.timestep_spacing and "timestep_spacing" in params:
        overrides["timestep_spacing"] = schedule.timestep_spacing
    if choice.sampler.brownian_seeded and seeds:
        # Without a seed the Brownian tree draws one from torch's global RNG: not reproducible.
        overrides["noise_sampler_seed"] = [int(s) for s in seeds]
    return overrides


def make_scheduler(base_config: Mapping[str, Any], choice: SamplerChoice, seeds: Sequence[int] = ()):
    """A fresh scheduler for one generation, built from the model's original scheduler config.
    Keys the class does not take are left out (a flow config's `shift` means nothing to DPM++;
    diffusers would ignore them too, with a warning on every generation)."""
    cls = _scheduler_class(choice.sampler.scheduler)
    params = _init_params(choice.sampler.scheduler)
    config = {k: v for k, v in base_config.items() if k.startswith("_") or k in params}
    scheduler = cls.from_config(config, **scheduler_overrides(choice, seeds))
    if choice.sampler in FLOW_SAMPLERS and not hasattr(scheduler, "scale_noise"):
        # Flow image-to-image pipelines noise the input with scale_noise (sigma * noise + (1 - sigma)
        # * x), which only the FlowMatch classes have; the flow solvers keep the same sigmas,
        # timesteps and indices, so FlowMatchEuler's own method serves them unchanged.
        flow_euler = _scheduler_class("FlowMatchEulerDiscreteScheduler")
        scheduler.scale_noise = types.MethodType(flow_euler.scale_noise, scheduler)
    return scheduler


def sampler_table(kind: str = DIFFUSION) -> list[dict[str, str]]:
    """Rows for the README and the UI: name, diffusers class, flags, default and valid schedules."""
    rows = []
    for s in SAMPLER_SETS[kind]:
        flags = ", ".join(f"{k}={v!r}" for k, v in s.options.items())
        rows.append({
            "sampler": s.name,
            "scheduler": s.scheduler,
            "flags": flags,
            "automatic": s.auto_schedule or "model default",
            "schedules": ", ".join(schedules_for(s)),
            "note": s.note,
        })
    return rows


def sampler_table_markdown(kind: str = DIFFUSION) -> str:
    """The README's sampler table of a kind (a test keeps the README in step with the registry)."""
    lines = [
        "| Sampler (A1111) | diffusers scheduler | flags | Automatic = | schedule types | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in sampler_table(kind):
        flags = f"`{r['flags']}`" if r["flags"] else ""
        lines.append(f"| {r['sampler']} | `{r['scheduler']}` | {flags} | {r['automatic']} | {r['schedules']} | {r['note']} |")
    return "\n".join(lines)
