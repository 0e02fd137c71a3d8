"""What is FLUX's own, on the tiny offline models (dev-shaped and schnell-shaped): the builders, T5
weighting, distilled guidance and true CFG, the T5 counter and limit, LoRAs, the page's CFG label.
What every flow family does alike is in test_flow_families.py."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from support import pixels
from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.families.flux import FluxPromptEncoder
from studio.prompts import parse
from studio.samplers import sampler_names
from studio.tiny_flow import build_tiny_flux

MODELS = ("tiny-flux", "tiny-flux-schnell")


@pytest.fixture(scope="module")
def flux_studio():
    return Studio(device="cpu", cache_size=2, preview_interval_s=0.0)


def flux_request(model: str = "tiny-flux", **fields) -> GenerationRequest:
    return GenerationRequest.for_model(model, **{"prompt": "a red cube", "steps": 4, "seed": 3, **fields})


def events_of(studio, request):
    return list(studio.generate(request).events())


def test_the_tiny_flux_models_build_offline_in_about_a_second_and_deterministically():
    start = time.perf_counter()
    a, b = build_tiny_flux(), build_tiny_flux()
    assert time.perf_counter() - start < 10  # generous: shared CI machines
    assert a.transformer.config.guidance_embeds and a.vae.config.latent_channels == 16
    for (name, x), (_, y) in zip(a.transformer.state_dict().items(), b.transformer.state_dict().items()):
        assert torch.equal(x, y), name


def test_a_sampler_flux_cannot_run_is_refused_with_the_ones_it_can():
    with pytest.raises(InvalidValue, match="sampler") as refused:
        flux_request(sampler="Heun")
    assert "Euler" in str(refused.value) and "UniPC" in str(refused.value)
    with pytest.raises(InvalidValue, match="schedule"):
        flux_request(sampler="DPM++ 2M Karras")  # Karras sigmas give NaNs in flow DPM++


def test_t5_weighting_changes_the_image_and_weight_one_changes_nothing(flux_studio):
    plain = pixels(flux_studio.run(flux_request(prompt="a red cube")).images[0])
    one = pixels(flux_studio.run(flux_request(prompt="a (red:1.0) cube")).images[0])
    more = pixels(flux_studio.run(flux_request(prompt="a (red:1.6) cube")).images[0])
    assert np.array_equal(plain, one) and not np.array_equal(plain, more)


def test_an_unweighted_prompt_is_encoded_exactly_as_the_pipeline_does():
    pipe = build_tiny_flux()
    ours = FluxPromptEncoder(pipe).encode(parse("a lighthouse at dusk", "A1111"))
    with torch.no_grad():  # as inside the pipeline's call
        theirs, pooled, _ = pipe.encode_prompt(prompt="a lighthouse at dusk", prompt_2=None, device="cpu")
    assert torch.equal(ours.embeds, theirs) and torch.equal(ours.pooled, pooled)


def test_dev_records_its_distilled_guidance_and_schnell_does_not(flux_studio):
    dev = flux_studio.run(flux_request(cfg_scale=4.5)).infotexts[0]
    schnell = flux_studio.run(flux_request("tiny-flux-schnell")).infotexts[0]
    assert "CFG scale: 1, Distilled CFG Scale: 4.5" in dev  # as Forge writes it: real CFG off
    assert "Distilled CFG Scale" not in schnell


def test_the_token_counter_counts_t5_tokens(flux_studio):
    flux_studio.run(flux_request(steps=1))  # counts need the model loaded
    view = flux_studio.describe_prompt("a red cube", "tiny-flux", "A1111")
    count = len(build_tiny_flux().tokenizer_2("a red cube")["input_ids"])
    assert view.chunk_tokens == (count,) and view.token_limit == 512
    from studio.web.prompt_view import token_counter

    assert token_counter({"chunk_tokens": [count], "token_limit": 512, "warnings": []}) == f"Tokens: {count}/512"


def test_a_prompt_past_t5s_limit_warns_instead_of_being_cut_silently(flux_studio):
    long_prompt = "a red cube " * 200  # about 1 400 T5 tokens of the generated tokenizer
    result = flux_studio.run(flux_request(prompt=long_prompt, steps=1))
    assert any("reads 512, the rest is cut" in notice for notice in result.notices)
    view = flux_studio.describe_prompt(long_prompt, "tiny-flux", "A1111")
    assert any("reads 512" in warning for warning in view.warnings)


def test_a_flux_lora_changes_the_image_and_leaving_it_out_restores_it_exactly(tmp_path):
    from support.lora_files import write_tiny_flux_lora, write_tiny_lora

    write_tiny_flux_lora(tmp_path, "flux-detail")
    write_tiny_lora(tmp_path, "sd-detail")
    studio = Studio(device="cpu", cache_size=1, loras_dir=tmp_path)
    base = pixels(studio.run(flux_request()).images[0])
    with_lora = studio.run(flux_request(prompt="a red cube <lora:flux-detail:0.8>"))
    assert not np.array_equal(base, pixels(with_lora.images[0])) and 'Lora hashes: "flux-detail: ' in with_lora.infotexts[0]
    assert np.array_equal(base, pixels(studio.run(flux_request()).images[0]))
    with pytest.raises(Exception, match="sd-detail does not fit tiny-flux"):
        studio.run(flux_request(prompt="a red cube <lora:sd-detail:1>"))


@pytest.mark.parametrize("model, label", [("tiny", "CFG scale"), ("tiny-flux", "Distilled CFG scale"),
                                          ("tiny-flux-schnell", "CFG scale (not used by this model)"),
                                          ("sd-turbo", "CFG scale (not used by this model)")])
def test_the_page_says_what_the_cfg_scale_drives_for_the_model_picked(model, label):
    from studio.web.handlers import model_form_updates

    updates = model_form_updates(model)
    assert updates["cfg_scale"]["label"] == label
    expected = sampler_names("flow" if "flux" in model else "diffusion")
    assert updates["sampler"]["choices"] == expected


def test_a_preset_with_an_unknown_guidance_word_is_refused_by_name(tmp_path):
    from studio.models import PresetFileError, parse_preset

    with pytest.raises(PresetFileError, match="guidance 'strong'"):
        parse_preset({"name": "x", "source": "a/b", "family": "flux", "guidance": "strong"}, "x.json")


def test_true_cfg_with_a_negative_prompt_is_an_explicit_option_that_doubles_the_cost(flux_studio):
    plain = pixels(flux_studio.run(flux_request()).images[0])
    # Distilled: a negative prompt alone changes nothing (no negative pass).
    assert np.array_equal(plain, pixels(flux_studio.run(flux_request(negative_prompt="fog")).images[0]))
    real = flux_studio.run(flux_request(negative_prompt="fog", true_cfg_scale=4.0))
    assert not np.array_equal(plain, pixels(real.images[0])) and "True CFG scale: 4," in real.infotexts[0]
    assert flux_request(negative_prompt="fog", true_cfg_scale=4.0).cost() == 2 * flux_request().cost()
    with pytest.raises(InvalidValue, match="true_cfg_scale: 3.0 is not valid; allowed: 1 for the sd15 family"):
        GenerationRequest.for_model("tiny", prompt="x", true_cfg_scale=3)
