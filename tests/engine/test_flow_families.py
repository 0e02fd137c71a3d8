"""What every flow-matching family (FLUX dev and schnell, SD3.5, Z-Image) does alike, on their tiny
offline models: each sampler it offers reproduces, previews every step at the image size, every task
and batches keep their sizes, PNGs regenerate bit for bit, a saved folder loads. What differs per
family (guidance, weighting, encoders) is in test_flux.py, test_sd3.py and test_zimage.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from support import pixels
from studio import GenerationRequest, Studio
from studio.events import Preview
from studio.families import family
from studio.metadata import read_png
from studio.models import resolve_model
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.request import family_sampler_names

MODELS = ("tiny-flux", "tiny-flux-schnell", "tiny-sd3", "tiny-zimage", "tiny-klein", "tiny-kontext", "tiny-qwen-image")


@pytest.fixture(scope="module")
def flow_studio():
    return Studio(device="cpu", cache_size=4, preview_interval_s=0.0)


def flow_request(model: str, **fields) -> GenerationRequest:
    return GenerationRequest.for_model(model, **{"prompt": "a red cube", "steps": 4, "seed": 3, **fields})


def image(studio, model, **fields) -> np.ndarray:
    return pixels(studio.run(flow_request(model, **fields)).images[0])


@pytest.mark.slow
@pytest.mark.parametrize("model, sampler", [(m, s) for m in MODELS
                                            for s in family_sampler_names(resolve_model(m).family)])
def test_every_sampler_a_family_offers_runs_and_the_same_seed_gives_the_same_image(flow_studio, model, sampler):
    first = image(flow_studio, model, sampler=sampler)
    assert first.shape == (64, 64, 3) and np.array_equal(first, image(flow_studio, model, sampler=sampler))
    assert not np.array_equal(first, image(flow_studio, model, sampler=sampler, seed=4))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", ["latent2rgb", "taesd", "vae"])
def test_previews_come_every_step_at_the_image_size_and_change(flow_studio, model, method):
    events = list(flow_studio.generate(flow_request(model, steps=6, width=96, preview=method)).events())
    previews = [e for e in events if isinstance(e, Preview)]
    steps = [p.step for p in previews]  # a slow decoder skips stale frames; the last step is the result
    assert steps == sorted(set(steps)) and len(steps) >= 2 and steps[-1] <= 6
    assert all(p.image.size == (96, 64) for p in previews)  # unpacked (FLUX) and decoded at the image size
    frames = [pixels(p.image) for p in previews]
    assert any(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_task_and_a_batch_keep_their_sizes(flow_studio, model):
    picture = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype("uint8"))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    tasks = family(resolve_model(model).family).pipelines  # the tasks the family has a pipeline for
    if "img2img" in tasks:
        assert flow_studio.run(flow_request(model, task="img2img", init_image=picture,
                                            denoising_strength=0.6)).images[0].size == (64, 64)
    if "inpaint" in tasks:
        assert flow_studio.run(flow_request(model, task="inpaint", init_image=picture, mask=mask)).images[0].size \
            == (64, 64)
    if "edit" in tasks:
        assert flow_studio.run(flow_request(model, references=[{"image": picture}], batch_size=2,
                                            size_from="width and height", width=96)).images[1].size == (96, 64)
    for upscaler in ("Latent", "Lanczos") if "img2img" in tasks else ():
        result = flow_studio.run(flow_request(model, hires=True, hires_scale=1.5, hires_upscaler=upscaler,
                                              batch_size=2))
        assert [i.size for i in result.images] == [(96, 96), (96, 96)]


ROUND_TRIPS = {
    "flux dev, weights, batch": ("tiny-flux", dict(prompt="a (lighthouse:1.3)", sampler="Euler a", cfg_scale=5.0,
                                                   batch_size=2)),
    "flux hires": ("tiny-flux", dict(prompt="hires", hires=True, hires_scale=1.5, hires_strength=0.5,
                                     sampler="UniPC")),
    "flux true cfg": ("tiny-flux", dict(prompt="real cfg", negative_prompt="fog", true_cfg_scale=3.5)),
    "schnell": ("tiny-flux-schnell", dict(prompt="schnell", sampler="LCM", steps=2)),
    "sd3, negative, batch": ("tiny-sd3", dict(prompt="a (lighthouse:1.2)", negative_prompt="fog", batch_size=2,
                                              sampler="DPM++ 2M SDE", cfg_scale=5.5)),
    "z-image cfg, batch": ("tiny-zimage", dict(batch_size=2, cfg_scale=2.5, negative_prompt="fog", sampler="Euler a")),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_every_png_regenerates_the_same_image_from_png_info_and_from_its_text(flow_studio, tmp_path, case):
    from PIL import PngImagePlugin

    model, fields = ROUND_TRIPS[case]
    result = flow_studio.run(flow_request(model, **{"seed": -1, **fields}))
    for index, saved in enumerate(OutputFolder(tmp_path).save(result)):
        text_only = tmp_path / f"text-{index}.png"  # the A1111 text alone, as a site that strips our JSON
        chunks = PngImagePlugin.PngInfo()
        chunks.add_text("parameters", result.infotexts[index])
        result.images[index].save(text_only, pnginfo=chunks)
        for path in (saved, text_only):
            recalled = recall(read_png(path))
            again = flow_studio.run(GenerationRequest.from_settings(recalled.fields))
            assert np.array_equal(pixels(again.images[recalled.batch_index]), pixels(result.images[index])), path


@pytest.mark.parametrize("name", ["flux", "sd3", "zimage"])
def test_a_saved_folder_of_each_family_loads_as_that_family_and_generates(tmp_path, name):
    folder = tmp_path / f"my-{name}"
    family(name).build_tiny().save_pretrained(folder)
    studio = Studio(device="cpu", cache_size=1)
    # A folder is not a preset: the family's own size rule (multiples of 16 from 256) applies.
    result = studio.run(GenerationRequest.for_model(str(folder), prompt="from a folder", steps=2, width=256,
                                                    height=256, seed=1))
    assert result.images[0].size == (256, 256) and studio.load(str(folder)).family == name


def test_a_flux_transformer_alone_loads_with_the_rest_of_its_base_and_offline_names_the_base(tmp_path):
    """How Civitai ships FLUX fine-tunes: the transformer in one .safetensors file, nothing else."""
    from safetensors.torch import save_file

    from studio.errors import ModelUnavailable

    base = tmp_path / "flux-base"
    pipe = family("flux").build_tiny()
    pipe.save_pretrained(base)
    file = tmp_path / "my-finetune.safetensors"
    save_file({k: v.contiguous() for k, v in pipe.transformer.state_dict().items()}, file)
    studio = Studio(device="cpu", cache_size=1, single_file_configs={"flux": str(base)})
    # The family is read from the file's header before loading: FLUX's size rule and defaults apply.
    result = studio.run(GenerationRequest.for_model(str(file), prompt="a fine-tune", steps=2, width=256, height=256,
                                                    seed=1))
    assert result.images[0].size == (256, 256) and studio.load(str(file)).family == "flux"
    assert "Model hash: " in result.infotexts[0] and "Distilled CFG Scale: 3.5" in result.infotexts[0]
    assert "Sampler: Euler," in result.infotexts[0]
    with pytest.raises(ModelUnavailable, match="FLUX.1 transformer alone: the rest of the model "
                                               r"\(black-forest-labs/FLUX.1-dev\)"):
        Studio(device="cpu", cache_size=1).load(str(file))  # no base here, and no network
