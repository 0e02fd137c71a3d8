"""Fitting big models on smaller GPUs: CPU offload (CUDA only: refused elsewhere with a message), SD3
without its T5 encoder, and the denoiser quantized at load (int8 on any device, fp8 on CUDA)."""

from __future__ import annotations

import pytest
import torch

from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.tiny_flow import build_tiny_sd3


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_off_a_cuda_gpu_is_refused_naming_the_setting_and_the_device(mode):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: offload is allowed here")
    with pytest.raises(InvalidValue, match=f"offload: '{mode}' is not valid; allowed: none on cpu"):
        Studio(device="cpu", offload=mode)


def test_an_unknown_offload_mode_is_refused_with_the_choices():
    with pytest.raises(InvalidValue, match="offload: 'half' is not valid; allowed: none, model, sequential"):
        Studio(device="cpu", offload="half")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="model CPU offload needs a CUDA GPU; none here")
def test_model_offload_generates_the_same_image_as_the_gpu_alone(tmp_path):
    folder = tmp_path / "sd3"
    build_tiny_sd3().save_pretrained(folder)
    request = GenerationRequest.for_model(str(folder), prompt="offloaded", steps=2, width=256, height=256, seed=1,
                                          preview="latent2rgb")
    plain = Studio(device="cuda", dtype="fp32").run(request).images[0]
    offloaded = Studio(device="cuda", dtype="fp32", offload="model").run(request).images[0]
    assert plain.tobytes() == offloaded.tobytes()


def test_sd3_loads_without_t5_when_asked_and_still_generates(tmp_path):
    folder = tmp_path / "sd3"
    build_tiny_sd3().save_pretrained(folder)
    studio = Studio(device="cpu", cache_size=1, drop_t5=True)
    loaded = studio.load(str(folder))
    assert loaded.pipe.text_encoder_3 is None and loaded.pipe.tokenizer_3 is None
    request = GenerationRequest.for_model(str(folder), prompt="no t5, (red:1.3)", negative_prompt="fog", steps=2,
                                          width=256, height=256, seed=1)
    assert studio.run(request).images[0].size == (256, 256)
    with_t5 = Studio(device="cpu", cache_size=1).load(str(folder))
    assert with_t5.pipe.text_encoder_3 is not None  # only when asked


def test_an_int8_quantized_denoiser_loads_generates_and_reproduces():
    pytest.importorskip("torchao", reason="optional extra: pip install -r requirements-quant.txt")
    studio = Studio(device="cpu", cache_size=1, quantize="int8")
    loaded = studio.load("tiny-flux")
    weights = [m.weight for m in loaded.pipe.transformer.modules() if isinstance(m, torch.nn.Linear)]
    assert weights and all(type(w).__name__ == "Int8Tensor" for w in weights)  # torchao's int8 weights
    request = GenerationRequest.for_model("tiny-flux", prompt="quantized", steps=3, seed=5)
    first, second = studio.run(request), studio.run(request)
    assert first.images[0].size == (64, 64) and first.images[0].tobytes() == second.images[0].tobytes()
    sd = studio.run(GenerationRequest.for_model("tiny", prompt="a quantized unet", steps=2, seed=5))
    assert sd.images[0].size == (64, 64)


def test_fp8_off_a_cuda_gpu_and_unknown_modes_are_refused_by_name():
    if not torch.cuda.is_available():
        with pytest.raises(InvalidValue, match="quantize: 'fp8' is not valid; allowed: none or int8 on cpu"):
            Studio(device="cpu", quantize="fp8")
    with pytest.raises(InvalidValue, match="quantize: 'nf2' is not valid; allowed: none, int8, fp8"):
        Studio(device="cpu", quantize="nf2")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp8 weights need a CUDA GPU with fp8; none here")
def test_fp8_quantized_flux_generates_on_the_gpu():
    pytest.importorskip("torchao", reason="optional extra: pip install -r requirements-quant.txt")
    studio = Studio(device="cuda", dtype="bf16", quantize="fp8")
    result = studio.run(GenerationRequest.for_model("tiny-flux", prompt="fp8", steps=2, seed=1))
    assert result.images[0].size == (64, 64)
