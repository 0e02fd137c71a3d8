"""Qwen-Image 2.1 on its tiny offline model (`tiny-qwen-image-21`: a Qwen3-VL encoder, the RGBA 64-channel
16x VAE, one block-causal transformer): text to image and edits with one or two references in one
pipeline, the same seed making the same image, prompts reaching the pipeline as its own encoding,
references named in the infotext, previews every step, and what it cannot do refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from support import pixels
from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.events import Preview
from studio.families import LATENT_FORMATS, family, family_of_checkpoint
from studio.families.layouts import LAYOUTS
from studio.families.llm import LLMPromptEncoder
from studio.families.qwen21 import qwen21_encode, sized_pictures
from studio.metadata import read_png
from studio.outputs import OutputFolder
from studio.pnginfo import recall
from studio.prompts import parse
from studio.references import digest
from studio.request import family_sampler_names
from studio.tiny_qwen21 import build_tiny_qwen21

MODEL = "tiny-qwen-image-21"
RED = Image.new("RGB", (96, 64), (200, 30, 30))
BLUE = Image.new("RGB", (64, 64), (30, 30, 200))


@pytest.fixture(scope="module")
def studio():
    return Studio(device="cpu", cache_size=1, preview_interval_s=0.0)


@pytest.fixture(scope="module")
def pipe():
    made = build_tiny_qwen21()
    made.set_progress_bar_config(disable=True)
    return made


def qwen21(**fields) -> GenerationRequest:
    return GenerationRequest(**{"model": MODEL, "prompt": "a red cube", "seed": 3, "steps": 3, **fields})


def test_text_to_image_reproduces_and_another_seed_differs(studio):
    first = studio.run(qwen21(width=96, height=64))
    assert first.images[0].size == (96, 64) and first.images[0].mode == "RGBA"  # its VAE decodes an alpha too
    assert first.request.task == "txt2img" and "References" not in first.infotexts[0]
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(studio.run(qwen21(width=96, height=64)).images[0]))
    assert not np.array_equal(pixels(first.images[0]), pixels(studio.run(qwen21(width=96, height=64, seed=4)).images[0]))
    guided = studio.run(qwen21(width=96, height=64, cfg_scale=4.0, negative_prompt="fog"))  # real CFG: a second pass
    assert not np.array_equal(pixels(first.images[0]), pixels(guided.images[0]))
    assert "CFG scale: 4" in guided.infotexts[0]


@pytest.mark.parametrize("sampler", family_sampler_names("qwen_image21"))
def test_every_sampler_it_offers_reproduces(studio, sampler):
    first = pixels(studio.run(qwen21(sampler=sampler)).images[0])
    assert np.array_equal(first, pixels(studio.run(qwen21(sampler=sampler)).images[0]))
    assert not np.array_equal(first, pixels(studio.run(qwen21(sampler=sampler, seed=4)).images[0]))


def test_a_batch_keeps_its_size_and_each_png_regenerates_its_image(studio, tmp_path):
    result = studio.run(qwen21(prompt="a lighthouse", negative_prompt="fog", cfg_scale=3.5, batch_size=2, seed=-1,
                               width=96, height=64, sampler="Euler a"))
    assert [image.size for image in result.images] == [(96, 64), (96, 64)]
    for index, saved in enumerate(OutputFolder(tmp_path).save(result)):
        recalled = recall(read_png(saved))
        again = studio.run(GenerationRequest.from_settings(recalled.fields))
        assert np.array_equal(np.asarray(again.images[recalled.batch_index]), np.asarray(result.images[index]))


def test_the_studio_image_is_the_pipelines_own_for_the_plain_words(studio):
    """The pipeline encodes the prompt itself (with the pictures, on an edit): the studio's image is its
    image bit for bit, with the prompt's weights taken out and a word saying so."""
    weighted = studio.run(qwen21(prompt="a (red:1.3) cube", negative_prompt="[fog]", cfg_scale=3.0, width=96, height=64))
    assert any("weights are ignored by tiny-qwen-image-21" in notice for notice in weighted.notices)
    loaded = studio.load(MODEL).pipe  # the weights and the scheduler the studio ran
    own = loaded(prompt="a red cube", negative_prompt="fog", true_cfg_scale=3.0, width=96, height=64,
                 num_inference_steps=3, generator=[torch.Generator().manual_seed(3)]).images[0]
    assert np.array_equal(np.asarray(weighted.images[0]), np.asarray(own))


