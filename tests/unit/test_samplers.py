"""The sampler registry: A1111 names (old combined ones too) -> diffusers schedulers and flags."""

from __future__ import annotations

import pytest

from studio import samplers
from studio.errors import InvalidValue, UnknownName
from studio.tiny import _sd_scheduler


A1111_NAMES = [
    "Euler", "Euler a", "Heun", "LMS", "DPM2", "DPM2 a", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ 2M SDE Heun",
    "DPM++ 3M SDE", "DPM++ SDE", "DPM++ 2S a", "DDIM", "PLMS", "UniPC", "DEIS", "LCM", "TCD",
]
BASE_CONFIG = dict(_sd_scheduler().config)


def config_with(**flags) -> dict:
    """A scheduler config as a checkpoint would ship it, with these values set explicitly."""
    from diffusers import EulerDiscreteScheduler

    return dict(EulerDiscreteScheduler(beta_schedule="scaled_linear", **flags).config)


def test_registry_covers_every_a1111_name():
    assert set(A1111_NAMES) <= set(samplers.sampler_names())


@pytest.mark.parametrize("name", samplers.sampler_names())
def test_every_sampler_builds_its_scheduler_for_every_schedule_it_lists(name):
    sampler = samplers.get_sampler(name)
    for schedule in samplers.schedules_for(sampler):
        choice = samplers.resolve(name, schedule)
        scheduler = samplers.make_scheduler(BASE_CONFIG, choice, seeds=[1])
        assert type(scheduler).__name__ == sampler.scheduler
        scheduler.set_timesteps(5)
        assert len(scheduler.timesteps) >= 5


@pytest.mark.parametrize(
    "combined, sampler, schedule",
    [
        ("DPM++ 2M Karras", "DPM++ 2M", "Karras"),
        ("DPM++ SDE Karras", "DPM++ SDE", "Karras"),
        ("DPM++ 2M SDE Exponential", "DPM++ 2M SDE", "Exponential"),
        ("DPM++ 2M SDE Heun Karras", "DPM++ 2M SDE Heun", "Karras"),
        ("DPM2 a Karras", "DPM2 a", "Karras"),
        ("LMS Karras", "LMS", "Karras"),
        ("Euler SGM Uniform", "Euler", "SGM Uniform"),
        ("dpm++ 2m  karras", "DPM++ 2M", "Karras"),
        ("k_euler_a", "Euler a", "Automatic"),
        ("k_dpmpp_2m", "DPM++ 2M", "Automatic"),
    ],
)
def test_old_combined_names_and_aliases(combined, sampler, schedule):
    choice = samplers.resolve(combined)
    assert (choice.sampler.name, choice.schedule.name) == (sampler, schedule)


def test_combined_name_conflicting_with_schedule_argument_is_an_error():
    with pytest.raises(InvalidValue, match="Karras"):
        samplers.resolve("DPM++ 2M Karras", "Exponential")
    assert samplers.resolve("DPM++ 2M Karras", "Karras").schedule.name == "Karras"


def test_unknown_sampler_lists_the_valid_names():
    with pytest.raises(UnknownName) as err:
        samplers.resolve("Euler b")
    message = str(err.value)
    assert "'Euler b'" in message and "sampler" in message
    for name in A1111_NAMES:
        assert name in message


def test_unknown_schedule_lists_the_valid_names():
    with pytest.raises(UnknownName, match="Karras, Exponential"):
        samplers.resolve("Euler", "Polyexponential")


def test_schedule_a_scheduler_cannot_do_is_refused_with_the_choices():
    # diffusers' EulerAncestralDiscreteScheduler has no Karras sigmas; LCM has its own schedule.
    with pytest.raises(InvalidValue, match="for sampler Euler a: Automatic, Uniform, SGM Uniform"):
        samplers.resolve("Euler a", "Karras")
    with pytest.raises(InvalidValue, match="for sampler LCM: Automatic$"):
        samplers.resolve("LCM", "Karras")


def test_automatic_follows_a1111_per_sampler_defaults():
    assert samplers.resolve("DPM++ 2M").effective_schedule.name == "Karras"
    assert samplers.resolve("DPM++ 2M SDE").effective_schedule.name == "Exponential"
    assert samplers.resolve("DPM2 a").effective_schedule.name == "Karras"
    assert samplers.resolve("Euler").effective_schedule.name == "Automatic"


def test_flags_reset_so_nothing_leaks_from_the_model_config_or_a_previous_choice():
    config = config_with(use_karras_sigmas=True, timestep_spacing="leading")
    uniform = samplers.make_scheduler(config, samplers.resolve("Euler", "Uniform"))
    assert uniform.config.use_karras_sigmas is False
    assert uniform.config.timestep_spacing == "linspace"
    exponential = samplers.make_scheduler(config, samplers.resolve("Euler", "Exponential"))
    assert exponential.config.use_exponential_sigmas is True and exponential.config.use_karras_sigmas is False
    sgm = samplers.make_scheduler(config, samplers.resolve("Euler", "SGM Uniform"))
    assert sgm.config.timestep_spacing == "trailing"
    assert config["use_karras_sigmas"] is True  # the base config itself is never modified


def test_automatic_without_a1111_default_keeps_the_model_spacing():
    # Turbo models ship timestep_spacing="trailing"; Automatic must not override it.
    config = config_with(timestep_spacing="trailing")
    scheduler = samplers.make_scheduler(config, samplers.resolve("Euler a"))
    assert scheduler.config.timestep_spacing == "trailing"


def test_sampler_flags_are_applied():
    heun = samplers.make_scheduler(BASE_CONFIG, samplers.resolve("DPM++ 2M SDE Heun"))
    assert heun.config.algorithm_type == "sde-dpmsolver++" and heun.config.solver_type == "heun"
    three = samplers.make_scheduler(BASE_CONFIG, samplers.resolve("DPM++ 3M SDE"))
    assert three.config.solver_order == 3
    plms = samplers.make_scheduler(BASE_CONFIG, samplers.resolve("PLMS"))
    assert plms.config.skip_prk_steps is True


def test_brownian_noise_is_seeded_per_image():
    scheduler = samplers.make_scheduler(BASE_CONFIG, samplers.resolve("DPM++ SDE"), seeds=[7, 8])
    assert list(scheduler.config.noise_sampler_seed) == [7, 8]


def test_sampler_table_has_a_row_per_sampler():
    rows = samplers.sampler_table()
    assert [r["sampler"] for r in rows] == samplers.sampler_names()
    assert all(r["scheduler"] and "Automatic" in r["schedules"] for r in rows)
