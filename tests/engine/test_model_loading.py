"""Loading real model forms offline: a diffusers folder, a single .safetensors file, refusals, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from support import pixels, tiny_request
from support.ldm_export import save_as_single_file, save_diffusers_config_folder
from studio import GenerationRequest, ModelLoadError, ModelUnavailable, Studio
from studio.cache import LRUCache
from studio.errors import PickleRefused
from studio.checkpoints import checkpoint_family, short_hash
from studio.tiny import build_tiny_sd15


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    pipe = build_tiny_sd15()
    pipe.save_pretrained(root / "tiny-folder")
    save_as_single_file(pipe, root / "tiny-ckpt.safetensors")
    save_diffusers_config_folder(pipe, root / "sd15-config")
    return root


def request_for(model: str, **fields) -> GenerationRequest:
    return tiny_request(model=model, **fields)


def test_local_diffusers_folder_gives_the_builtin_image(studio, tiny_files):
    folder = str(tiny_files / "tiny-folder")
    from_folder = studio.run(request_for(folder, seed=4))
    builtin = studio.run(request_for("tiny", seed=4))
    assert from_folder.model_name == "tiny-folder"
    assert np.array_equal(pixels(from_folder.images[0]), pixels(builtin.images[0]))


def test_single_safetensors_checkpoint_loads_offline_and_is_hashed(tiny_files):
    studio = Studio(device="cpu", cache_size=1, single_file_configs={"sd15": str(tiny_files / "sd15-config")})
    path = tiny_files / "tiny-ckpt.safetensors"
    result = studio.run(request_for(str(path), seed=4, sampler="DPM++ 2M Karras"))
    builtin = Studio(device="cpu", cache_size=1).run(request_for("tiny", seed=4, sampler="DPM++ 2M Karras"))
    assert np.array_equal(pixels(result.images[0]), pixels(builtin.images[0]))
    assert f"Model hash: {short_hash(str(path))}, Model: tiny-ckpt" in result.infotexts[0]
    assert len(short_hash(str(path))) == 10


def test_pickle_checkpoints_are_refused_by_default(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1)}}, path)
    studio = Studio(device="cpu", cache_size=1)
    with pytest.raises(PickleRefused, match="--allow-pickle"):
        studio.run(request_for(str(path)))


def test_pickle_weights_in_a_folder_are_refused_unless_allowed(tmp_path):
    from studio.tiny import build_tiny_sd15

    folder = tmp_path / "pickled"
    build_tiny_sd15().save_pretrained(folder, safe_serialization=False)
    with pytest.raises(PickleRefused, match="pickle weights .*--allow-pickle"):
        Studio(device="cpu", cache_size=1).load(str(folder))
    assert Studio(device="cpu", cache_size=1, allow_pickle=True).load(str(folder)).pipe is not None


def test_a_safetensors_file_that_is_not_a_checkpoint_says_so(tmp_path):
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.alpha": torch.zeros(1)}, str(lora))
    with pytest.raises(ModelLoadError, match="LoRA"):
        checkpoint_family(str(lora))
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a readable .safetensors"):
        Studio(device="cpu", cache_size=1).run(request_for(str(corrupt)))


def test_unreachable_hub_says_so_and_suggests_tiny(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    studio = Studio(device="cpu", cache_size=1)
    with pytest.raises(ModelUnavailable) as err:
        studio.load("nobody-here/not-a-model")
    message = str(err.value)
    assert "cannot be reached" in message and "tiny" in message and "local" in message
    # A failed load caches nothing and the studio keeps working.
    assert studio.loaded_models() == []
    assert studio.run(tiny_request(steps=1)).images


def test_failed_load_keeps_the_previous_model_working(studio, tmp_path):
    before = studio.load_count
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        studio.run(request_for(str(tmp_path)))
    assert studio.run(tiny_request(steps=1)).images
    assert studio.load_count <= before + 1


def test_a_model_that_cannot_be_fetched_evicts_nothing():
    studio = Studio(device="cpu", cache_size=1)
    studio.load("tiny")
    with pytest.raises(ModelUnavailable):
        studio.load("someone/not-on-this-machine")  # HF_HUB_OFFLINE: fails before loading anything
    assert studio.is_loaded("tiny") and studio.load_count == 1


def test_the_cache_keeps_its_models_when_preparing_a_load_fails():
    evicted = []
    cache = LRUCache(1, on_evict=evicted.append)
    cache.get_or_load("a", lambda: "model a")

    def fail() -> None:
        raise RuntimeError("cannot fetch")

    with pytest.raises(RuntimeError):
        cache.get_or_load("b", lambda: "model b", prepare=fail)
    assert cache.keys() == ["a"] and not evicted
    assert cache.get_or_load("b", lambda: "model b") == ("model b", True) and evicted == ["model a"]