def test_the_prompt_encoder_is_the_pipelines_encode_prompt_bit_for_bit(pipe):
    """Alone and with pictures (one vision block each in the template), sized as the pipeline sizes them."""
    encoder = LLMPromptEncoder(pipe, encode=qwen21_encode)
    ours = encoder.encode(parse("a (lighthouse:1.2) at dusk", "A1111"))
    with torch.no_grad():
        theirs, mask, slots = pipe.encode_prompt(prompt=["a lighthouse at dusk"], device="cpu")
    assert torch.equal(ours.embeds, theirs) and ours.mask is None and mask is None and not slots.any()
    edit = encoder.encode(parse("put the cube on the box", "A1111"), (RED, BLUE))
    pictures = sized_pictures(pipe, (RED, BLUE))
    assert [p.size for p in pictures] == [(1248, 832), (1024, 1024)] and pictures[0].mode == "RGBA"
    with torch.no_grad():
        theirs, _, slots = pipe.encode_prompt(prompt=["put the cube on the box"], image=pictures, device="cpu")
    assert torch.equal(edit.embeds, theirs)
    assert int(slots.sum()) == (1248 * 832 + 1024 * 1024) // 32 ** 2  # a vision slot per 32 x 32 pixels
    assert family("qwen_image21").count_tokens(pipe, parse("a lighthouse", "A1111")) == [
        len(pipe.processor.tokenizer(pipe.prompt_template_t2i.format("a lighthouse"))["input_ids"])]


def test_an_edit_reads_one_or_two_references_and_names_them(studio):
    one = studio.run(qwen21(prompt="make it night", references=[{"image": RED}]))
    assert one.request.task == "edit" and one.images[0].size == (64, 64)  # 96x64 at 64x64's area, in 32s
    assert f"References: {digest(RED)} 96x64" in one.infotexts[0]
    two = studio.run(qwen21(prompt="make it night", references=[{"image": RED}, {"image": BLUE}]))
    assert f'References: "{digest(RED)} 96x64, {digest(BLUE)} 64x64"' in two.infotexts[0]
    again = studio.run(qwen21(prompt="make it night", references=[{"image": RED}, {"image": BLUE}]))
    assert np.array_equal(np.asarray(two.images[0]), np.asarray(again.images[0]))
    swapped = studio.run(qwen21(prompt="make it night", references=[{"image": BLUE}, {"image": RED}]))
    assert not np.array_equal(pixels(two.images[0]), pixels(swapped.images[0]))  # read in order, by both models
    assert not np.array_equal(pixels(one.images[0]), pixels(two.images[0]))
    batch = studio.run(qwen21(prompt="make it night", references=[{"image": RED}], size_from="width and height",
                              width=96, height=64, batch_size=2))
    assert [image.size for image in batch.images] == [(96, 64), (96, 64)]
    assert not np.array_equal(pixels(batch.images[0]), pixels(batch.images[1]))  # seeds 3 and 4


@pytest.mark.parametrize("fields, field, says", [
    (dict(references=[{"image": BLUE}] * 5), "references", "at most 4"),  # the studio's cap and the family's
    (dict(task="img2img", init_image=RED), "task", "txt2img or edit for model tiny-qwen-image-21"),
    (dict(task="inpaint", init_image=BLUE, mask=Image.new("L", (64, 64), 255)), "task", "txt2img or edit"),
    (dict(hires=True), "hires", "no image-to-image pass"),
    (dict(width=80), "width", "a multiple of 32 from 64 to 512"),
    (dict(sampler="DPM++ 2M"), "sampler", "Euler, Euler a, LCM"),
    (dict(true_cfg_scale=3.0), "true_cfg_scale", "its CFG scale is real CFG already"),
])
def test_what_it_cannot_do_is_refused_by_name_before_anything_runs(fields, field, says):
    with pytest.raises(InvalidValue) as refused:
        qwen21(**fields)
    assert refused.value.field == field and says in str(refused.value)


