"""Fitting big models on smaller GPUs: CPU offload (CUDA only: refused elsewhere with a message) and SD3
without its T5 encoder. Quantized loading is not built yet (see the README)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import ROOT
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


def test_the_app_says_so_and_exits_when_offload_has_no_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: offload is allowed here")
    done = subprocess.run([sys.executable, "app.py", "--model", "tiny", "--offload", "model"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "offload: 'model' is not valid; allowed: none on cpu" in done.stdout + done.stderr


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
