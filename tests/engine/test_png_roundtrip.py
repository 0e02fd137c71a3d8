"""Every PNG the studio writes comes back as the same image: its settings, read by PNG Info, make a
request that regenerates it bit for bit (input images are sent again: PNGs never store them).
Other tools' PNGs map their known fields, and their checkpoint is looked up here by name or hash."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from support import pixels, tiny_request
from support.lora_files import write_tiny_lora
from studio import GenerationRequest, Studio
from studio.infotext import parse_infotext, request_fields
from studio.metadata import png_bytes, read_png, write_atomic
from studio.outputs import OutputFolder
from studio.pnginfo import recall


def picture(seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(64, 64, 3) * 255).astype("uint8"))


def mask() -> Image.Image:
    shape = Image.new("L", (64, 64), 0)
    shape.paste(255, (10, 12, 44, 40))
    return shape


@pytest.fixture(scope="module")
def lora_studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    write_tiny_lora(folder, "detail")
    return Studio(device="cpu", cache_size=2, loras_dir=folder)


CASES = {
    "txt2img, styles, schedule, clip skip, batch": dict(
        prompt="a (lighthouse:1.3), dusk BREAK waves", negative_prompt="fog", styles=("cinematic", "anime"),
        sampler="DPM++ 2M SDE", schedule="Exponential", cfg_scale=6.25, clip_skip=2, batch_size=2),
    "hires latent, batch": dict(prompt="hires", hires=True, hires_scale=1.5, hires_steps=2, hires_strength=0.45,
                                batch_size=2),
    "hires image upscaler": dict(prompt="hires", hires=True, hires_scale=1.25, hires_upscaler="Lanczos"),
    "compel, device noise, DDIM": dict(prompt="a cat++ (dog)0.8", prompt_syntax="compel", rng="device",
                                       sampler="DDIM"),
    "img2img": dict(prompt="img2img", task="img2img", init_image=picture(1), denoising_strength=0.55,
                    resize_mode="Resize and fill", batch_size=2),
    "inpaint, latent noise, only masked": dict(
        prompt="inpaint", task="inpaint", init_image=picture(2), mask=mask(), mask_blur=3,
        masked_content="latent noise", inpaint_area="Only masked", masked_padding=6, batch_size=2),
    "inpaint not masked, fill": dict(prompt="inpaint", task="inpaint", init_image=picture(3), mask=mask(),
                                     inpaint_mode="Inpaint not masked", masked_content="fill"),
    "fast decode (TAESD), hires, batch": dict(prompt="fast", fast_decode=True, hires=True, hires_scale=1.5,
                                              batch_size=2),
    "LoRA by tag and by name": dict(prompt="a castle <lora:detail:0.7>", loras=(("detail", 0.7),)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_png_regenerates_the_same_image_through_png_info(lora_studio, tmp_path, case):
    request = tiny_request(seed=-1, steps=3, **CASES[case])
    result = lora_studio.run(request)
    inputs = {name: getattr(request, name) for name in ("init_image", "mask") if getattr(request, name) is not None}
    for path in OutputFolder(tmp_path).save(result):
        recalled = recall(read_png(path))
        again = lora_studio.run(GenerationRequest.from_settings(recalled.fields, **inputs))
        assert again.request == result.request
        saved = np.asarray(Image.open(path).convert("RGB"))
        assert np.array_equal(pixels(again.images[recalled.batch_index]), saved), case
        if inputs:
            assert any("Input images are not stored" in note for note in recalled.notes)


@pytest.mark.slow
def test_the_a1111_text_alone_regenerates_our_images_too(studio, tmp_path):
    """Without our JSON (stripped by a site, say), the infotext still carries every setting."""
    result = studio.run(tiny_request(seed=-1, sampler="DPM++ 2M", styles=("watercolor",), hires=True,
                                     hires_scale=1.5, batch_size=2))
    for index, image in enumerate(result.images):
        chunks = PngImagePlugin.PngInfo()
        chunks.add_text("parameters", result.infotexts[index])
        path = tmp_path / f"{index}.png"
        image.save(path, pnginfo=chunks)
        recalled = recall(read_png(path))
        assert recalled.batch_index == index and recalled.fields["styles"] == []  # styles are in the prompt
        again = studio.run(GenerationRequest.from_settings(recalled.fields))
        assert np.array_equal(pixels(again.images[index]), pixels(image))


def test_png_carries_infotext_and_request_and_regenerates_the_same_image(studio, tmp_path):
    result = studio.run(tiny_request(prompt="a (lighthouse:1.2), dusk", negative_prompt="fog", seed=-1,
                                     sampler="DPM++ 2M SDE"))
    data = png_bytes(result.images[0], result.infotexts[0], result.request.record())
    path = write_atomic(tmp_path / "out" / "00001.png", data)
    meta = read_png(path.read_bytes())
    assert meta.infotext == result.infotexts[0] and "regenerated exactly" in meta.message
    again = studio.run(GenerationRequest(**meta.request))  # the JSON chunk: exact
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))
    fields, _ = request_fields(parse_infotext(meta.infotext))  # the A1111 text alone: also exact here
    again = studio.run(GenerationRequest(**fields))
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))


def a1111_png(path, model: str, model_hash: str = "6ce0161689", sampler: str = "DPM++ 2M") -> str:
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", f"a cat\nNegative prompt: dog\nSteps: 5, Sampler: {sampler}, Schedule type: Karras, "
                                  f"CFG scale: 6, Seed: 9, Size: 64x64, Model hash: {model_hash}, Model: {model}, "
                                  "Version: v1.9.4")
    Image.new("RGB", (8, 8)).save(path, pnginfo=chunks)
    return str(path)


def test_an_a1111_checkpoint_is_found_in_the_models_folder_by_name_or_by_hash(tmp_path):
    from studio.models import file_hash

    models = tmp_path / "models"
    (models / "sd").mkdir(parents=True)
    checkpoint = models / "sd" / "dreamshaper_8.safetensors"
    checkpoint.write_bytes(b"not really weights, but a file with a hash")
    by_name = recall(read_png(a1111_png(tmp_path / "a.png", "dreamshaper_8")), models)
    assert by_name.fields["model"] == str(checkpoint.resolve())
    renamed = recall(read_png(a1111_png(tmp_path / "b.png", "some-other-name", file_hash(checkpoint))), models)
    assert renamed.fields["model"] == str(checkpoint.resolve())
    preset = recall(read_png(a1111_png(tmp_path / "c.png", "TINY")), models)
    assert preset.fields["model"] == "tiny"


def test_an_a1111_checkpoint_we_lack_keeps_the_forms_model_and_says_which(tmp_path):
    # (v1-5-pruned-emaonly / 6ce0161689 is the sd15 preset: tests/unit/test_imports.py)
    recalled = recall(read_png(a1111_png(tmp_path / "a.png", "someone-elses-mix", "0123abcdef")), tmp_path)
    assert "model" not in recalled.fields
    assert any("someone-elses-mix" in note and "0123abcdef" in note and "current model" in note
               for note in recalled.notes)
    # Everything else maps, and the next generation (on the form's model) works.
    assert (recalled.fields["steps"], recalled.fields["schedule"], recalled.fields["seed"]) == (5, "Karras", 9)
    assert GenerationRequest.from_settings({**recalled.fields, "model": "tiny"}).sampler == "DPM++ 2M"


def test_a_schedule_our_sampler_cannot_do_gives_way_to_automatic_with_a_note(tmp_path):
    recalled = recall(read_png(a1111_png(tmp_path / "a.png", "tiny", sampler="Euler a")))
    assert (recalled.fields["sampler"], recalled.fields["schedule"]) == ("Euler a", "Automatic")
    assert any("Karras" in note and "Automatic is used instead" in note for note in recalled.notes)


def test_a_png_without_metadata_recalls_nothing(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    recalled = recall(read_png(tmp_path / "plain.png"))
    assert recalled.fields == {} and "no generation parameters" in recalled.message
