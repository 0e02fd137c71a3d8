"""One path rule on a shared studio (issue 28): a model, ControlNet, adapter or LoRA is a preset, a
name of its folder, a Hub id `owner/name` or a path inside the studio's folders. An `owner/name` is the
Hub's even where the working directory holds a folder of that name, and a refused path gets the same
answer whether it exists or not; no message names a folder of this machine."""

from __future__ import annotations

import pytest

from studio.control.folder import resolve
from studio.engine.paths import check_model_name
from studio.errors import StudioError
from studio.hub import plain
from studio.models import hub_id, local_models, resolve_model


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding `private/secretmodel` (a diffusers folder) and a studio's models folder."""
    secret = tmp_path / "private" / "secretmodel"
    secret.mkdir(parents=True)
    (secret / "model_index.json").write_text("{}")
    (tmp_path / "studio").mkdir()
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_owner_name_that_is_a_folder_here_is_still_a_hub_id(workdir):
    source = resolve_model("private/secretmodel")
    assert (source.kind, source.ref) == ("hub", "private/secretmodel")
    assert resolve_model("./private/secretmodel").kind == "folder"  # a local folder says so


@pytest.mark.parametrize("text", ["studio/..", "nosuch/..", "a/./b", ".hidden/x", "x/y.safetensors", "x/y.ckpt"])
def test_paths_shaped_like_hub_ids_are_not_hub_ids(text):
    assert not hub_id(text)


def answer(model: str, roots, field: str = "model") -> str:
    """The refusal a visitor reads, the value as typed replaced (it is echoed back, cut)."""
    with pytest.raises(StudioError) as refused:
        check_model_name(model, roots, field)
        resolve_model(model)
    return str(refused.value).replace(repr(model), "NAME").replace(model, "NAME")


@pytest.mark.parametrize("field", ["model", "sd_model_checkpoint", "controlnets[0].model", "image_prompts[0].model"])
def test_one_answer_whether_a_path_exists_or_not(workdir, field):
    roots = ((workdir / "models").resolve(),)
    existing = [answer(text, roots, field) for text in ("studio/..", "private/secretmodel/..", "private/x.safetensors",
                                                          "./private/secretmodel", str(workdir / "private"))]
    missing = [answer(text, roots, field) for text in ("nosuch/..", "nosuch/secret/..", "nosuch/x.safetensors",
                                                         "./nosuch/secretmodel", str(workdir / "nosuch"))]
    assert existing == missing and len(set(existing)) == 1
    assert str(workdir) not in existing[0]


def test_hub_ids_and_paths_inside_the_folders_pass(workdir):
    roots = ((workdir / "models").resolve(),)
    check_model_name("private/secretmodel", roots)  # a Hub id: loaded from the Hub, never from here
    check_model_name(str(workdir / "models" / "x.safetensors"), roots)


def test_folder_names_become_full_paths(workdir):
    """A relative models or controlnets folder lists full paths: `models/x` would read as a Hub id."""
    (workdir / "models" / "mine").mkdir()
    (workdir / "models" / "mine" / "model_index.json").write_text("{}")
    (workdir / "models" / "net.safetensors").write_bytes(b"")
    assert str(workdir / "models" / "mine") in [path for _, path in local_models("models")]
    assert resolve("net", "models") == str(workdir / "models" / "net.safetensors")


def test_messages_name_no_folder_of_this_machine():
    text = ("Error no file named diffusion_pytorch_model.bin found in directory /srv/host/controlnets/mine. "
            "See https://huggingface.co/docs for more (/root/.cache/huggingface/hub/models--a--b/snapshots/1/unet)")
    shown = plain(text)
    assert "/srv" not in shown and "/root" not in shown and "mine." in shown and "(unet)" in shown
    assert "https://huggingface.co/docs" in shown
