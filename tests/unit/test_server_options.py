"""The server's options, declared once (studio/options.py): the command line, the engine's and the
page's defaults and the docs' flags table all come from the one table; variables stand in for flags;
a bad value, typed or from a variable, is refused naming the flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from studio import options
from studio.config import StudioConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_line_is_the_table():
    parsed = vars(options.parser({}).parse_args([]))
    assert set(parsed) == {o.dest for o in options.OPTIONS}
    assert all(parsed[o.dest] == o.default for o in options.OPTIONS if not o.switch)
    assert all(parsed[o.dest] is False for o in options.OPTIONS if o.switch)
    assert all(o.help for o in options.OPTIONS)


def test_the_engines_defaults_are_the_flags():
    config = StudioConfig()
    for name in ("device", "dtype", "cache_size", "allow_pickle", "offload", "quantize", "drop_t5"):
        assert getattr(config, name) == options.default(name), name
    assert config.preview_interval_s == pytest.approx(1 / options.default("preview_fps"))


def test_variables_stand_in_for_flags_and_a_flag_wins():
    environ = {"STUDIO_CACHE_SIZE": "5", "STUDIO_DROP_T5": "1", "GRADIO_SERVER_PORT": "9000", "STUDIO_NO_OUTPUTS": "0"}
    args = options.parser(environ).parse_args([])
    assert (args.cache_size, args.drop_t5, args.port, args.no_outputs) == (5, True, 9000, False)
    assert options.parser(environ).parse_args(["--cache-size", "3"]).cache_size == 3


@pytest.mark.parametrize("argv, environ, message", [
    (["--cache-size", "0"], {}, "--cache-size: '0' is not valid; expected a whole number >= 1"),
    ([], {"STUDIO_PREVIEW_FPS": "fast"}, "--preview-fps: 'fast' is not valid"),
    (["--offload", "gpu"], {}, "--offload: invalid choice: 'gpu'"),
    (["--port", "70000"], {}, "port '70000' is not valid; expected 1..65535"),
])
def test_a_bad_value_is_refused_naming_the_flag(argv, environ, message, capsys):
    with pytest.raises(SystemExit):
        options.parser(environ).parse_args(argv)
    assert message in capsys.readouterr().err


def test_the_ray_flags_are_the_ray_groups_own():
    assert options.RAY_FLAGS == ("ray_address", "replicas", "max_replicas", "gpus_per_replica", "cpus_per_replica")


def test_reading_the_options_loads_neither_torch_nor_gradio():
    code = "import sys, studio.options as o; o.parser({}); print(sorted({'torch', 'gradio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
