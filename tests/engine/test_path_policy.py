"""A shared studio opens only its own folders' files (models and LoRAs inside them load, paths outside
are refused before anything is opened, and the refusal tells nothing about this machine's files); a
local Python studio opens any path. Serving: tests/app/test_file_serving.py."""

from __future__ import annotations

import pytest

from support import tiny_request
from support.lora_files import write_tiny_lora
from studio import Studio
from studio.errors import InvalidValue
from studio.tiny import build_tiny_sd15


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("host")
    models, loras, elsewhere = root / "models", root / "loras", root / "elsewhere"
    pipe = build_tiny_sd15()
    pipe.save_pretrained(models / "inside")
    pipe.save_pretrained(elsewhere / "outside")
    write_tiny_lora(loras, "detail")
    write_tiny_lora(elsewhere, "stray")
    (models / "escape").symlink_to(elsewhere / "outside", target_is_directory=True)
    return models, loras, elsewhere


@pytest.fixture(scope="module")
def shared_studio(folders):
    models, loras, _ = folders
    return Studio(device="cpu", cache_size=1, loras_dir=loras, allowed_roots=[models, loras])


def test_models_and_loras_inside_the_folders_are_allowed(shared_studio, folders):
    models, _, _ = folders
    result = shared_studio.run(tiny_request(model=str(models / "inside"), prompt="a cube <lora:detail:1>"))
    assert result.images and "Lora hashes" in result.infotexts[0]


@pytest.mark.parametrize("where", ["outside", "dotdot", "symlink"])
def test_a_model_path_outside_the_folders_is_refused(shared_studio, folders, where):
    models, _, elsewhere = folders
    path = {"outside": elsewhere / "outside", "dotdot": models / ".." / "elsewhere" / "outside",
            "symlink": models / "escape"}[where]
    loads = shared_studio.load_count
    with pytest.raises(InvalidValue, match=r"model: .* a file in this studio's models or loras folder \(it is shared"):
        shared_studio.run(tiny_request(model=str(path)))
    assert shared_studio.load_count == loads  # refused before anything was opened


def test_a_lora_path_outside_the_folders_is_refused(shared_studio, folders):
    _, _, elsewhere = folders
    with pytest.raises(InvalidValue, match="lora: .*stray.safetensors.* a file in this studio's models or loras"):
        shared_studio.run(tiny_request(loras=[(str(elsewhere / "stray.safetensors"), 1.0)]))
    assert shared_studio.run(tiny_request()).images  # and the studio keeps working


def test_refusals_tell_nothing_about_this_machines_files(shared_studio, folders):
    """Whether a path exists, and where the studio's folders are, is not in the answer."""
    from studio.engine.paths import check_model_name

    models, _, _ = folders
    answers = []
    for path in ("/etc", "/nonexistent", "/etc/passwd", str(models / ".." / ".."), "~/.ssh/id_rsa"):
        with pytest.raises(InvalidValue) as refused:
            check_model_name(path, shared_studio.config.allowed_roots)
        answer = str(refused.value).replace(repr(path), "PATH")  # the value as typed, then the rule
        assert str(models) not in answer and str(models.parent) not in answer
        answers.append(answer)
    assert len(set(answers)) == 1
    check_model_name("tiny", shared_studio.config.allowed_roots)  # presets and hub ids pass
    check_model_name("someone/model", shared_studio.config.allowed_roots)


def test_a_local_python_studio_opens_any_path(folders):
    _, _, elsewhere = folders
    assert Studio(device="cpu", cache_size=1).run(tiny_request(model=str(elsewhere / "outside"))).images
