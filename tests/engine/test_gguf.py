"""GGUF single files: quantized FLUX transformers as city96 and Civitai ship them (Q8_0 / Q4 weights
that stay quantized in memory and dequantize layer by layer), loaded with the rest of their base."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from studio import GenerationRequest, Studio
from studio.errors import ModelLoadError, ModelUnavailable
from studio.families import family
from studio.models import local_models, resolve_model

pytest.importorskip("gguf", reason="GGUF files need the gguf package (requirements-quant.txt)")

from support.gguf_export import write_gguf  # noqa: E402


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def flux_files(tmp_path_factory):
    """A tiny FLUX base folder, its transformer as a Q8_0 GGUF and as a plain .safetensors file."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("gguf")
    pipe = family("flux").build_tiny()
    pipe.save_pretrained(root / "flux-base")
    state = {k: v.contiguous() for k, v in pipe.transformer.state_dict().items()}
    save_file(state, root / "finetune.safetensors")
    write_gguf(state, root / "finetune-Q8_0.gguf", quant="Q8_0")
    write_gguf(state, root / "finetune-Q4_0.gguf", quant="Q4_0")
    return root


def request(model, **fields) -> GenerationRequest:
    settings = {"prompt": "a lighthouse at dusk", "steps": 3, "width": 256, "height": 256, "seed": 5, **fields}
    return GenerationRequest.for_model(str(model), **settings)


def test_a_gguf_flux_transformer_loads_quantized_with_its_base_and_draws_what_the_unquantized_one_draws(flux_files):
    studio = Studio(device="cpu", cache_size=2, single_file_configs={"flux": str(flux_files / "flux-base")})
    gguf_file = flux_files / "finetune-Q8_0.gguf"
    assert resolve_model(str(gguf_file)).family == "flux"  # read from the GGUF header, before loading
    quantized = studio.run(request(gguf_file))
    again = studio.run(request(gguf_file))
    plain = studio.run(request(flux_files / "finetune.safetensors"))
    other_seed = studio.run(request(flux_files / "finetune.safetensors", seed=6))
    assert np.array_equal(pixels(quantized.images[0]), pixels(again.images[0]))  # same seed, same image
    # Q8_0 keeps the picture: far closer to the full-precision transformer's than another seed is.
    error = np.abs(pixels(quantized.images[0]) - pixels(plain.images[0])).mean()
    assert error < 0.25 * np.abs(pixels(other_seed.images[0]) - pixels(plain.images[0])).mean()
    transformer = studio.load(str(gguf_file)).pipe.transformer
    kinds = {type(p).__name__ for p in transformer.parameters()}
    assert "GGUFParameter" in kinds  # still quantized in memory
    assert "Model: finetune-Q8_0" in quantized.infotexts[0] and "Model hash: " in quantized.infotexts[0]


def test_q4_gguf_runs_img2img_on_the_same_quantized_weights(flux_files):
    studio = Studio(device="cpu", cache_size=1, single_file_configs={"flux": str(flux_files / "flux-base")})
    first = studio.run(request(flux_files / "finetune-Q4_0.gguf"))
    varied = studio.run(request(flux_files / "finetune-Q4_0.gguf", init_image=first.images[0],
                                denoising_strength=0.5))
    assert varied.images[0].size == (256, 256)
    loaded = studio.load(str(flux_files / "finetune-Q4_0.gguf"))
    assert loaded.task_pipes["img2img"].transformer is loaded.pipe.transformer


def test_quantize_flag_leaves_a_gguf_as_it_is_and_says_so(flux_files):
    pytest.importorskip("torchao", reason="--quantize needs torchao")
    said: list[str] = []
    studio = Studio(device="cpu", cache_size=1, quantize="int8",
                    single_file_configs={"flux": str(flux_files / "flux-base")})
    studio.load(str(flux_files / "finetune-Q8_0.gguf"), report=said.append)
    assert any("quantized already (gguf): --quantize int8 leaves it as it is" in line for line in said)


def test_a_gguf_without_its_base_offline_names_the_base_repo(flux_files):
    with pytest.raises(ModelUnavailable, match=r"FLUX.1 transformer alone: the rest of the model "
                                               r"\(black-forest-labs/FLUX.1-dev\)"):
        Studio(device="cpu", cache_size=1).load(str(flux_files / "finetune-Q8_0.gguf"))


def test_gguf_files_are_listed_in_the_models_folder(flux_files):
    labels = [label for label, _ in local_models(flux_files)]
    assert "finetune-Q8_0.gguf" in labels and "finetune.safetensors" in labels


def test_without_the_gguf_package_the_message_says_what_to_install(flux_files, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError
    copy = flux_files / "unread.gguf"  # a file whose header was never read (nothing remembered)
    copy.write_bytes((flux_files / "finetune-Q8_0.gguf").read_bytes())
    with pytest.raises(ModelLoadError, match=r"needs the gguf package \(python3 -m pip install -r "
                                             r"requirements-quant.txt\)"):
        Studio(device="cpu", cache_size=1).load(str(copy))


def test_a_gguf_of_a_family_loaded_only_whole_is_refused_with_the_reason(tmp_path):
    import torch

    file = write_gguf({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 64)}, tmp_path / "unet.gguf")
    with pytest.raises(ModelLoadError, match=r"unet.gguf: gguf files are loaded as a .* denoiser alone"):
        Studio(device="cpu", cache_size=1).load(str(file))


def test_a_flux_lora_applies_to_a_gguf_transformer_and_leaving_it_out_restores_the_image_exactly(flux_files, tmp_path):
    from support.lora_files import write_tiny_flux_lora

    write_tiny_flux_lora(tmp_path, "flux-detail")
    studio = Studio(device="cpu", cache_size=1, loras_dir=tmp_path,
                    single_file_configs={"flux": str(flux_files / "flux-base")})
    model = flux_files / "finetune-Q8_0.gguf"
    base = pixels(studio.run(request(model, prompt="a red cube")).images[0])
    with_lora = studio.run(request(model, prompt="a red cube <lora:flux-detail:0.8>"))
    assert not np.array_equal(base, pixels(with_lora.images[0]))
    assert 'Lora hashes: "flux-detail: ' in with_lora.infotexts[0]
    assert np.array_equal(base, pixels(studio.run(request(model, prompt="a red cube")).images[0]))


@pytest.mark.parametrize("name", ["klein", "qwen_image"])
def test_the_editing_families_transformers_load_alone_and_as_gguf(tmp_path, name):
    """FLUX.2 Klein's and Qwen-Image's transformers, as a .safetensors file alone and as a Q8_0 GGUF:
    the family read from the header, the rest from the base, the weights kept quantized."""
    from safetensors.torch import save_file

    pipe = family(name).build_tiny()
    pipe.save_pretrained(tmp_path / "base")
    state = {k: v.contiguous() for k, v in pipe.transformer.state_dict().items()}
    save_file(state, tmp_path / "alone.safetensors")
    write_gguf(state, tmp_path / "alone-Q8_0.gguf", quant="Q8_0")
    studio = Studio(device="cpu", cache_size=1, single_file_configs={name: str(tmp_path / "base")})
    for file in (tmp_path / "alone.safetensors", tmp_path / "alone-Q8_0.gguf"):
        assert resolve_model(str(file)).family == name
        first = studio.run(request(file, steps=2))
        assert np.array_equal(pixels(first.images[0]), pixels(studio.run(request(file, steps=2)).images[0]))
    kinds = {type(p).__name__ for p in studio.load(str(tmp_path / "alone-Q8_0.gguf")).pipe.transformer.parameters()}
    assert "GGUFParameter" in kinds
