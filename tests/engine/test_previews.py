"""Live previews: x0 capture for every sampler, the preview methods, the worker, slow consumers."""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest
import torch

from support import pixels, tiny_request
from studio import Preview, Progress, Result, Status, Studio, samplers
from studio.engine import coalesce
from studio.families import PreviewData
from studio.previews import PreviewWorker, autoencoder_decoder, latent2rgb_decoder, resolve_method
from studio.tiny import _sd_scheduler
from studio.previews.x0 import X0Tap, from_flow, mechanism_for

BASE_CONFIG = dict(_sd_scheduler().config)


@pytest.mark.parametrize("sampler", samplers.sampler_names())
def test_captured_x0_is_the_known_clean_latent(sampler):
    """Noise a known clean latent to the first timestep, feed the exact noise as the model output,
    and the x0 the tap captures must be that clean latent again."""
    scheduler = samplers.make_scheduler(BASE_CONFIG, samplers.resolve(sampler), seeds=[1])
    scheduler.set_timesteps(6)
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(1, 4, 8, 8, generator=g)
    noise = torch.randn(1, 4, 8, 8, generator=g)
    t = scheduler.timesteps[:1]
    noisy = scheduler.add_noise(clean, noise, t)
    captured = []
    X0Tap(scheduler, captured.append)
    kwargs = {"generator": torch.Generator().manual_seed(1)} if "generator" in inspect.signature(scheduler.step).parameters else {}
    scheduler.step(noise, t[0], noisy, **kwargs)
    assert len(captured) == 1
    # LCM's "denoised" applies its boundary-condition scalings (c_skip ~ 0, c_out ~ 1 at high noise).
    tolerance = 2e-2 if sampler == "LCM" else 1e-3
    assert torch.allclose(captured[0], clean, atol=tolerance), (sampler, mechanism_for(scheduler).__name__)


def test_flow_matching_x0():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(5)
    g = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    sigma = scheduler.sigmas[0]
    noisy = sigma * noise + (1 - sigma) * clean
    captured = []
    X0Tap(scheduler, captured.append)
    assert mechanism_for(scheduler) is from_flow
    scheduler.step(noise - clean, scheduler.timesteps[0], noisy)  # velocity = noise - x0
    assert torch.allclose(captured[0], clean, atol=1e-5)


def test_tap_keeps_the_step_signature_so_pipelines_still_pass_the_generator():
    scheduler = samplers.make_scheduler(BASE_CONFIG, samplers.resolve("Euler a"))
    X0Tap(scheduler, lambda x0: None)
    assert "generator" in inspect.signature(scheduler.step).parameters


def test_latent2rgb_is_the_linear_projection_with_bias():
    data = PreviewData(((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0)), (0.0, 0.5, -1.0))
    latent = torch.zeros(1, 4, 2, 2)
    latent[0, 0] = 1.0  # red channel +1 -> (1 + 1) / 2 = full red
    image = np.asarray(latent2rgb_decoder(data, (2, 2))(latent))
    assert image[0, 0].tolist() == [255, 191, 0]  # green: (0.5 + 1) / 2 -> 191; blue clamps to 0


def test_auto_is_taesd_on_a_gpu_and_latent2rgb_on_the_cpu():
    assert resolve_method("auto", "cuda") == "taesd" and resolve_method("auto", "mps") == "taesd"
    assert resolve_method("auto", "cpu") == "latent2rgb" and resolve_method("vae", "cpu") == "vae"


