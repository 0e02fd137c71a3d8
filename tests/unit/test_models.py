"""Model presets and the ways a `model` string can name a model."""

from __future__ import annotations

import json

import pytest

from studio import models
from studio.errors import InvalidValue, UnknownName
from studio.models import local_models


@pytest.mark.parametrize(
    "name, hub_id, family",
    [
        ("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd15"),
        ("sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
        ("sd-turbo", "stabilityai/sd-turbo", "sd15"),
        ("sdxl-turbo", "stabilityai/sdxl-turbo", "sdxl"),
    ],
)
def test_required_presets(name, hub_id, family):
    source = models.resolve_model(name)
    assert (source.kind, source.ref, source.family) == ("hub", hub_id, family)
    assert source.defaults.steps >= 1 and source.defaults.width % 8 == 0
    preview = source.preview
    assert len(preview.latent_rgb_factors) == 4 and len(preview.latent_rgb_bias) == 3
    assert preview.taesd


@pytest.mark.parametrize("name, family", [("tiny", "sd15"), ("tiny-xl", "sdxl")])
def test_tiny_presets_are_builtin_and_marked_as_noise(name, family):
    source = models.resolve_model(name)
    assert (source.kind, source.ref, source.is_noise) == ("builtin", family, True)


def test_local_folder_file_and_hub_id(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    source = models.resolve_model(str(folder))
    assert (source.kind, source.family, source.name) == ("folder", "sdxl", "my-model")

    ckpt = tmp_path / "dreamy.safetensors"
    ckpt.write_bytes(b"x")
    source = models.resolve_model(str(ckpt))
    assert (source.kind, source.name, source.pickle) == ("single_file", "dreamy", False)

    pickle = tmp_path / "old.ckpt"
    pickle.write_bytes(b"x")
    assert models.resolve_model(str(pickle)).pickle is True

    assert models.resolve_model("someone/model-x").kind == "hub"


def test_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(InvalidValue, match="model_index.json"):
        models.resolve_model(str(tmp_path))


def test_unknown_model_lists_presets_and_other_forms():
    with pytest.raises(UnknownName) as err:
        models.resolve_model("stable diffusion")
    message = str(err.value)
    for name in ("sd15", "sdxl", "sd-turbo", "sdxl-turbo", "tiny", "tiny-xl", "Hub id", ".safetensors"):
        assert name in message


@pytest.mark.parametrize(
    "data, complaint",
    [
        ({"name": "x", "source": "a/b"}, "missing key 'family'"),
        ({"name": "x", "source": "a/b", "family": "sd4"}, "family 'sd4'"),
        ({"name": "x", "source": "a/b", "family": "sd15", "colour": 1}, "unknown keys ['colour']"),
        ({"name": "x", "source": "a/b", "family": "sd15", "defaults": {"stepz": 3}}, "unknown defaults ['stepz']"),
        ({"name": "x", "source": "a/b", "family": "sd15", "size_range": [60, 100]}, "multiples of 8"),
        ({"name": "x", "source": "a/b", "family": "sd15", "preview": {"latent_rgb_factors": [[1, 2]]}}, "3 values"),
    ],
)
def test_bad_preset_files_name_the_problem(data, complaint):
    with pytest.raises(models.PresetFileError) as err:
        models.parse_preset(data, "presets/models/x.json")
    assert "presets/models/x.json" in str(err.value) and complaint in str(err.value)


@pytest.mark.parametrize("name", models.preset_names())
def test_every_preset_default_is_a_valid_request(name):
    from studio import GenerationRequest

    from PIL import Image

    from studio.families import family

    # An edit-only model (Qwen-Image-Edit) takes no request without a picture to edit.
    needs = family(models.resolve_model(name).family).needs_references
    pictures = {"references": [{"image": Image.new("RGB", (64, 64))}]} if needs else {}
    request = GenerationRequest.for_model(name, prompt="p", **pictures)
    assert request.model == name


def test_the_models_folder_lists_checkpoints_and_diffusers_folders(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.safetensors").write_bytes(b"x")
    (tmp_path / "old.ckpt").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    labels = [label for label, _ in local_models(tmp_path)]
    assert labels == ["a.safetensors", "pipe", "sub/b.safetensors"]
    assert "old.ckpt" in [label for label, _ in local_models(tmp_path, allow_pickle=True)]
    assert local_models(tmp_path / "missing") == [] and local_models(None) == []
