"""A1111 infotext and PNG metadata: writing, reading, round trips, hostile files, atomic writes."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from support import tiny_request
from studio import GenerationRequest
from studio.infotext import format_infotext, join, parse_infotext, request_fields
from studio.metadata import MetadataError, read_png, write_atomic


A1111_SAMPLE = (
    "masterpiece, (best quality:1.2), 1girl, looking at viewer\n"
    "Negative prompt: lowres, bad anatomy, (worst quality:1.4)\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1234567890, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, "
    'Clip skip: 2, Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.9.4'
)


def test_a1111_sample_is_read_into_request_fields():
    info = parse_infotext(A1111_SAMPLE)
    assert info.prompt == "masterpiece, (best quality:1.2), 1girl, looking at viewer"
    assert info.negative_prompt == "lowres, bad anatomy, (worst quality:1.4)"
    assert info.params["Lora hashes"] == "add_detail: 7c6bad76eb54"  # quoted value with a colon
    fields, notes = request_fields(info)
    assert fields["steps"] == 28 and fields["sampler"] == "DPM++ 2M" and fields["schedule"] == "Karras"
    assert fields["cfg_scale"] == 7.5 and fields["seed"] == 1234567890 and fields["clip_skip"] == 2
    assert (fields["width"], fields["height"]) == (512, 768) and notes == []
    # A1111 writes "Denoising strength" without "Hires upscale" for image to image only.
    assert fields["task"] == "img2img" and fields["denoising_strength"] == 0.5 and fields["hires"] is False
    assert fields["model"] == "v1-5-pruned-emaonly" and fields["styles"] == () and fields["rng"] == "device"


def test_old_combined_sampler_names_from_shared_prompts_still_make_a_request():
    info = parse_infotext("a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 5, Size: 64x64")
    fields, _ = request_fields(info)
    request = GenerationRequest(**{**fields, "model": "tiny"})
    assert (request.sampler, request.schedule) == ("DPM++ 2M", "Karras")


@pytest.mark.parametrize(
    "prompt, negative, model",
    [
        ("a cat", "", "tiny"),
        ("line one\nline two, with: colon", "multi\nline negative", "my, model: v2"),
        ('quotes "inside" and \\ backslash', "neg", 'm"odel'),
        ("Steps: 5, looks like params, Seed: 1, Size: 1x1", "", "tiny"),
        ("", "", "tiny"),
        ("猫 🐱 кошка", "ünïcode", "tiny"),
    ],
)
def test_join_then_parse_round_trips(prompt, negative, model):
    text = join(prompt, negative, [("Steps", 12), ("Sampler", "Euler a"), ("CFG scale", "6.5"), ("Seed", 42),
                                   ("Size", "64x96"), ("Model", model), ("Prompt syntax", "A1111")])
    info = parse_infotext(text)
    assert info.prompt == prompt and info.negative_prompt == negative
    assert info.params["Model"] == model and info.params["Seed"] == "42" and info.params["CFG scale"] == "6.5"


def test_a_requests_infotext_reads_back_into_the_same_request():
    from PIL import Image

    picture = Image.new("RGB", (64, 64))
    requests = [
        tiny_request(prompt="line one\nline two, with: colon", negative_prompt="neg", seed=42, cfg_scale=6.5,
                     sampler="DPM++ 2M Karras", clip_skip=2, batch_size=3),
        tiny_request(task="img2img", init_image=picture, denoising_strength=0.3, resize_mode="Crop and resize"),
        tiny_request(task="inpaint", init_image=picture, mask=picture.convert("L"), mask_blur=0,
                     masked_content="fill", inpaint_area="Only masked", masked_padding=8,
                     inpaint_mode="Inpaint not masked"),
        tiny_request(hires=True, hires_scale=1.5, hires_steps=3, hires_strength=0.4, hires_upscaler="Lanczos",
                     rng="device", prompt_syntax="compel"),
    ]
    for request in requests:
        request = request.with_seed()
        for index in range(request.batch_size):
            fields, notes = request_fields(parse_infotext(format_infotext(request, index)))
            assert notes == []
            again = GenerationRequest(**{**fields, **{k: getattr(request, k) for k in ("init_image", "mask")}})
            assert again == request, (again, request)


def test_png_without_metadata_says_so():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    meta = read_png(buffer.getvalue())
    assert meta.infotext is None and meta.request is None and "no generation parameters" in meta.message


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_non_images_and_truncated_files_are_a_clear_error(data):
    with pytest.raises(MetadataError, match="not a readable image"):
        read_png(data)


def test_truncated_png_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    with pytest.raises(MetadataError):
        read_png(buffer.getvalue()[:-40])


def test_hostile_request_chunk_is_ignored_not_trusted():
    from PIL import PngImagePlugin

    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("studio-request", "[1, 2, 3]")  # JSON, but not an object
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=chunks)
    assert read_png(buffer.getvalue()).request is None


def test_a_crash_while_writing_leaves_no_half_written_png(tmp_path, monkeypatch):
    target = tmp_path / "img.png"

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, b"\x89PNG data")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_png_info_on_a_non_image_says_so_without_python_object_names():
    with pytest.raises(MetadataError) as refused:
        read_png(b"hello, not a picture")
    assert "not an image file" in str(refused.value) and "BytesIO" not in str(refused.value)
