"""The engine on the tiny models: every sampler, reproducible seeds, progress, cancel, the cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from support import pixels, tiny_request
from studio import Cancelled, GenerationRequest, Progress, Result, Status, Studio, samplers
from studio.engine.passes import user_step


@pytest.mark.slow
@pytest.mark.parametrize("sampler", samplers.sampler_names())
def test_every_sampler_is_reproducible_and_seed_sensitive(studio, sampler):
    first = studio.run(tiny_request(sampler=sampler, seed=11))
    again = studio.run(tiny_request(sampler=sampler, seed=11))
    other = studio.run(tiny_request(sampler=sampler, seed=12))
    assert first.images[0].size == (64, 64)
    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))  # bit-identical
    assert not np.array_equal(pixels(first.images[0]), pixels(other.images[0]))


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["DPM++ 2M Karras", "DPM++ 2M SDE Exponential", "Euler SGM Uniform", "DPM2 Beta"])
def test_schedule_types_run_and_change_the_image(studio, sampler):
    scheduled = studio.run(tiny_request(sampler=sampler, seed=3))
    base = studio.run(tiny_request(sampler=sampler.rsplit(" ", 1)[0] if "SGM" not in sampler else "Euler",
                                   schedule="Uniform", seed=3))
    assert not np.array_equal(pixels(scheduled.images[0]), pixels(base.images[0]))


def test_batch_item_i_is_the_image_of_seed_plus_i(studio):
    batch = studio.run(tiny_request(sampler="Euler a", seed=40, batch_size=3))
    assert batch.seeds == (40, 41, 42)
    assert len(batch.images) == 3 and len(batch.infotexts) == 3
    assert "Seed: 41," in batch.infotexts[1]
    single = studio.run(tiny_request(sampler="Euler a", seed=41))
    # Same noise per item; batched matmuls may differ in the last bit, so compare loosely.
    diff = np.abs(pixels(batch.images[1]).astype(int) - pixels(single.images[0]).astype(int))
    assert diff.max() <= 2


def test_random_seed_is_reported_and_reproduces(studio):
    result = studio.run(tiny_request(seed=-1))
    assert result.request.seed == result.seed != -1
    assert f"Seed: {result.seed}," in result.infotexts[0]
    again = studio.run(tiny_request(seed=result.seed))
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))


def test_events_progress_from_1_to_n_then_result(studio):
    # Heun is second order: ~2 pipeline iterations per step; progress still counts user steps.
    events = list(studio.generate(tiny_request(sampler="Heun", steps=5)))
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == [1, 2, 3, 4, 5]
    assert all(e.total == 5 for e in events if isinstance(e, Progress))
    assert isinstance(events[-1], Result)
    assert events[-1].timings.generate_s > 0 and events[-1].timings.total_s >= events[-1].timings.generate_s


@pytest.mark.parametrize("index, total, steps, expected", [(0, 9, 5, 1), (8, 9, 5, 5), (3, 9, 5, 3), (0, 5, 5, 1), (4, 5, 5, 5)])
def test_user_step_maps_pipeline_iterations_to_user_steps(index, total, steps, expected):
    assert user_step(index, total, steps) == expected


def test_cancel_from_another_thread_stops_within_a_step_and_returns_no_image(studio):
    job = studio.generate(tiny_request(steps=60))
    seen = []
    for event in job:
        seen.append(event)
        if isinstance(event, Progress) and event.step == 3:
            threading.Thread(target=job.cancel).start()
    assert not any(isinstance(e, Result) for e in seen)
    final = seen[-1]
    assert isinstance(final, Cancelled)
    assert 3 <= final.step <= 5  # the step under way when cancel arrived, at most one more
    assert max(e.step for e in seen if isinstance(e, Progress)) < 60


def test_closing_the_event_stream_cancels_the_job_and_frees_the_device(studio):
    job = studio.generate(tiny_request(steps=100))
    events = iter(job)
    for event in events:
        if isinstance(event, Progress):
            break
    events.close()  # e.g. the browser went away
    assert job.cancelled and job.finished  # close() returns once the work has stopped
    assert not studio.busy  # the device is free
    assert isinstance(studio.run(tiny_request(steps=2)), Result)


def test_model_loads_once_and_sampler_switches_do_not_reload(studio):
    studio.run(tiny_request())
    loads = studio.load_count
    pipe = studio.load("tiny").pipe
    unet = pipe.unet
    for name in ("Euler a", "DPM++ 2M", "DDIM", "Heun"):
        events = list(studio.generate(tiny_request(sampler=name, steps=2)))
        assert not any(isinstance(e, Status) and "Loading" in e.message for e in events)
    assert studio.load_count == loads
    assert studio.load("tiny").pipe is pipe and pipe.unet is unet


def test_lru_cache_evicts_the_oldest_model():
    small = Studio(device="cpu", cache_size=1)
    small.run(tiny_request(steps=1))
    assert small.loaded_models() == ["sd15"]
    small.run(tiny_request(steps=1, model="tiny-xl"))
    assert small.loaded_models() == ["sdxl"]
    assert small.load_count == 2
    small.run(tiny_request(steps=1, model="tiny-xl"))
    assert small.load_count == 2


def test_first_use_reports_loading():
    fresh = Studio(device="cpu", cache_size=1)
    events = list(fresh.generate(tiny_request(steps=1)))
    assert isinstance(events[0], Status) and "Loading model tiny" in events[0].message
    assert events[-1].timings.load_s > 0


@pytest.mark.slow
def test_tiny_xl_runs_with_negative_prompt_and_batch(studio):
    request = GenerationRequest(prompt="a castle", negative_prompt="blurry", model="tiny-xl", steps=3,
                                width=64, height=96, seed=5, batch_size=2, sampler="DPM++ 2M SDE")
    result = studio.run(request)
    assert [im.size for im in result.images] == [(64, 96), (64, 96)]
    again = studio.run(request)
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))


def test_negative_prompt_and_cfg_change_the_image(studio):
    base = pixels(studio.run(tiny_request(seed=2)).images[0])
    assert not np.array_equal(base, pixels(studio.run(tiny_request(seed=2, negative_prompt="green")).images[0]))
    assert not np.array_equal(base, pixels(studio.run(tiny_request(seed=2, cfg_scale=2)).images[0]))


def test_tiny_results_say_their_images_are_noise(studio):
    result = studio.run(tiny_request())
    assert any("noise" in n for n in result.notices)


def test_sdpa_attention_is_used(studio):
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = studio.load("tiny").pipe.unet.attn_processors.values()
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors)


def test_generation_leaves_the_global_torch_rng_alone(studio):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    studio.run(tiny_request(sampler="DPM++ SDE", steps=2))
    assert torch.equal(torch.rand(3), expected)


def test_out_of_memory_is_a_clear_error_and_the_next_run_works(studio, monkeypatch):
    import torch

    from studio import StudioError

    pipe_class = type(studio.load("tiny").pipe)
    real_call = pipe_class.__call__

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(pipe_class, "__call__", out_of_memory)
    with pytest.raises(StudioError, match="Out of memory on cpu .* at 64x64, batch 1: try a smaller size or batch"):
        studio.run(tiny_request())
    monkeypatch.setattr(pipe_class, "__call__", real_call)
    assert studio.run(tiny_request()).images
