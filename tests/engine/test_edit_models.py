"""Editing by instruction, on the tiny offline FLUX.2 Klein (`tiny-klein`: a Qwen3 encoder, FLUX.2's
batch-normalised 32-channel VAE, distilled): text to image and edits with reference pictures, the
output size from the first reference, the same pictures and seed making the same image, references
named in the infotext and counted in the cost, and every model or task that cannot edit refused by
name before anything runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from support import pixels
from studio import GenerationRequest, Studio
from studio.errors import InvalidValue
from studio.families.klein import klein_encode
from studio.families.layouts import LAYOUTS
from studio.families.llm import LLMPromptEncoder
from studio.infotext import parse_infotext
from studio.prompts import parse
from studio.references import digest
from studio.tiny_klein import build_tiny_klein

RED = Image.new("RGB", (96, 64), (200, 30, 30))
BLUE = Image.new("RGB", (64, 64), (30, 30, 200))


@pytest.fixture(scope="module")
def studio():
    return Studio(device="cpu", cache_size=2, preview_interval_s=0.0)


def klein(**fields) -> GenerationRequest:
    return GenerationRequest(**{"model": "tiny-klein", "prompt": "make it night", "seed": 3, **fields})


def test_text_to_image_runs_with_previews_every_step_and_the_same_seed_gives_the_same_image(studio):
    events = list(studio.generate(klein(prompt="a red cube", preview="latent2rgb", width=96, height=64)).events())
    previews = [e for e in events if type(e).__name__ == "Preview"]
    result = events[-1]
    steps = [p.step for p in previews]  # a busy decoder skips stale frames; the last step is the result
    assert result.images[0].size == (96, 64) and steps == sorted(set(steps)) and len(steps) >= 2
    assert all(p.image.size == (96, 64) for p in previews)
    again = studio.run(klein(prompt="a red cube", preview="vae", width=96, height=64))
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))


def test_an_edit_reads_its_references_takes_its_size_from_the_first_and_names_them(studio):
    request = klein(references=[{"image": RED}, {"image": BLUE}], preview="latent2rgb")
    assert request.task == "edit" and (request.width, request.height) == (64, 64)  # 96x64 at 64x64's area: 64 wide min
    result = studio.run(request)
    text = result.infotexts[0]
    assert f'References: "{digest(RED)} 96x64, {digest(BLUE)} 64x64"' in text and "Denoising strength" not in text
    again = studio.run(klein(references=[{"image": RED}, {"image": BLUE}]))
    assert np.array_equal(pixels(result.images[0]), pixels(again.images[0]))
    other = studio.run(klein(references=[{"image": BLUE}, {"image": RED}]))
    assert not np.array_equal(pixels(result.images[0]), pixels(other.images[0]))  # the pictures are read
    assert parse_infotext(text).params["References"].startswith(digest(RED))
    by_hand = klein(references=[{"image": RED}], size_from="width and height", width=128, height=96)
    assert (by_hand.width, by_hand.height) == (128, 96) and studio.run(by_hand).images[0].size == (128, 96)


def test_references_count_in_the_cost():
    plain = klein(prompt="a cube")
    edit = klein(references=[{"image": BLUE}, {"image": BLUE}])
    assert edit.cost() == pytest.approx(plain.cost() * 3)  # each 64x64 reference: as many tokens as the output


@pytest.mark.parametrize("fields, field, says", [
    (dict(model="tiny", references=[{"image": RED}]), "task", "does not edit by instruction; models that do: FLUX.1 Kontext, FLUX.2 Klein"),
    (dict(task="img2img", init_image=RED), "task", "txt2img or inpaint or edit for model tiny-klein"),
    (dict(task="edit"), "references", "task edit needs references"),
    (dict(references=[{"image": BLUE}] * 5), "references", "at most 4"),
    (dict(references=[{"image": None}]), "references[0].image", "never stored"),
    (dict(references=[{"image": BLUE}, {"image": Image.new("RGB", (8, 65000))}]), "references[1].image",
     "at least 64 px on each side, at most 8:1"),
    (dict(references=[{"image": Image.new("RGB", (600, 70))}]), "references[0].image", "at most 8:1"),
    (dict(hires=True, prompt="a cube"), "hires", "no image-to-image pass"),
])
def test_what_cannot_edit_is_refused_by_name_before_anything_runs(fields, field, says):
    with pytest.raises(InvalidValue) as refused:
        klein(**fields)
    assert refused.value.field == field and says in str(refused.value)


def test_prompts_are_encoded_as_the_pipeline_does_and_weights_are_ignored_with_a_word(studio):
    pipe = build_tiny_klein()
    ours = LLMPromptEncoder(pipe, encode=klein_encode).encode(parse("a lighthouse at dusk", "A1111"))
    with torch.no_grad():
        theirs = pipe.encode_prompt(["a lighthouse at dusk"], device="cpu")[0]
    assert torch.equal(ours.embeds, theirs)
    weighted = studio.run(klein(prompt="a (red:1.5) cube"))
    assert np.array_equal(pixels(weighted.images[0]), pixels(studio.run(klein(prompt="a red cube")).images[0]))
    assert any("weights are ignored by tiny-klein" in notice for notice in weighted.notices)


def test_the_klein_layout_reads_tokens_and_the_pipelines_raw_latents_alike():
    """The step's tokens (normalised, 2x2-patchified) and the pipeline's own latent output (raw) give
    one grid, and the grid goes back to exactly the raw latents the pipeline decodes."""
    pipe, seen = build_tiny_klein(), {}

    def keep(pipe_, index, timestep, tensors):
        seen["tokens"] = tensors["latents"]
        return tensors

    raw = pipe(prompt="a cube", width=96, height=64, num_inference_steps=2, output_type="latent",
               generator=torch.Generator().manual_seed(0), callback_on_step_end=keep).images
    layout = LAYOUTS["klein"]
    grid = layout.grid(seen["tokens"], pipe, (96, 64))
    assert grid.shape == (1, 32, 8, 12)
    assert torch.allclose(layout.grid(raw, pipe, (96, 64)), grid, atol=1e-5)
    assert torch.allclose(layout.raw(grid, pipe), raw, atol=1e-5)


def test_kontext_edits_one_picture_and_keeps_the_size_asked_for(studio):
    """FLUX.1 Kontext scales any size to its `max_area` (1 MP) unless told the area: the request's size
    stands, for an edit and for text to image."""
    edit = studio.run(GenerationRequest(model="tiny-kontext", prompt="make it night", seed=3, steps=2,
                                        references=[{"image": RED}], size_from="width and height", width=96, height=64))
    assert edit.request.task == "edit" and edit.images[0].size == (96, 64)
    assert f"References: {digest(RED)} 96x64" in edit.infotexts[0]
    plain = studio.run(GenerationRequest(model="tiny-kontext", prompt="a cube", seed=3, steps=2, width=64, height=96))
    assert plain.images[0].size == (64, 96)
    with pytest.raises(InvalidValue, match="at most 1 for tiny-kontext"):
        GenerationRequest(model="tiny-kontext", prompt="x", references=[{"image": RED}, {"image": BLUE}])


@pytest.fixture()
def small_edit_pictures(monkeypatch):
    """Qwen-Image-Edit sizes every reference to a megapixel for its VAE and 384 x 384 for its encoder:
    smaller here, so the tiny model's edits take a moment (the pipeline reads both at call time)."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit

    monkeypatch.setattr(edit, "VAE_IMAGE_SIZE", 64 * 64)
    monkeypatch.setattr(edit, "CONDITION_IMAGE_SIZE", 56 * 56)


