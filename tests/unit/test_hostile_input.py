"""What a hostile visitor could send in one small request, without a model: every text input is
capped and read in linear time; pictures are checked before they are decoded; editor blobs are
bounded; LoRA names are exact; wrong types are refused by name, never coerced; a request knows its
cost. Through a running app: tests/app/test_hostile_api.py."""

from __future__ import annotations

import io
import struct
import time
import zlib
from types import SimpleNamespace

import pytest
from PIL import Image

from support import tiny_request
from studio import GenerationRequest, loras, prompts
from studio.errors import InvalidValue, UnknownName
from studio.validation import MAX_PROMPT_CHARS


def best_time(fn, text: str, repeats: int = 5) -> float:
    """The least of a few runs: noise (other processes) only ever adds time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return min(times)


ADVERSARIAL = {
    "spaces": lambda n: "a" + " " * n + "b",
    "newlines": lambda n: "a" + "\n" * n + "b",
    "unclosed round brackets": lambda n: "(a" * (n // 2),
    "unclosed square brackets": lambda n: "[a" * (n // 2),
    "colons in a bracket": lambda n: "(" + "a:" * (n // 2),
    "prompt editing": lambda n: "[" + "a:" * (n // 2),
    "backslashes": lambda n: "\\" * n,
    "lora openers": lambda n: "<lora:" * (n // 6),
    "lora openers and colons": lambda n: "<lora::" * (n // 7) + ">",
    "globs": lambda n: "**/" * (n // 3),
    "equal-weight pieces": lambda n: ":" * n,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_an_adversarial_prompt_four_times_longer_takes_at_most_about_four_times_as_long(name):
    """Linear, not quadratic: four times the text takes at most 8x the time (linear is about 4x,
    quadratic 16x: a margin that a busy shared machine's noise does not cross)."""
    make = ADVERSARIAL[name]
    n = 20_000  # well past the prompt cap, so the parsers themselves are measured
    for parse in (lambda t: prompts.parse(t, "A1111"), lambda t: loras.find_tags(t)):
        parse(make(n))  # warm up
        small, large = best_time(parse, make(n)), best_time(parse, make(4 * n))
        assert large <= 8 * small + 0.004, f"{name}: {small:.4f}s -> {large:.4f}s"


def test_compel_reads_at_most_its_cap_and_never_takes_long():
    slow = "(a:" * 700  # about 2 000 characters of the slowest shape found
    start = time.perf_counter()
    parsed = prompts.parse(slow, "compel")
    assert time.perf_counter() - start < 5  # a generous bound: measured 0.5 s here
    longer = prompts.parse("(a:" * (prompts.COMPEL_MAX_CHARS // 3 + 1), "compel")
    assert any("plain text" in w for w in longer.warnings) and parsed is not None


def test_split_break_is_a1111s_regex_in_linear_time():
    import re

    reference = re.compile(r"\s*\bBREAK\b\s*", re.S)
    for text in ["a BREAK b", "a  BREAK\n\nb", "BREAK", "aBREAK b", "a BREAKb", " BREAK BREAK ", "x\tBREAK\ty BREAK"]:
        assert prompts.split_break(text) == reference.split(text), text


def test_deep_brackets_are_text_past_the_nesting_cap():
    parsed = prompts.parse("(" * 40 + "cat" + ")" * 40, "A1111")
    (text, weight), = [f for f in prompts.fragments(parsed) if "cat" in f[0]]
    assert weight == pytest.approx(1.1 ** prompts.MAX_NESTING) and text.count("(") == 40 - prompts.MAX_NESTING
    assert any("nested deeper" in w for w in parsed.warnings)


@pytest.mark.parametrize("door", ["request", "parsed view", "lora tag"])
def test_every_text_door_has_the_same_cap(studio, door):
    too_long = "a" * (MAX_PROMPT_CHARS + 1)
    with pytest.raises(Exception, match=f"prompt: .*at most {MAX_PROMPT_CHARS} characters"):
        if door == "request":
            tiny_request(prompt=too_long)
        elif door == "parsed view":
            studio.describe_prompt(too_long, "tiny")
        else:
            from studio.web.restore import lora_tag

            lora_tag(too_long, "detail", 1.0)


@pytest.mark.parametrize("value", ["\ud800 lone surrogate", "bell \x07"])
def test_text_that_cannot_be_stored_or_encoded_is_refused_by_name(value):
    with pytest.raises(InvalidValue, match="prompt: .*control characters or lone surrogates"):
        tiny_request(prompt=value)


@pytest.mark.parametrize("field, value", [
    ("prompt", {"a": 1}), ("prompt", ["a", "b"]), ("hires", "str"), ("hires", float("nan")), ("seed", 0.5),
    ("seed", True), ("steps", "20"), ("styles", "anime"), ("loras", "detail"), ("cfg_scale", [7]),
])
def test_wrong_types_are_refused_never_coerced(field, value):
    with pytest.raises(InvalidValue) as refused:
        tiny_request(**{field: value})
    assert refused.value.field.startswith(field[:4])


def test_lora_names_are_exact_and_links_out_of_the_folder_are_not_followed(tmp_path):
    folder, outside = tmp_path / "loras", tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    for path in (folder / "top.safetensors", folder / "sub" / "deep.safetensors", outside / "stray.safetensors"):
        path.write_bytes(b"x")
    (folder / "escape.safetensors").symlink_to(outside / "stray.safetensors")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    assert loras.available(folder) == ["deep", "top"]
    assert loras.find("sub/deep", folder).ref == str((folder / "sub" / "deep.safetensors").resolve())
    for pattern in ("*", "*/deep", "**/" * 30 + "deep", "escape", "stray"):
        with pytest.raises(UnknownName):
            loras.find(pattern, folder)
    assert loras.find("linked/stray", folder).is_hub  # spelled like a Hub id: never a file through the link


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge picture (decoding it would take gigabytes)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return data[:8] + chunk + data[33:]


def test_pictures_are_measured_before_they_are_decoded(tmp_path):
    import gradio as gr

    from studio.web.bounded import BoundedImage, check_picture

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(10_000, 10_000))
    with pytest.raises(gr.Error, match="10000x10000 is not valid; allowed: at most"):
        check_picture("init_image", str(bomb))
    with pytest.raises(gr.Error, match="not a readable picture"):
        check_picture("init_image", b"not a picture")
    with pytest.raises(gr.Error, match="10000x10000"):
        BoundedImage(type="pil", elem_id="init_image").preprocess(SimpleNamespace(path=str(bomb)))


def test_the_editor_keeps_few_small_blobs_at_layers_it_has(tmp_path):
    import gradio as gr

    from studio.web import bounded

    editor = bounded.BoundedImageEditor(type="pil", elem_id="inpaint-editor")
    small = io.BytesIO()
    Image.new("RGBA", (16, 16)).save(small, format="PNG")

    def blob(index, key, content=small.getvalue(), kind="layer"):
        return SimpleNamespace(data={"type": kind, "index": index, "id": key}, files=[("blob", content)])

    with pytest.raises(gr.Error, match="layer '20000000' is not valid"):
        editor.accept_blobs(blob(20_000_000, "a"))
    with pytest.raises(gr.Error, match="10000x10000"):
        editor.accept_blobs(blob(0, "a", png_claiming(10_000, 10_000)))
    with pytest.raises(gr.Error, match="bytes is not valid"):
        editor.accept_blobs(blob(0, "a", b"x" * (bounded.MAX_BLOB_BYTES + 1)))
    for n in range(bounded.MAX_BLOB_SETS + 5):  # many editors at once: the oldest sets are dropped
        editor.accept_blobs(blob(0, f"editor-{n}"))
    assert len(editor.blob_storage) == bounded.MAX_BLOB_SETS and "editor-0" not in editor.blob_storage
    # And Gradio does not serve it at all (no server-function mark): a stranger's blob call is a 404.
    assert not getattr(bounded.BoundedImageEditor.accept_blobs, "_is_server_fn", False)
    assert "accept_blobs" not in (editor.get_config().get("server_fns") or [])


def test_a_png_chunk_past_its_cap_is_not_read():
    from PIL import PngImagePlugin

    from studio.metadata import MAX_CHUNK_CHARS, read_png

    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", "a" * (MAX_CHUNK_CHARS + 1))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=chunks)
    meta = read_png(buffer.getvalue())
    assert meta.infotext is None and "longer than" in meta.message


def test_a_request_knows_its_cost():
    base = GenerationRequest(model="sd15", steps=25)
    assert base.cost() == pytest.approx(512 * 512 * 25 / 1e6)
    hires = GenerationRequest(model="sd15", steps=20, hires=True, hires_scale=2.0, hires_strength=0.5, batch_size=2)
    assert hires.cost() == pytest.approx(2 * (512 * 512 * 20 + 1024 * 1024 * 10) / 1e6)
