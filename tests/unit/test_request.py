"""GenerationRequest validates itself; every error names the field, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import math

import pytest

from support import tiny_request
from studio import GenerationRequest
from studio.errors import InvalidValue
from studio.request import MAX_SEED


def make(**fields):
    base = dict(prompt="p", model="tiny", width=64, height=64)
    return GenerationRequest(**{**base, **fields})


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("steps", 0, "from 1 to 150"),
        ("steps", 151, "from 1 to 150"),
        ("steps", 20.5, "from 1 to 150"),
        ("steps", "20", "from 1 to 150"),
        ("steps", True, "from 1 to 150"),
        ("cfg_scale", -0.5, "from 0 to 30"),
        ("cfg_scale", 30.5, "from 0 to 30"),
        ("cfg_scale", math.nan, "from 0 to 30"),
        ("cfg_scale", math.inf, "from 0 to 30"),
        ("seed", -2, "-1 = random"),
        ("seed", MAX_SEED + 1, "-1 = random"),
        ("width", 65, "multiple of 8 from 32 to 512 for model tiny"),
        ("height", 520, "multiple of 8 from 32 to 512 for model tiny"),
        ("width", 24, "multiple of 8"),
        ("batch_size", 0, "from 1 to 8"),
        ("batch_size", 9, "from 1 to 8"),
        ("sampler", "Euler z", "DPM++ 2M"),
        ("schedule", "Karas", "Karras"),
        ("model", "no-such-model", "tiny"),
        ("model", "/no/such/file.safetensors", "no such file"),
        ("prompt", 42, "text"),
        ("rng", "gpu", "cpu, device"),
        ("clip_skip", 3, "from 1 to 2"),
        ("prompt_syntax", "comfy", "A1111, compel"),
    ],
)
def test_bad_values_name_field_value_and_allowed(field, value, allowed):
    with pytest.raises(InvalidValue) as err:
        make(**{field: value})
    message = str(err.value)
    assert err.value.field == field
    assert message.startswith(f"{field}: ")
    assert allowed in message
    assert repr(value)[:20] in message


def test_size_range_follows_the_model():
    with pytest.raises(InvalidValue, match="from 64 to 2048 for model sd15"):
        GenerationRequest(prompt="p", model="sd15", width=32, height=512)
    assert GenerationRequest(prompt="p", model="sd15", width=2048, height=64).width == 2048


def test_integral_floats_from_sliders_are_accepted_and_normalised():
    request = make(steps=20.0, width=64.0, batch_size=2.0, seed=5.0)
    assert (request.steps, request.width, request.batch_size, request.seed) == (20, 64, 2, 5)
    assert isinstance(request.steps, int)


def test_combined_sampler_names_are_split_and_canonical():
    request = make(sampler="dpm++ 2m karras")
    assert (request.sampler, request.schedule) == ("DPM++ 2M", "Karras")
    assert make(sampler="k_euler_a").sampler == "Euler a"


def test_model_names_are_canonical():
    assert make(model="TINY").model == "tiny"
    assert GenerationRequest(prompt="p", model="runwayml/stable-diffusion-v1-5").model == "sd15"
    assert GenerationRequest(prompt="p", model="someone/some-model").model == "someone/some-model"


def test_request_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().steps = 3


def test_for_model_takes_preset_defaults():
    turbo = GenerationRequest.for_model("sd-turbo", prompt="p")
    assert (turbo.steps, turbo.cfg_scale, turbo.sampler, turbo.width) == (1, 0.0, "Euler a", 512)
    xl = GenerationRequest.for_model("sdxl", prompt="p", steps=12)
    assert (xl.steps, xl.width, xl.height) == (12, 1024, 1024)


def test_random_seed_is_drawn_in_range_and_batch_seeds_follow_a1111():
    request = make(seed=-1, batch_size=3).with_seed()
    assert 0 <= request.seed <= MAX_SEED
    assert request.seeds() == [request.seed, request.seed + 1, request.seed + 2]
    assert make(seed=9).with_seed().seed == 9
    with pytest.raises(ValueError):
        make(seed=-1).seeds()


def test_batch_count_gives_every_image_its_own_seed_as_a1111():
    plan = tiny_request(seed=10, batch_size=3).batches(2)
    assert [r.seeds() for r in plan] == [[10, 11, 12], [13, 14, 15]]
    drawn = tiny_request(seed=-1, batch_size=2).batches(3)
    assert drawn[0].seed != -1 and [r.seed for r in drawn] == [drawn[0].seed + 2 * n for n in range(3)]
    assert tiny_request(seed=MAX_SEED).batches(2)[1].seed == 0  # wraps, stays a valid seed
    for bad in (0, 33, 1.5, "2"):
        with pytest.raises(InvalidValue, match="batch_count"):
            tiny_request().batches(bad)
