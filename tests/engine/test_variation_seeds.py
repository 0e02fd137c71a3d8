"""A1111's variation seeds on the tiny models: which families take them (text to image and the hires
fix's first pass, every family), that they reproduce, and that a PNG restores them. The noise's
formula is checked against A1111's in tests/unit/test_variation_noise.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import PngImagePlugin

from support import picture, pixels, tiny_request
from studio import GenerationRequest
from studio.engine import variation
from studio.families import family
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.pnginfo import recall

# Every family's text-to-image pipeline, each with its own latent layout (grid, flux, klein, qwen, qwen21).
MODELS = ("tiny", "tiny-xl", "tiny-flux", "tiny-sd3", "tiny-zimage", "tiny-klein", "tiny-kontext", "tiny-qwen-image",
          "tiny-qwen-image-21")


def image(studio, model: str, index: int = 0, **fields) -> np.ndarray:
    request = GenerationRequest.for_model(model, **{"prompt": "a red cube", "steps": 3, "seed": 3, **fields})
    return pixels(studio.run(request).images[index])


@pytest.mark.parametrize("model", MODELS)
def test_every_family_takes_variation_noise_in_its_own_layout(studio, model):
    plain = image(studio, model)
    size = GenerationRequest.for_model(model)
    # A seed "resized" from the size it runs at is the seed's own noise, handed to the pipeline as its
    # latents: the very same picture shows the noise is drawn and packed as the pipeline draws its own.
    same = image(studio, model, seed_resize_from_w=size.width, seed_resize_from_h=size.height)
    assert np.array_equal(same, plain)
    varied = image(studio, model, subseed=11, subseed_strength=0.4)
    assert not np.array_equal(varied, plain)
    assert np.array_equal(varied, image(studio, model, subseed=11, subseed_strength=0.4))  # reproduces
    assert not np.array_equal(varied, image(studio, model, subseed=12, subseed_strength=0.4))


def test_every_latent_layout_says_how_its_pipeline_draws_its_noise():
    from studio.families.layouts import LAYOUTS

    assert set(variation.NOISE_SHAPES) == set(LAYOUTS)


def test_a_controlnet_pass_takes_variation_noise_too(studio):
    unit = [{"image": picture(), "module": "none", "model": "builtin:controlnet/sd15"}]
    plain = pixels(studio.run(tiny_request(controlnets=unit)).images[0])
    same = pixels(studio.run(tiny_request(controlnets=unit, seed_resize_from_w=64, seed_resize_from_h=64)).images[0])
    varied = pixels(studio.run(tiny_request(controlnets=unit, subseed=3, subseed_strength=0.5)).images[0])
    assert np.array_equal(same, plain) and not np.array_equal(varied, plain)


def test_strength_1_is_the_variation_seeds_own_picture(studio):
    # Euler draws no noise in its steps, so the picture is the initial noise's alone.
    own = studio.run(tiny_request(seed=21)).images[0]
    borrowed = studio.run(tiny_request(seed=5, subseed=21, subseed_strength=1.0)).images[0]
    assert np.array_equal(pixels(borrowed), pixels(own))
    half = studio.run(tiny_request(seed=5, subseed=21, subseed_strength=0.5)).images[0]
    assert not np.array_equal(pixels(half), pixels(own))


def test_a_batch_shares_the_seed_and_image_i_is_subseed_plus_i(studio):
    batch = studio.run(tiny_request(seed=4, subseed=10, subseed_strength=0.5, batch_size=2, sampler="Euler a"))
    assert batch.seeds == (4, 4) and "Variation seed: 11," in batch.infotexts[1]
    single = studio.run(tiny_request(seed=4, subseed=11, subseed_strength=0.5, sampler="Euler a"))
    # Same noise per item (the step noise too); batched matmuls may differ in the last bit, so compare loosely.
    assert np.abs(pixels(batch.images[1]).astype(int) - pixels(single.images[0]).astype(int)).max() <= 2
    assert not np.array_equal(pixels(batch.images[0]), pixels(batch.images[1]))


def test_a_resized_seed_keeps_the_old_sizes_noise_in_the_middle():
    old = tiny_request(seed=9, width=64, height=64)
    new = tiny_request(seed=9, width=128, height=96, seed_resize_from_w=64, seed_resize_from_h=64)
    fmt = family("sd15").latent

    def noise(request):
        generators = [torch.Generator().manual_seed(s) for s in request.seeds()]
        return variation.batch_noise(request, fmt, 8, (request.width, request.height), request.seeds(), generators)

    plain = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(9))
    assert torch.equal(noise(new)[0][:, 2:10, 4:12], plain)  # 8x8 cells centred in 12x16
    assert torch.equal(noise(old)[0], plain)


def test_the_hires_fixs_first_pass_takes_variation_noise(studio):
    fields = dict(hires=True, hires_scale=1.5, hires_strength=0.5, hires_upscaler="Latent", steps=2)
    plain = studio.run(tiny_request(**fields)).images[0]
    varied = studio.run(tiny_request(subseed=30, subseed_strength=0.6, **fields)).images[0]
    assert varied.size == plain.size == (96, 96) and not np.array_equal(pixels(varied), pixels(plain))
    assert np.array_equal(pixels(varied), pixels(studio.run(tiny_request(subseed=30, subseed_strength=0.6,
                                                                         **fields)).images[0]))


def test_png_info_restores_the_variation_and_regenerates_each_image(studio, tmp_path):
    result = studio.run(tiny_request(seed=-1, subseed=-1, subseed_strength=0.3, batch_size=2, width=96,
                                     seed_resize_from_w=64, seed_resize_from_h=64, sampler="Euler a"))
    assert result.request.subseed != -1  # drawn before the run, written in the infotext
    for index, saved in enumerate(OutputFolder(tmp_path).save(result)):
        text_only = tmp_path / f"text-{index}.png"  # A1111's text alone
        chunks = PngImagePlugin.PngInfo()
        chunks.add_text("parameters", result.infotexts[index])
        result.images[index].save(text_only, pnginfo=chunks)
        for path in (saved, text_only):
            recalled = recall(read_png(path))
            assert recalled.fields["subseed_strength"] == 0.3 and recalled.fields["seed_resize_from_w"] == 64
            again = studio.run(GenerationRequest.from_settings(recalled.fields))
            assert np.array_equal(pixels(again.images[recalled.batch_index]), pixels(result.images[index])), path


def test_an_inpainting_models_text_to_image_refuses_variation_noise(studio, tmp_path):
    """It paints a grey picture with the inpaint pipeline, which takes no initial noise as it is."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    from studio.errors import InvalidValue
    from studio.tiny import TINY_BUILDERS

    base = TINY_BUILDERS["sd15"]()
    unet = UNet2DConditionModel.from_config({**base.unet.config, "in_channels": 9})
    StableDiffusionInpaintPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet,
                                   scheduler=base.scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False).save_pretrained(tmp_path)
    with pytest.raises(InvalidValue) as caught:
        studio.run(tiny_request(model=str(tmp_path), subseed_strength=0.3))
    assert caught.value.field == "subseed_strength" and "inpainting model" in caught.value.allowed