def test_it_does_not_need_pictures_and_references_count_in_the_cost():
    plain = qwen21()
    assert plain.task == "txt2img"
    edit = qwen21(references=[{"image": BLUE}, {"image": BLUE}])
    assert edit.cost() == pytest.approx(plain.cost() * 3)  # each 64x64 reference: as many pixels as the output


@pytest.mark.parametrize("method", ["latent2rgb", "taesd", "vae"])
def test_previews_come_every_step_at_the_image_size_and_change(studio, method):
    # 20 steps: a tiny step takes a few ms and a VAE decode as long as several (more on a busy machine)
    events = list(studio.generate(qwen21(steps=20, width=96, height=64, preview=method)).events())
    previews = [e for e in events if isinstance(e, Preview)]
    steps = [p.step for p in previews]  # a busy decoder skips stale frames; the last step is the result
    assert steps == sorted(set(steps)) and len(steps) >= 2 and steps[-1] <= 20
    assert all(p.image.size == (96, 64) and p.image.mode == "RGB" for p in previews)
    frames = [pixels(p.image) for p in previews]
    assert any(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


def test_an_edit_previews_the_generated_image_not_its_references(studio):
    events = list(studio.generate(qwen21(prompt="make it night", steps=4, references=[{"image": RED}],
                                         size_from="width and height", width=96, height=64,
                                         preview="latent2rgb")).events())
    previews = [e for e in events if isinstance(e, Preview)]
    assert len(previews) >= 2 and all(p.image.size == (96, 64) for p in previews)


def test_the_qwen21_layout_reads_the_steps_tokens_and_decodes_as_the_pipeline_does(pipe):
    """A step's tokens -> the normalised (batch, 64, h/16, w/16) grid -> exactly the latents the pipeline
    decodes; the decode lays the RGBA output over white for a preview."""
    seen = {}

    def keep(pipe_, index, timestep, tensors):
        seen["tokens"] = tensors["latents"]
        return tensors

    tokens = pipe(prompt="a cube", width=96, height=64, num_inference_steps=2, output_type="latent",
                  generator=torch.Generator().manual_seed(0), callback_on_step_end=keep).images
    latent = LATENT_FORMATS["qwen21"]
    grid = latent.grid(tokens, pipe, (96, 64))
    assert grid.shape == (1, 64, 4, 6) and torch.equal(grid, latent.grid(seen["tokens"], pipe, (96, 64)))
    unpacked = type(pipe)._unpack_latents(tokens, 64, 96, 16)
    config = pipe.vae.config
    raw = unpacked * torch.tensor(config.latents_std).view(1, -1, 1, 1, 1) + torch.tensor(config.latents_mean).view(
        1, -1, 1, 1, 1)
    assert torch.allclose(LAYOUTS["qwen21"].raw(grid, pipe), raw)
    with torch.no_grad():
        rgba = pipe.vae.decode(raw, return_dict=False)[0][:, :, 0]
        shown = latent.decode(grid, pipe)
    alpha = ((rgba[:, 3:] + 1) / 2).clamp(0, 1)
    assert shown.shape == (1, 3, 64, 96) and torch.allclose(shown, rgba[:, :3] * alpha + 1 - alpha, atol=1e-5)


def test_a_qwen21_transformer_file_is_told_apart_from_qwen_image(pipe):
    from studio.tiny_qwen import build_tiny_qwen_image

    assert family_of_checkpoint(pipe.transformer.state_dict()).name == "qwen_image21"
    assert family_of_checkpoint(f"model.diffusion_model.{k}" for k in pipe.transformer.state_dict()).name \
        == "qwen_image21"  # ComfyUI's layout
    assert family_of_checkpoint(build_tiny_qwen_image().transformer.state_dict()).name == "qwen_image"
