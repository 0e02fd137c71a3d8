"""A shared studio opens only its own folders' files, serves only its outputs, and says when it is open."""

from __future__ import annotations

import os
from pathlib import Path
import urllib.error
import urllib.request

import pytest

import app
from conftest import ROOT, running_app, tiny_request
from lora_files import write_tiny_lora
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


@pytest.mark.parametrize("argv, is_shared", [
    ([], False), (["--host", "localhost"], False), (["--share"], True), (["--host", "0.0.0.0"], True),
])
def test_a_studio_others_can_reach_is_run_as_shared(argv, is_shared):
    assert app.shared(app.parser().parse_args(argv)) is is_shared


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with running_app(tmp_path_factory) as running:
        yield running


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.parametrize("target", [
    "/etc/passwd", str(ROOT / "app.py"), str(ROOT / "presets" / "families.json"), "../../../../etc/passwd",
    str(ROOT / "studio" / ".." / "app.py"), os.path.expanduser("~/.bash_history"),
])
def test_files_outside_the_outputs_are_not_served(served, target):
    assert fetch(f"{served.url}gradio_api/file={target}") in (400, 403, 404)


def test_results_are_served_as_copies_and_the_outputs_folder_is_not_served_by_path(served):
    """Output names (date / number / seed) are guessable: the folder is never served; the caller gets
    Gradio's copy, whose folder is named by the file's content."""
    from gradio_client import Client

    images, *_ = Client(served.url, verbose=False, download_files=False).predict(
        prompt="served", model="tiny", steps=1, width=64, height=64, api_name="/generate")
    copy = images[0]["image"]["path"]  # where the server keeps the copy it hands out
    saved = next(served.outputs.glob("*/*.png"))
    assert Path(copy).read_bytes() == saved.read_bytes() and Path(copy).parent != saved.parent
    assert fetch(f"{served.url}gradio_api/file={copy}") == 200
    assert fetch(f"{served.url}gradio_api/file={saved}") in (400, 403, 404)


def test_share_without_auth_warns(monkeypatch, caplog):
    launched = {}
    monkeypatch.setattr("gradio.Blocks.launch", lambda self, **kw: launched.update(kw))
    with caplog.at_level("WARNING", logger="studio"):
        app.main(["--model", "tiny", "--share", "--no-outputs"])
    assert "--share without --auth" in caplog.text and launched["share"] is True
    assert not launched.get("allowed_paths")  # nothing is served by path, the outputs folder included
    assert launched["enable_monitoring"] is False  # a shared studio does not publish its traffic
