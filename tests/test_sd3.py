"""SD3 / 3.5 on the tiny offline model (`tiny-sd3`): flow samplers, previews, CLIP + T5 weighting, real
CFG with a negative prompt, every task, batches, the PNG round trip, running without T5, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import pixels
from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.events import Preview
from studio.families.sd3 import SD3PromptEncoder
from studio.metadata import read_png
from studio.models import resolve_model
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.prompts import parse
from studio.samplers import sampler_names
from studio.tiny_flow import build_tiny_sd3


@pytest.fixture(scope="module")
def sd3_studio():
    return Studio(device="cpu", cache_size=2, preview_interval_s=0.0)


def sd3_request(**fields) -> GenerationRequest:
    return GenerationRequest.for_model("tiny-sd3", **{"prompt": "a red cube", "steps": 4, "seed": 3, **fields})


def image(studio, **fields) -> np.ndarray:
    return pixels(studio.run(sd3_request(**fields)).images[0])


@pytest.mark.parametrize("sampler", sampler_names("flow"))
def test_every_flow_sampler_runs_on_sd3_and_the_same_seed_gives_the_same_image(sd3_studio, sampler):
    assert np.array_equal(image(sd3_studio, sampler=sampler), image(sd3_studio, sampler=sampler))
    assert not np.array_equal(image(sd3_studio, sampler=sampler), image(sd3_studio, sampler=sampler, seed=4))


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


@pytest.mark.parametrize("method", ["latent2rgb", "taesd", "vae"])
def test_sd3_previews_come_at_the_image_size_and_change(sd3_studio, method):
    events = list(sd3_studio.generate(sd3_request(steps=6, width=96, preview=method)).events())
    previews = [e for e in events if isinstance(e, Preview)]
    assert len(previews) >= 2 and all(p.image.size == (96, 64) for p in previews)
    frames = [pixels(p.image) for p in previews]
    assert any(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


def test_every_task_and_a_batch_keep_their_sizes(sd3_studio):
    picture = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype("uint8"))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    assert sd3_studio.run(sd3_request(task="img2img", init_image=picture)).images[0].size == (64, 64)
    assert sd3_studio.run(sd3_request(task="inpaint", init_image=picture, mask=mask)).images[0].size == (64, 64)
    for upscaler in ("Latent", "Lanczos"):
        result = sd3_studio.run(sd3_request(hires=True, hires_scale=1.5, hires_upscaler=upscaler, batch_size=2))
        assert [i.size for i in result.images] == [(96, 96), (96, 96)]


def test_every_sd3_png_regenerates_the_same_image(sd3_studio, tmp_path):
    result = sd3_studio.run(sd3_request(seed=-1, prompt="a (lighthouse:1.2)", negative_prompt="fog", batch_size=2,
                                        sampler="DPM++ 2M SDE", cfg_scale=5.5))
    for path in OutputFolder(tmp_path).save(result):
        recalled = recall(read_png(path))
        again = sd3_studio.run(GenerationRequest.from_settings(recalled.fields))
        assert np.array_equal(pixels(again.images[recalled.batch_index]), np.asarray(Image.open(path).convert("RGB")))


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
