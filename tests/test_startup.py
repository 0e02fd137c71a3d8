"""Starting the studio: flags, and the fallback to `tiny` when the default model cannot be had."""

from __future__ import annotations

import argparse

import pytest

import app
from studio import TABLE, Studio
from studio.ui import FALLBACK_MODEL, Warmup, build_ui


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


@pytest.mark.parametrize("value", ["user", ":pass", "user:", ""])
def test_bad_auth_flag_is_refused_with_the_expected_form(value):
    with pytest.raises(argparse.ArgumentTypeError, match="user:password"):
        app.parse_auth(value)


def test_flags_parse():
    args = app.parser().parse_args(["--model", "tiny", "--port", "7000", "--auth", "a:b", "--share", "--cache-size", "3"])
    assert (args.model, args.port, args.auth, args.share, args.cache_size) == ("tiny", 7000, ("a", "b"), True, 3)
    with pytest.raises(SystemExit):
        app.parser().parse_args(["--port", "70000"])
    shared = app.parser().parse_args(["--share", "--controlnets-dir", "cn"])
    config = app.config_from(shared)
    assert config.controlnets_dir.name == "cn" and any(root.name == "cn" for root in config.allowed_roots)


def test_bad_device_flag_names_the_choices():
    from studio.errors import InvalidValue

    with pytest.raises(InvalidValue, match="device: 'tpu'"):
        Studio(device="tpu")
    with pytest.raises(InvalidValue, match="dtype: 'fp16' is not valid; allowed: on cpu"):
        Studio(device="cpu", dtype="fp16")


def test_fallback_switches_the_form_to_the_fallback_models_defaults():
    from studio.ui.handlers import model_form_updates

    updates = model_form_updates(FALLBACK_MODEL)
    assert updates["model"]["value"] == "tiny" and updates["sampler"]["value"] == "Euler a"
    assert updates["steps"]["value"] == 8
    assert (updates["width"]["value"], updates["width"]["minimum"], updates["width"]["maximum"]) == (64, 32, 512)


def test_space_and_hosting_flags():
    args = app.parser().parse_args(["--models-dir", "/tmp/ckpts", "--gpu-duration", "60"])
    assert (args.models_dir, args.gpu_duration) == ("/tmp/ckpts", 60)


def test_gradio_server_name_is_honoured_as_on_a_space(monkeypatch):
    monkeypatch.delenv("STUDIO_HOST", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert app.parser().parse_args([]).host == "0.0.0.0"
