"""Starting the studio: the fallback to `tiny` when the default model cannot be had, the page built
before the model has loaded, and an app that exits saying why. The flags alone: tests/unit/test_app_flags.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from support import ROOT
from studio import TABLE, Studio
from studio.web import FALLBACK_MODEL, Warmup, build_ui


def test_default_model_unavailable_falls_back_to_tiny_with_a_notice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    studio = Studio(device="cpu", cache_size=2)
    warmup = Warmup(studio, "sd15").start()
    assert warmup.done.wait(60)
    assert warmup.model == FALLBACK_MODEL
    assert "sd15 could not be loaded" in warmup.notice and "cannot be reached" in warmup.notice
    assert "noise" in warmup.notice and ".safetensors" in warmup.notice and "local" in warmup.notice
    assert studio.is_loaded("tiny")  # the page can generate at once


def test_tiny_start_says_its_images_are_noise():
    warmup = Warmup(Studio(device="cpu", cache_size=1), "tiny").start()
    assert warmup.done.wait(60)
    assert warmup.model == "tiny" and "noise" in warmup.notice


def test_page_builds_before_the_model_has_loaded(monkeypatch):
    studio = Studio(device="cpu", cache_size=1)
    warmup = Warmup(studio, "tiny-xl")  # not started: nothing is loaded yet
    warmup.model = warmup.requested
    demo = build_ui(studio, warmup)
    assert not studio.loaded_models()
    api = demo.get_api_info()["named_endpoints"]["/generate"]["parameters"]
    # The API's parameters are the field table's, in its order; the page's own state is not part of it.
    assert [p["parameter_name"] for p in api] == [f.name for f in TABLE.api]
    assert not {"history", "inpaint", "request"} & {p["parameter_name"] for p in api}


def test_the_app_says_so_and_exits_when_offload_has_no_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: offload is allowed here")
    done = subprocess.run([sys.executable, "app.py", "--model", "tiny", "--offload", "model"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "offload: 'model' is not valid; allowed: none on cpu" in done.stdout + done.stderr
