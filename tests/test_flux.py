"""FLUX.1 on the tiny offline models (dev-shaped and schnell-shaped): every flow sampler, previews,
T5 weighting, img2img / inpaint / hires, the infotext and the PNG round trip, folder loading."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from conftest import pixels
from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.events import Preview, Result
from studio.families.flux import FluxPromptEncoder
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.pnginfo import recall
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


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sampler", sampler_names("flow"))
def test_every_flow_sampler_runs_and_the_same_seed_gives_the_same_image(flux_studio, model, sampler):
    request = flux_request(model, sampler=sampler)
    first, second = flux_studio.run(request), flux_studio.run(request)
    assert first.images[0].size == (64, 64)
    assert np.array_equal(pixels(first.images[0]), pixels(second.images[0])), sampler
    other = flux_studio.run(flux_request(model, sampler=sampler, seed=4))
    assert not np.array_equal(pixels(first.images[0]), pixels(other.images[0]))


def test_a_sampler_flux_cannot_run_is_refused_with_the_ones_it_can():
    with pytest.raises(InvalidValue, match="sampler") as refused:
        flux_request(sampler="Heun")
    assert "Euler" in str(refused.value) and "UniPC" in str(refused.value)
    with pytest.raises(InvalidValue, match="schedule"):
        flux_request(sampler="DPM++ 2M Karras")  # Karras sigmas give NaNs in flow DPM++


@pytest.mark.parametrize("method", ["latent2rgb", "taesd", "vae"])
def test_previews_come_every_step_unpacked_to_the_image_size_and_change(flux_studio, method):
    events = events_of(flux_studio, flux_request(steps=6, width=96, height=64, preview=method))
    previews = [e for e in events if isinstance(e, Preview)]
    steps = [p.step for p in previews]  # a slow decoder skips stale frames; the last step is the result
    assert steps == sorted(set(steps)) and steps[0] == 1 and len(steps) >= 3 and steps[-1] <= 6
    assert all(p.image.size == (96, 64) for p in previews)
    frames = [pixels(p.image) for p in previews]
    assert any(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


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


def test_img2img_inpaint_and_hires_keep_the_requested_sizes(flux_studio):
    picture = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype("uint8"))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    assert flux_studio.run(flux_request(task="img2img", init_image=picture, denoising_strength=0.6)).images[0].size \
        == (64, 64)
    inpainted = flux_studio.run(flux_request(task="inpaint", init_image=picture, mask=mask))
    assert inpainted.images[0].size == (64, 64)
    for upscaler in ("Latent", "Lanczos"):
        hires = flux_studio.run(flux_request(hires=True, hires_scale=1.5, hires_upscaler=upscaler, batch_size=2))
        assert [image.size for image in hires.images] == [(96, 96), (96, 96)]


def test_dev_records_its_distilled_guidance_and_schnell_does_not(flux_studio):
    dev = flux_studio.run(flux_request(cfg_scale=4.5)).infotexts[0]
    schnell = flux_studio.run(flux_request("tiny-flux-schnell")).infotexts[0]
    assert "CFG scale: 4.5" in dev and "Distilled CFG Scale: 4.5" in dev
    assert "Distilled CFG Scale" not in schnell


@pytest.mark.parametrize("fields", [
    dict(prompt="a (lighthouse:1.3) at dusk", sampler="Euler a", cfg_scale=5.0, batch_size=2),
    dict(prompt="hires", hires=True, hires_scale=1.5, hires_strength=0.5, sampler="UniPC"),
    dict(model="tiny-flux-schnell", prompt="schnell", sampler="LCM", steps=2),
], ids=["dev, weights, batch", "hires", "schnell"])
def test_every_flux_png_regenerates_the_same_image_from_png_info_and_from_its_text(flux_studio, tmp_path, fields):
    result = flux_studio.run(flux_request(**{"seed": -1, **fields}))
    for index, path in enumerate(OutputFolder(tmp_path).save(result)):
        for source in ("png", "text"):
            if source == "text":  # the A1111 text alone, as a site that strips our JSON leaves it
                chunks = PngImagePlugin.PngInfo()
                chunks.add_text("parameters", result.infotexts[index])
                path = tmp_path / f"text-{index}.png"
                result.images[index].save(path, pnginfo=chunks)
            recalled = recall(read_png(path))
            again = flux_studio.run(GenerationRequest.from_settings(recalled.fields))
            assert np.array_equal(pixels(again.images[recalled.batch_index]), pixels(result.images[index]))


def test_a_saved_flux_folder_loads_as_flux_and_generates(tmp_path):
    folder = tmp_path / "my-flux"
    build_tiny_flux().save_pretrained(folder)
    studio = Studio(device="cpu", cache_size=1)
    # A folder is not a preset: FLUX's own size rule (multiples of 16 from 256) applies.
    result = studio.run(GenerationRequest.for_model(str(folder), prompt="from a folder", steps=2, width=256,
                                                    height=256, seed=1))
    assert result.images[0].size == (256, 256) and "Distilled CFG Scale" in result.infotexts[0]


def test_the_token_counter_counts_t5_tokens(flux_studio):
    flux_studio.run(flux_request(steps=1))  # counts need the model loaded
    view = flux_studio.describe_prompt("a red cube", "tiny-flux", "A1111")
    count = len(build_tiny_flux().tokenizer_2("a red cube")["input_ids"])
    assert view.chunk_tokens == (count,) and view.token_limit == 512
    from studio.ui.handlers import token_counter

    assert token_counter({"chunk_tokens": [count], "token_limit": 512, "warnings": []}) == f"Tokens: {count}/512 (T5)"


def test_a_prompt_past_t5s_limit_warns_instead_of_being_cut_silently(flux_studio):
    long_prompt = "a red cube " * 200  # about 1 400 T5 tokens of the generated tokenizer
    result = flux_studio.run(flux_request(prompt=long_prompt, steps=1))
    assert any("reads 512, the rest is cut" in notice for notice in result.notices)
    view = flux_studio.describe_prompt(long_prompt, "tiny-flux", "A1111")
    assert any("reads 512" in warning for warning in view.warnings)


def test_a_flux_lora_changes_the_image_and_leaving_it_out_restores_it_exactly(tmp_path):
    from lora_files import write_tiny_flux_lora, write_tiny_lora

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
    from studio.ui.handlers import model_form_updates

    updates = model_form_updates(model)
    assert updates["cfg_scale"]["label"] == label
    expected = sampler_names("flow" if "flux" in model else "diffusion")
    assert updates["sampler"]["choices"] == expected


def test_a_preset_with_an_unknown_guidance_word_is_refused_by_name(tmp_path):
    from studio.models import PresetFileError, parse_preset

    with pytest.raises(PresetFileError, match="guidance 'strong'"):
        parse_preset({"name": "x", "source": "a/b", "family": "flux", "guidance": "strong"}, "x.json")
