"""CPU hosts (a free Space, a laptop): native bf16 detected, Fast decode, no CFG pass when CFG is off,
the starting model chosen by device, and a Space's storage defaults."""

from __future__ import annotations

import os

import numpy as np
import pytest

import app
from conftest import pixels, tiny_request
from studio import devices, hosting
from studio.infotext import parse_infotext
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.metadata import read_png

X86_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
X86_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
ARM_PLAIN = "processor\t: 0\nFeatures\t: fp asimd evtstrm\n"


@pytest.mark.parametrize("cpuinfo, native", [(X86_AMX, True), (X86_AVX2, False), (ARM_BF16, True),
                                             (ARM_PLAIN, False), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert devices.bf16_in_cpuinfo(cpuinfo) is native


def test_auto_precision_on_a_cpu_is_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(devices, "native_bf16", lambda: True)
    assert devices.pick_device("cpu").dtype_name == "bf16"
    assert devices.pick_device("cpu", "fp32").dtype_name == "fp32"  # asked for: kept
    monkeypatch.setattr(devices, "native_bf16", lambda: False)
    assert devices.pick_device("cpu").dtype_name == "fp32"


def test_fast_decode_is_reproducible_recorded_and_differs_from_the_vae(studio, tmp_path):
    fast = studio.run(tiny_request(seed=5, fast_decode=True))
    again = studio.run(tiny_request(seed=5, fast_decode=True))
    vae = studio.run(tiny_request(seed=5))
    assert fast.images[0].size == vae.images[0].size == (64, 64)
    assert np.array_equal(pixels(fast.images[0]), pixels(again.images[0]))
    assert not np.array_equal(pixels(fast.images[0]), pixels(vae.images[0]))
    assert "Fast decode: TAESD" in fast.infotexts[0] and "Fast decode" not in vae.infotexts[0]
    assert parse_infotext(fast.infotexts[0]).params["Fast decode"] == "TAESD"
    path = OutputFolder(tmp_path).save(fast)[0]
    assert recall(read_png(path)).fields["fast_decode"] is True


@pytest.mark.parametrize("model", ["tiny-xl", "tiny-flux", "tiny-sd3", "tiny-zimage"])
def test_fast_decode_works_for_every_family(studio, model):
    result = studio.run(tiny_request(model=model, seed=2, fast_decode=True, width=64, height=64, steps=2,
                                     sampler="Euler", cfg_scale=1.0))
    assert result.images[0].size == (64, 64) and "Fast decode: TAESD" in result.infotexts[0]


def unet_batches(studio, **fields) -> list[int]:
    """The batch size of every UNet call of one generation."""
    unet = studio.load("tiny").pipe.unet
    seen: list[int] = []
    hook = unet.register_forward_pre_hook(lambda module, args, kwargs: seen.append(int(args[0].shape[0])),
                                          with_kwargs=True)
    try:
        studio.run(tiny_request(**fields))
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("cfg", [0.0, 1.0])
def test_no_negative_pass_when_cfg_is_off(studio, cfg):
    assert unet_batches(studio, cfg_scale=cfg, steps=3) == [1, 1, 1]
    assert unet_batches(studio, cfg_scale=7.0, steps=3) == [2, 2, 2]


@pytest.mark.parametrize("requested, kind, model, says", [
    ("auto", "cpu", "sd-turbo", "No GPU here"), ("auto", "cuda", "sd15", ""), ("auto", "mps", "sd15", ""),
    ("tiny", "cpu", "tiny", ""), ("sdxl", "cuda", "sdxl", "")])
def test_the_starting_model_follows_the_device_when_not_named(requested, kind, model, says):
    chosen, why = app.starting_model(requested, kind)
    assert chosen == model and (says in why if says else why == "")


def test_a_cpu_start_says_why_and_falls_back_to_tiny_offline(studio):
    from studio.ui import Warmup

    model, why = app.starting_model("auto", "cpu")
    warmup = Warmup(studio, model, why).start(background=False)  # offline here: sd-turbo is not cached
    assert warmup.model == "tiny"
    assert warmup.notice.startswith("No GPU here") and "sd-turbo could not be loaded" in warmup.notice


def test_a_space_keeps_its_cache_and_outputs_on_persistent_storage(tmp_path):
    assert hosting.space_defaults({}, tmp_path) == {}  # not a Space
    on_data = hosting.space_defaults({"SPACE_ID": "me/studio"}, tmp_path)
    assert on_data == {"STUDIO_MODEL": "sd-turbo", "HF_HOME": str(tmp_path / ".huggingface"),
                       "STUDIO_OUTPUTS": str(tmp_path / "outputs"), "STUDIO_OUTPUTS_MAX_GB": "5"}
    assert hosting.space_defaults({"SPACE_ID": "me/studio"}, tmp_path / "absent") == {
        "STUDIO_MODEL": "sd-turbo", "STUDIO_NO_OUTPUTS": "1"}
    mine = hosting.space_defaults({"SPACE_ID": "me/studio", "HF_HOME": "/elsewhere"}, tmp_path)
    assert "HF_HOME" not in mine  # the Space's own variables win


def test_the_outputs_folder_keeps_under_its_cap_by_deleting_the_oldest(studio, tmp_path):
    result = studio.run(tiny_request(seed=1))
    folder = OutputFolder(tmp_path)
    first = folder.save(result)[0]
    size = first.stat().st_size
    os.utime(first, (1, 1))  # the oldest
    capped = OutputFolder(tmp_path, max_bytes=int(size * 2.5))
    second = capped.save(result)[0]
    third = capped.save(result)[0]
    assert not first.exists() and second.exists() and third.exists()


def test_gpu_budget_for_a_model_of_unknown_family_uses_the_slowest_rate():
    from studio.families import FAMILIES
    from studio.ui.runs import build_requests

    plan = build_requests({"model": "tiny", "steps": 100, "width": 512, "height": 512})
    budget = hosting.GpuBudget(600, start_model="tiny")
    known = budget.seconds(plan)
    unknown = budget.seconds([type("R", (), {"model": "tiny", "cost": plan[0].cost, "source": type(
        "S", (), {"family": None})()})()])
    slowest = max(f.gpu_s_per_mp_step for f in FAMILIES.values())
    assert known < unknown == int(np.ceil(hosting.GPU_OVERHEAD_S + plan[0].cost() * slowest))


@pytest.mark.parametrize("fast", [False, True])
def test_a_one_step_run_shows_its_picture_before_the_final_decode(studio, fast):
    from studio import Preview, Result

    kinds = [type(event) for event in studio.generate(tiny_request(steps=1, fast_decode=fast,
                                                                   preview="latent2rgb")).events()]
    assert Preview in kinds and Result in kinds and kinds.index(Preview) < kinds.index(Result)