def test_qwen_image_runs_real_cfg_and_qwen_edit_encodes_its_pictures_with_the_instruction(studio, small_edit_pictures):
    plain = dict(model="tiny-qwen-image", prompt="a red cube", seed=3, steps=3, width=96, height=64)
    first = studio.run(GenerationRequest(**plain))
    assert first.images[0].size == (96, 64)
    assert np.array_equal(pixels(first.images[0]), pixels(studio.run(GenerationRequest(**plain)).images[0]))
    guided = studio.run(GenerationRequest(**{**plain, "cfg_scale": 1.0}))  # no second pass: another image
    assert not np.array_equal(pixels(first.images[0]), pixels(guided.images[0]))
    edit = dict(model="tiny-qwen-edit", prompt="make it night", seed=3, steps=3)
    red = studio.run(GenerationRequest(**edit, references=[{"image": RED}]))
    blue = studio.run(GenerationRequest(**edit, references=[{"image": BLUE}]))
    assert red.request.task == "edit" and not np.array_equal(pixels(red.images[0]), pixels(blue.images[0]))
    again = studio.run(GenerationRequest(**edit, references=[{"image": RED}]))
    assert np.array_equal(pixels(red.images[0]), pixels(again.images[0]))


def test_qwen_edit_encodes_as_its_pipeline_does():
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit

    from studio.families.qwen import qwen_edit_encode
    from studio.tiny_qwen import build_tiny_qwen_edit

    pipe = build_tiny_qwen_edit()
    ours = LLMPromptEncoder(pipe, encode=qwen_edit_encode).encode(parse("make it night", "A1111"), (RED,))
    width, height = edit.calculate_dimensions(edit.CONDITION_IMAGE_SIZE, RED.width / RED.height)
    with torch.no_grad():
        theirs, _ = pipe.encode_prompt(prompt=["make it night"], image=[pipe.image_processor.resize(RED, height, width)],
                                       device="cpu", max_sequence_length=512)
    assert torch.equal(ours.embeds, theirs)


