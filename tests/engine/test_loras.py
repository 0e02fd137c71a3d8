"""LoRAs on the tiny models: a tag or a parameter changes the image and leaving it out restores it
exactly, several at once, in every task, errors named, a LoRA of another family refused."""

from __future__ import annotations

import numpy as np
import pytest

from support import picture, pixels, tiny_request
from support.lora_files import write_tiny_lora
from studio import Studio, StudioError


@pytest.fixture(scope="module")
def lora_studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    write_tiny_lora(folder, "detail", seed=0)
    write_tiny_lora(folder / "styles", "ink", seed=1)
    return Studio(device="cpu", cache_size=1, loras_dir=folder)


def test_a_lora_changes_the_image_at_weight_1_not_at_0_and_disabling_restores_it(lora_studio):
    studio = lora_studio
    base = pixels(studio.run(tiny_request()).images[0])
    loads = studio.load_count
    with_lora = studio.run(tiny_request(prompt="a red cube <lora:detail:1>"))
    assert not np.array_equal(pixels(with_lora.images[0]), base)
    assert np.array_equal(pixels(studio.run(tiny_request(prompt="a red cube <lora:detail:0>")).images[0]), base)
    assert np.array_equal(pixels(studio.run(tiny_request()).images[0]), base)  # exactly as before
    explicit = studio.run(tiny_request(loras=[("detail", 1.0)]))
    assert np.array_equal(pixels(explicit.images[0]), pixels(with_lora.images[0]))  # tag = parameter
    assert studio.load_count == loads  # the base model was never reloaded
    assert 'Lora hashes: "detail: ' in with_lora.infotexts[0]
    assert with_lora.infotexts[0].startswith("a red cube <lora:detail:1>")  # the prompt as typed


def test_several_loras_at_once_and_in_sub_folders(lora_studio):
    one = lora_studio.run(tiny_request(loras=[("detail", 1.0)]))
    both = lora_studio.run(tiny_request(loras=[("detail", 1.0), ("ink", 0.8)]))
    assert not np.array_equal(pixels(one.images[0]), pixels(both.images[0]))
    assert "detail: " in both.infotexts[0] and "ink: " in both.infotexts[0]


def test_loras_work_in_img2img_and_hires_too(lora_studio):
    plain = lora_studio.run(tiny_request(init_image=picture(), denoising_strength=0.6))
    styled = lora_studio.run(tiny_request(init_image=picture(), denoising_strength=0.6, loras=[("detail", 1)]))
    assert not np.array_equal(pixels(plain.images[0]), pixels(styled.images[0]))


def test_an_unknown_or_broken_lora_is_a_clear_error_and_the_next_run_works(lora_studio, tmp_path):
    with pytest.raises(StudioError, match="lora: 'nope' is not valid; allowed: one of detail, ink"):
        lora_studio.run(tiny_request(prompt="a <lora:nope:1>"))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(StudioError, match="broken.*not a readable .safetensors"):
        lora_studio.run(tiny_request(loras=[(str(broken), 1.0)]))
    assert lora_studio.run(tiny_request()).images


@pytest.mark.slow
def test_an_sdxl_lora_and_a_lora_of_the_wrong_family(tmp_path):
    write_tiny_lora(tmp_path, "xl-detail", seed=2, family="sdxl")
    write_tiny_lora(tmp_path, "sd-detail", seed=3, family="sd15")
    studio = Studio(device="cpu", cache_size=1, loras_dir=tmp_path)
    base = studio.run(tiny_request(model="tiny-xl"))
    styled = studio.run(tiny_request(model="tiny-xl", prompt="a red cube <lora:xl-detail:1>"))
    assert not np.array_equal(pixels(base.images[0]), pixels(styled.images[0]))
    assert np.array_equal(pixels(studio.run(tiny_request(model="tiny-xl")).images[0]), pixels(base.images[0]))
    with pytest.raises(StudioError, match="LoRA sd-detail does not fit tiny-xl"):
        studio.run(tiny_request(model="tiny-xl", prompt="a red cube <lora:sd-detail:1>"))
    assert np.array_equal(pixels(studio.run(tiny_request(model="tiny-xl")).images[0]), pixels(base.images[0]))
