"""What is SD3's own, on the tiny offline model (`tiny-sd3`): CLIP + T5 weighting, real CFG with a
negative prompt, AND parts, running without T5, the presets (the rest: test_flow_families.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support import pixels
from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.families.sd3 import SD3PromptEncoder
from studio.models import resolve_model
from studio.prompts import parse
from studio.tiny_flow import build_tiny_sd3


@pytest.fixture(scope="module")
def sd3_studio():
    return Studio(device="cpu", cache_size=2, preview_interval_s=0.0)


def sd3_request(**fields) -> GenerationRequest:
    return GenerationRequest.for_model("tiny-sd3", **{"prompt": "a red cube", "steps": 4, "seed": 3, **fields})


def image(studio, **fields) -> np.ndarray:
    return pixels(studio.run(sd3_request(**fields)).images[0])


def test_sd3_refuses_what_it_cannot_run():
    with pytest.raises(InvalidValue, match="sampler"):
        sd3_request(sampler="DDIM")
    with pytest.raises(InvalidValue, match="width"):
        sd3_request(width=72)  # multiples of 16 (patch 2 x VAE 8)


def test_weighting_and_the_negative_prompt_change_the_image_and_weight_one_does_not(sd3_studio):
    plain = image(sd3_studio)
    assert np.array_equal(plain, image(sd3_studio, prompt="a (red:1.0) cube"))
    assert not np.array_equal(plain, image(sd3_studio, prompt="a (red:1.5) cube"))
    assert not np.array_equal(plain, image(sd3_studio, negative_prompt="blue"))  # real CFG
    assert image(sd3_studio, prompt="a red cube AND a blue ball", negative_prompt="fog").shape == (64, 64, 3)


def test_an_unweighted_sd3_prompt_is_encoded_exactly_as_the_pipeline_does():
    pipe = build_tiny_sd3()
    ours = SD3PromptEncoder(pipe).encode(parse("a lighthouse at dusk", "A1111"))
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt("a lighthouse at dusk", None, None, device="cpu",
                                                  do_classifier_free_guidance=False)
    assert torch.equal(ours.embeds, embeds) and torch.equal(ours.pooled, pooled)


def test_the_sd3_encoder_works_without_t5_as_people_run_it_to_save_memory():
    pipe = build_tiny_sd3()
    pipe.text_encoder_3 = pipe.tokenizer_3 = None  # what from_pretrained(..., text_encoder_3=None) gives
    encoder = SD3PromptEncoder(pipe)
    weighted, plain = encoder.encode(parse("no t5 (here:1.3)", "A1111")), encoder.encode(parse("no t5 here", "A1111"))
    assert weighted.embeds.shape == plain.embeds.shape and not torch.equal(weighted.embeds, plain.embeds)
    assert not weighted.embeds[:, 77:].any()  # T5's place holds zeros, as diffusers gives it
    images = pipe(prompt_embeds=weighted.embeds, pooled_prompt_embeds=weighted.pooled,
                  negative_prompt_embeds=plain.embeds, negative_pooled_prompt_embeds=plain.pooled,
                  num_inference_steps=2, width=64, height=64, output_type="np").images
    assert images.shape == (1, 64, 64, 3)


def test_the_sd35_presets_are_sd3_with_their_defaults():
    medium, turbo = resolve_model("sd35-medium"), resolve_model("sd35-large-turbo")
    assert medium.family == "sd3" and medium.defaults.cfg_scale == 4.5 and medium.guidance == "cfg"
    assert turbo.guidance == "none" and turbo.defaults.steps == 4