@pytest.mark.parametrize("fields, says", [
    (dict(model="tiny-qwen-edit", prompt="x"), "at least one picture: tiny-qwen-edit edits pictures"),
    (dict(model="tiny-qwen-edit", prompt="x", references=[{"image": RED}] * 4), "at most 3 for tiny-qwen-edit"),
    (dict(model="tiny-qwen-image", prompt="x", references=[{"image": RED}]), "does not edit by instruction"),
])
def test_the_qwen_models_say_what_they_take(fields, says):
    with pytest.raises(InvalidValue, match=says):
        GenerationRequest(**fields)


@pytest.mark.parametrize("model, family", [("tiny-klein", "klein"), ("tiny-qwen-image", "qwen_image"),
                                           ("tiny-kontext", "kontext")])
def test_a_lora_of_the_family_changes_the_image_and_is_named_in_the_infotext(tmp_path, model, family):
    from support.lora_files import write_tiny_flux_lora

    write_tiny_flux_lora(tmp_path, "detail", seed=1, family=family)
    lora_studio = Studio(device="cpu", cache_size=1, loras_dir=tmp_path, preview_interval_s=0.0)
    base = dict(model=model, prompt="a red cube", seed=3, steps=3)
    plain = lora_studio.run(GenerationRequest(**base))
    styled = lora_studio.run(GenerationRequest(**{**base, "prompt": "a red cube <lora:detail:1>"}))
    assert not np.array_equal(pixels(plain.images[0]), pixels(styled.images[0]))
    assert "Lora hashes: \"detail: " in styled.infotexts[0] or "Lora hashes: detail: " in styled.infotexts[0]
    off = lora_studio.run(GenerationRequest(**base))  # the adapter disabled again: the base model's image
    assert np.array_equal(pixels(plain.images[0]), pixels(off.images[0]))


@pytest.mark.parametrize("model", ["tiny-klein", "tiny-qwen-image"])
def test_an_int8_transformer_loads_and_reproduces(model):
    pytest.importorskip("torchao", reason="optional extra: pip install -r requirements-quant.txt")
    int8 = Studio(device="cpu", cache_size=1, quantize="int8", preview_interval_s=0.0)
    request = GenerationRequest(model=model, prompt="a red cube", seed=3, steps=2)
    first = int8.run(request)
    weights = [m.weight for m in int8.load(model).pipe.transformer.modules() if type(m).__name__ == "Linear"]
    assert weights and any(type(w).__name__ == "Int8Tensor" for w in weights)
    assert np.array_equal(pixels(first.images[0]), pixels(int8.run(request).images[0]))
