"""Hosting, without a model: native bf16 read from the CPU flags and the precision `auto` picks, the
starting model chosen by device, a Space's storage defaults, the GPU time asked for, the ZeroGPU
switch off Spaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import app
from studio import devices, hosting


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


@pytest.mark.parametrize("requested, kind, model, says", [
    ("auto", "cpu", "sd-turbo", "No GPU here"), ("auto", "cuda", "sd15", ""), ("auto", "mps", "sd15", ""),
    ("tiny", "cpu", "tiny", ""), ("sdxl", "cuda", "sdxl", "")])
def test_the_starting_model_follows_the_device_when_not_named(requested, kind, model, says):
    chosen, why = app.starting_model(requested, kind)
    assert chosen == model and (says in why if says else why == "")


def test_a_space_keeps_its_cache_and_outputs_on_persistent_storage(tmp_path):
    assert hosting.space_defaults({}, tmp_path) == {}  # not a Space
    on_data = hosting.space_defaults({"SPACE_ID": "me/studio"}, tmp_path)
    assert on_data == {"STUDIO_MODEL": "sd-turbo", "HF_HOME": str(tmp_path / ".huggingface"),
                       "STUDIO_OUTPUTS": str(tmp_path / "outputs"), "STUDIO_OUTPUTS_MAX_GB": "5"}
    assert hosting.space_defaults({"SPACE_ID": "me/studio"}, tmp_path / "absent") == {
        "STUDIO_MODEL": "sd-turbo", "STUDIO_NO_OUTPUTS": "1"}
    mine = hosting.space_defaults({"SPACE_ID": "me/studio", "HF_HOME": "/elsewhere"}, tmp_path)
    assert "HF_HOME" not in mine  # the Space's own variables win


def test_the_cache_is_where_huggingface_hub_looks(tmp_path):
    assert hosting.hub_cache({}, home=tmp_path) == tmp_path / ".cache/huggingface/hub"
    assert hosting.hub_cache({"XDG_CACHE_HOME": "/x"}, home=tmp_path) == Path("/x/huggingface/hub")
    assert hosting.hub_cache({"HF_HOME": "/data/.huggingface"}) == Path("/data/.huggingface/hub")
    assert hosting.hub_cache({"HF_HOME": "/a", "HF_HUB_CACHE": "/b"}) == Path("/b")


def test_models_the_space_build_preloaded_are_found_in_the_persistent_cache(tmp_path):
    """preload_from_hub writes to the default cache at build time; with persistent storage the studio
    uses /data's cache: the preloaded repos are linked there, not downloaded again."""
    built, used = tmp_path / "built" / "hub", tmp_path / "data" / ".huggingface" / "hub"
    snapshot = built / "models--stabilityai--sd-turbo" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    (built / "models--madebyollin--taesd").mkdir()
    (used / "models--madebyollin--taesd").mkdir(parents=True)  # downloaded at run time before: kept
    (used / "models--old--gone").symlink_to(tmp_path / "an-older-build", target_is_directory=True)
    assert hosting.link_preloaded(built, used) == ["stabilityai/sd-turbo"]
    assert (used / "models--stabilityai--sd-turbo" / "snapshots" / "abc" / "model_index.json").read_text() == "{}"
    assert not (used / "models--madebyollin--taesd").is_symlink()
    assert not (used / "models--old--gone").is_symlink() and not (used / "models--old--gone").exists()
    assert hosting.link_preloaded(built, used) == []  # a restart: already there
    assert hosting.link_preloaded(built, built) == [] and hosting.link_preloaded(tmp_path / "none", used) == []


def test_gpu_budget_for_a_model_of_unknown_family_uses_the_slowest_rate():
    from studio.families import FAMILIES
    from studio.service import build_requests

    plan = build_requests({"model": "tiny", "steps": 100, "width": 512, "height": 512})
    budget = hosting.GpuBudget(600, start_model="tiny")
    known = budget.seconds(plan)
    unknown = budget.seconds([type("R", (), {"model": "tiny", "cost": plan[0].cost, "source": type(
        "S", (), {"family": None})()})()])
    slowest = max(f.gpu_s_per_mp_step for f in FAMILIES.values())
    assert known < unknown == int(np.ceil(hosting.GPU_OVERHEAD_S + plan[0].cost() * slowest))


def test_zero_gpu_is_a_no_op_off_spaces(monkeypatch):
    def fn():
        return 1

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert hosting.on_gpu(fn) is fn and not hosting.zero_gpu_active()