@pytest.fixture(scope="module")
def eager():
    return Studio(device="cpu", cache_size=2, preview_interval_s=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", samplers.sampler_names())
def test_every_sampler_previews_nearly_every_step_without_changing_the_result(eager, sampler):
    events = list(eager.generate(tiny_request(sampler=sampler, steps=6, preview="latent2rgb")))
    shown = [e for e in events if isinstance(e, Preview)]
    assert len(shown) >= 3, [e.step for e in shown]
    assert all(1 <= e.step <= 6 and e.image.size == (64, 64) for e in shown)
    frames = [pixels(e.image) for e in shown]
    changed = [not np.array_equal(a, b) for a, b in zip(frames, frames[1:])]
    assert sum(changed) >= len(changed) - 1 and changed[0]  # they change (the last may have converged)
    without = eager.run(tiny_request(sampler=sampler, steps=6, preview="none"))
    assert np.array_equal(pixels(events[-1].images[0]), pixels(without.images[0]))


@pytest.mark.parametrize("method", ["latent2rgb", "taesd", "vae"])
def test_each_method_previews_at_the_requested_size(eager, method):
    events = list(eager.generate(tiny_request(preview=method, width=96, height=64, model="tiny-xl")))
    shown = [e for e in events if isinstance(e, Preview)]
    assert shown and all(e.image.size == (96, 64) for e in shown)
    assert not any("unavailable" in n for n in events[-1].notices)


def test_none_yields_no_previews(eager):
    assert not any(isinstance(e, Preview) for e in eager.generate(tiny_request(preview="none")))


def test_a_missing_taesd_falls_back_to_latent2rgb_with_a_notice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    studio = Studio(device="cpu", cache_size=1, preview_interval_s=0.0, taesd_sources={"sd15": "nobody/no-taesd"})
    events = list(studio.generate(tiny_request(preview="taesd")))
    assert any(isinstance(e, Preview) for e in events)
    assert any(isinstance(e, Status) and "latent2rgb" in e.message for e in events)
    assert any("TAESD previews are unavailable" in n for n in events[-1].notices)


def test_worker_offer_never_waits_for_a_slow_decoder():
    release = threading.Event()
    decoded = []

    def slow_decode(x0):
        release.wait(30)
        return latent2rgb_decoder(PreviewData(((1, 0, 0),) * 4, (0, 0, 0)), (8, 8))(x0)

    worker = PreviewWorker(slow_decode, lambda step, image: decoded.append(step), interval_s=0.0)
    for step in range(1, 101):  # the decoder is stuck on the first x0 all this time
        worker.offer(step, torch.zeros(1, 4, 2, 2))
    assert worker.stats.offered == 100
    release.set()
    worker.close()
    assert worker.stats.dropped >= 98 and len(decoded) <= 2


def test_worker_rate_limit_drops_frames_between_previews():
    shown = []
    worker = PreviewWorker(lambda x0: None, lambda step, image: shown.append(step), interval_s=30.0)
    worker.offer(1, torch.zeros(1))
    deadline = threading.Event()
    for _ in range(100):
        if shown:
            break
        deadline.wait(0.05)
    for step in range(2, 10):
        worker.offer(step, torch.zeros(1))
    worker.close()
    assert shown == [1]  # the next one would have waited 30 s; closing drops it


def test_coalesce_keeps_order_and_only_the_newest_preview_and_progress():
    p = [Progress(i, 9, 0, 0, 0) for i in range(3)]
    v = [Preview(i, 9, None) for i in range(3)]
    s = Status("x")
    assert coalesce([p[0], v[0], s, p[1], v[1], v[2], p[2]]) == [s, v[2], p[2]]


def test_a_stalled_consumer_does_not_stall_the_loop(eager):
    job = eager.generate(tiny_request(steps=20, preview="latent2rgb"))
    events = iter(job)
    # Read up to the first preview: a batch already taken holds at most one preview, so from here
    # on whatever the reader finds waiting is what the loop queued while nobody read.
    first = next(e for e in events if isinstance(e, (Preview, Result)))
    assert isinstance(first, Preview)
    for _ in range(600):  # the reader is away; the work must finish regardless
        if job.finished:
            break
        threading.Event().wait(0.05)
    assert job.finished
    rest = list(events)
    assert isinstance(rest[-1], Result)
    assert sum(isinstance(e, Preview) for e in rest) <= 1  # stale frames were dropped, not queued up


@pytest.mark.parametrize("family, channels", [("sd15", 4), ("sdxl", 4), ("sd3", 16), ("flux", 16)])
def test_every_family_has_latent2rgb_data_that_decodes_its_latents(family, channels):
    from studio.families import LATENT_FORMATS

    data = LATENT_FORMATS[family].preview
    assert len(data.latent_rgb_factors) == channels and data.taesd
    latent = torch.randn(1, channels, 8, 8, generator=torch.Generator().manual_seed(0))
    image = latent2rgb_decoder(data, (32, 32))(latent)
    assert image.size == (32, 32) and len(set(image.getdata())) > 10
    # Each latent format brings an offline tiny decoder of its own channel count too.
    assert autoencoder_decoder(LATENT_FORMATS[family].tiny_decoder(), (32, 32))(latent).size == (32, 32)


def test_a_failing_decoder_stops_previews_with_a_notice_and_the_image_is_unchanged(monkeypatch):
    from studio import previews

    studio = Studio(device="cpu", cache_size=1, preview_interval_s=0.0)
    plain = studio.run(tiny_request(preview="none"))

    def broken(preview, size):
        def decode(x0):
            raise RuntimeError("decoder exploded")
        return decode

    monkeypatch.setattr(previews, "latent2rgb_decoder", broken)
    monkeypatch.setitem(previews.METHODS, "latent2rgb", previews.PreviewMethod(
        "latent2rgb", "latent2rgb", "broken", lambda d, loaded, size: broken(None, size)))
    events = list(studio.generate(tiny_request(preview="latent2rgb")))
    result = events[-1]
    assert isinstance(result, Result) and not any(isinstance(e, Preview) for e in events)
    assert any(isinstance(e, Status) and "Live previews stopped" in e.message and "decoder exploded" in e.message
               for e in events)
    assert any("Live previews stopped" in n for n in result.notices)
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(plain.images[0]))


def test_a_bug_in_loading_a_tiny_decoder_is_not_passed_off_as_unavailable(monkeypatch):
    """Only what loading raises (a missing or broken TAESD) falls back; a bug is a bug."""
    from studio.previews import PreviewDecoders

    def bug(self, ref, latent):
        raise TypeError("a bug, not a missing file")

    monkeypatch.setattr(PreviewDecoders, "_load_taesd", bug)
    studio = Studio(device="cpu", cache_size=1)
    with pytest.raises(TypeError, match="a bug"):
        studio.run(tiny_request(preview="taesd"))
