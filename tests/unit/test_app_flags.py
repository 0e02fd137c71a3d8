"""The app's flags: parsed, refused with the expected form, the device's choices named, Spaces'
variables honoured, and which flags make a studio shared."""

from __future__ import annotations

import argparse

import pytest

import app
from studio import Studio, options


@pytest.mark.parametrize("value", ["user", ":pass", "user:", ""])
def test_bad_auth_flag_is_refused_with_the_expected_form(value):
    with pytest.raises(argparse.ArgumentTypeError, match="user:password"):
        options.parse_auth(value)


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


def test_space_and_hosting_flags():
    args = app.parser().parse_args(["--models-dir", "/tmp/ckpts", "--gpu-duration", "60"])
    assert (args.models_dir, args.gpu_duration) == ("/tmp/ckpts", 60)


def test_gradio_server_name_is_honoured_as_on_a_space(monkeypatch):
    monkeypatch.delenv("STUDIO_HOST", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert app.parser().parse_args([]).host == "0.0.0.0"


@pytest.mark.parametrize("argv, is_shared", [
    ([], False), (["--host", "localhost"], False), (["--share"], True), (["--host", "0.0.0.0"], True),
])
def test_a_studio_others_can_reach_is_run_as_shared(argv, is_shared):
    assert app.shared(app.parser().parse_args(argv)) is is_shared
