"""Fuzzing the doors: the request validator, the prompt parsers, LoRA tags and the PNG / infotext
readers get arbitrary input. Each either accepts it or raises a StudioError that names the problem;
nothing else ever escapes. The example budget is fixed (and derandomized) so CI is repeatable;
`STUDIO_FUZZ_EXAMPLES` raises it (bench/reliability.py does).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from support import record
from studio import GenerationRequest, StudioError, loras, prompts
from studio import TABLE, samplers
from studio.infotext import format_infotext, parse_infotext, request_fields
from studio.metadata import MetadataError, png_bytes, read_png
from studio.pnginfo import recall
from studio.web.restore import make_png_info

png_info = make_png_info(None, False)

EXAMPLES = int(os.environ.get("STUDIO_FUZZ_EXAMPLES", "150"))  # per property
CASES: dict[str, int] = {}  # examples actually run, per property (for the reliability report)


def fuzz(test):
    """Fixed, derandomized budget; counts the examples each property really ran."""

    @functools.wraps(test)
    def counted(*args, **kwargs):
        CASES[test.__name__] = CASES.get(test.__name__, 0) + 1
        return test(*args, **kwargs)

    return settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(counted)


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    record("fuzz properties", len(CASES))
    record("fuzz cases", sum(CASES.values()))

FIELDS = [f.name for f in dataclasses.fields(GenerationRequest)]
hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=20),  # control characters
    st.sampled_from(["", " ", "\x00", "../../etc/passwd", "Euler\x00a", "𝔼𝕦𝕝𝕖𝕣", "DPM++ 2M Karras", "nan",
                     "1e309", "<lora:x:1e999>", "A" * 60_000]),
)
anything = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), hostile_text, st.binary(max_size=16),
    st.lists(st.integers(), max_size=3), st.tuples(st.text(max_size=5), st.floats()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def names_the_problem(exc: StudioError) -> bool:
    message = str(exc)
    return any(name in message for name in FIELDS + ["lora", "batch_count"]) and "allowed" in message


@given(st.dictionaries(st.sampled_from(FIELDS), anything, max_size=5))
@fuzz
def test_the_request_validator_accepts_or_names_the_field(fields):
    try:
        request = GenerationRequest(**{"model": "tiny", "width": 64, "height": 64, **fields})
    except StudioError as exc:
        assert names_the_problem(exc), str(exc)
        return
    # Accepted: the request is self-consistent and can be recorded as JSON.
    assert 1 <= request.steps <= 150 and request.width % 8 == 0 and request.seed >= -1
    json.dumps(request.record())


@given(anything)
@fuzz
def test_batch_count_accepts_or_names_it(count):
    try:
        GenerationRequest(model="tiny", width=64, height=64, seed=1).batches(count)
    except StudioError as exc:
        assert "batch_count" in str(exc)


@given(hostile_text, st.sampled_from(["A1111", "compel"]))
@fuzz
def test_the_prompt_parsers_never_raise(text, syntax):
    parsed = prompts.parse(text, syntax)  # bad syntax and overlong compel text become warnings
    assert isinstance(parsed.warnings, tuple)


@given(hostile_text)
@fuzz
def test_lora_tags_parse_or_name_the_weight(text):
    try:
        cleaned, found = loras.extract(text)
    except StudioError as exc:
        assert "lora" in str(exc)
        return
    assert "<lora:" not in cleaned.lower() or not found


@given(hostile_text)
@fuzz
def test_the_infotext_reader_never_raises(text):
    fields, notes = request_fields(parse_infotext(text))
    assert isinstance(fields, dict) and isinstance(notes, list)


@given(hostile_text, hostile_text, st.integers(0, 2**32 - 1))
@fuzz
def test_every_accepted_prompt_survives_the_png_round_trip_exactly(prompt, negative, seed):
    try:
        request = GenerationRequest(prompt=prompt, negative_prompt=negative, seed=seed, model="tiny", width=64,
                                    height=64)
    except StudioError as exc:
        assert names_the_problem(exc), str(exc)  # control characters, 50 000+ characters, a bad <lora:> weight
        return
    text = format_infotext(request)
    meta = read_png(png_bytes(Image.new("RGB", (8, 8)), text, request.record()))
    assert meta.infotext == text and meta.request == request.record()
    assert GenerationRequest.from_settings(recall(meta).fields) == request  # and back into the same request


@given(st.fixed_dictionaries({
    "sampler": st.sampled_from(samplers.sampler_names()),
    "steps": st.integers(1, 150),
    "cfg_scale": st.floats(0, 30),
    "seed": st.integers(0, 2**32 - 1),
    "width": st.integers(4, 40).map(lambda n: 8 * n),  # x 1.5 stays within tiny's 512
    "batch_size": st.integers(1, 8),
    "clip_skip": st.integers(1, 2),
    "prompt_syntax": st.sampled_from(["A1111", "compel"]),
    "rng": st.sampled_from(["cpu", "device"]),
    "styles": st.lists(st.sampled_from(TABLE["styles"].choice_list()), max_size=3),
    "hires": st.booleans(),
    "hires_scale": st.floats(1, 1.5),
    "hires_steps": st.integers(0, 150),
    "hires_strength": st.floats(0, 1),
    "hires_upscaler": st.sampled_from(TABLE["hires_upscaler"].choice_list()),
}), st.integers(0, 7))
@fuzz
def test_the_a1111_text_alone_reads_back_into_the_same_request(fields, index):
    """Every setting the infotext carries comes back exactly from the text: the same image. As in A1111
    the text holds the final prompt (styles applied), the schedule Automatic stands for, and hires
    settings only when hires fix is on."""
    request = GenerationRequest(prompt="a cat", model="tiny", height=64, **fields)
    fields, notes = request_fields(parse_infotext(format_infotext(request, min(index, request.batch_size - 1),
                                                                  prompt="a final prompt")))
    hires_defaults = {} if request.hires else {name: TABLE[name].default for name in
                                               ("hires_scale", "hires_steps", "hires_strength", "hires_upscaler")}
    expected = dataclasses.replace(request, prompt="a final prompt", styles=(),
                                   schedule=request.sampler_choice.effective_schedule.name, **hires_defaults)
    assert notes == [] and GenerationRequest(**fields) == expected


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def hostile_png(key: str, value: bytes, size=(8, 8)) -> bytes:
    """A valid 8x8 PNG carrying an arbitrary text chunk (and a lying header size if asked)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    if size != (8, 8):
        header = struct.pack(">IIBBBBB", size[0], size[1], 8, 2, 0, 0, 0)
        data = data[:8] + chunk(b"IHDR", header) + data[33:]
    end = data.rindex(b"IEND") - 4
    return data[:end] + chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value) + data[end:]


@given(st.sampled_from(["parameters", "studio-request", "Comment"]),
       st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("latin-1", "replace")),
                 st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                        st.text(max_size=10)),
                              lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                                  st.sampled_from(["steps", "seed", "prompt", "cfg_scale", "width", "model", "x"]),
                                  inner, max_size=4), max_leaves=10).map(lambda v: json.dumps(v).encode())))
@fuzz
def test_hostile_png_metadata_is_read_safely(key, value):
    meta = read_png(hostile_png(key, value))
    recalled = recall(meta)
    text, found = png_info(hostile_png(key, value))
    assert found.get("fields", {}) == recalled.fields
    json.dumps(found)  # what goes to the page and the API is plain JSON
    for name, kept in recalled.fields.items():  # only values a request accepts reach the form
        field = TABLE[name]
        assert field.record or field.scope == "run"
        if field.kind in ("int", "float"):
            assert not isinstance(kept, bool) and field.range[0] <= kept <= field.range[1]
        elif field.kind in ("text", "choice", "model"):
            assert isinstance(kept, str)
        elif field.kind == "bool":
            assert isinstance(kept, bool)


@given(st.binary(max_size=300))
@fuzz
def test_arbitrary_bytes_are_refused_as_not_an_image(data):
    try:
        read_png(data)
    except MetadataError as exc:
        assert "not a readable image" in str(exc)


def test_truncated_and_lying_pngs():
    good = hostile_png("parameters", b"a cat\nSteps: 20, Sampler: Euler, Seed: 1")
    for cut in (8, 20, 40, len(good) - 12):
        try:
            read_png(good[:cut])
        except MetadataError:
            pass
    # A header claiming a gigantic picture is read for its chunks only, never decoded.
    bomb = hostile_png("parameters", b"a cat\nSteps: 20, Sampler: Euler, Seed: 1", size=(60_000, 60_000))
    try:
        meta = read_png(bomb)
        assert meta.infotext is None or "a cat" in meta.infotext
    except MetadataError as exc:
        assert "not a readable image" in str(exc)


@given(st.text(alphabet=st.sampled_from(list('ab _-/:,"\\\\é1\t.')), max_size=40))
@fuzz
def test_the_linear_parameter_scan_equals_a1111s_regex(line):
    from studio.infotext import A1111_PARAM_PATTERN, param_pairs

    assert param_pairs(line) == A1111_PARAM_PATTERN.findall(line)


def test_a_huge_parameter_line_is_read_in_linear_time():
    import time

    from studio.infotext import param_pairs

    start = time.perf_counter()
    for line in ("A" * 200_000, "a b " * 50_000, "x" * 100_000 + ": " + "y" * 100_000):
        param_pairs(line)
    assert time.perf_counter() - start < 2  # A1111's regex needs minutes here


@given(st.text(alphabet=st.sampled_from(list("<lora:>ab1.:LORA ")), max_size=60))
@fuzz
def test_the_linear_lora_scanner_equals_a1111s_tag_regex(text):
    assert [(t.start, t.end, t.name, t.weight) for t in loras.find_tags(text)] == [
        (m.start(), m.end(), m.group(1), m.group(2)) for m in loras.TAG.finditer(text)]


@given(st.text(alphabet=st.sampled_from(list(" \t\nBREAKab")), max_size=60))
@fuzz
def test_the_linear_break_split_equals_a1111s_regex(text):
    import re

    assert prompts.split_break(text) == re.split(r"\s*\bBREAK\b\s*", text, flags=re.S)


# -- the A1111 door: wrong types for every key to_settings reads are InvalidValue, never a crash ----
def _a1111_keys() -> list[str]:
    from studio.web.sdapi import lenient, translate

    return sorted(translate.KNOWN | set(translate.NO_EFFECT) | set(lenient.NUMBERS) |
                  {"prompt", "override_settings", "alwayson_scripts", "init_images", "mask", "enable_hr"})


def _unit_keys() -> list[str]:
    from studio.web.sdapi import units

    return sorted(set(units.UNIT_KEYS) | set(units.PROMPT_KEYS) | set(units.INDEXED) |
                  {"module", "image", "input_image", "enabled", "union_type"})


@given(st.sampled_from(["txt2img", "img2img"]), st.dictionaries(st.sampled_from(_a1111_keys()), anything, max_size=4),
       st.dictionaries(st.sampled_from(_unit_keys()), anything, max_size=3),
       st.dictionaries(st.sampled_from(["sd_model_checkpoint", "CLIP_stop_at_last_layers", "sd_vae"]), anything,
                       max_size=2))
@settings(max_examples=min(EXAMPLES, 120), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_the_a1111_translation_accepts_or_names_the_key(task, body, unit, overrides):
    from studio.config import StudioConfig
    from studio.errors import InvalidValue
    from studio.service.plan import make_plan
    from studio.web.sdapi import translate

    picture = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAIAQAAAADsdIMmAAAAC0lEQVR4nGNgQAUAABAAATm9j2UAAAAASUVORK5CYII="
    payload = {"prompt": "x", "init_images": [picture], **body,
               "alwayson_scripts": {"controlnet": {"args": [{"module": "canny", "image": picture, **unit}]}},
               "override_settings": overrides}
    if "alwayson_scripts" in body or "override_settings" in body:
        payload.update({k: body[k] for k in ("alwayson_scripts", "override_settings") if k in body})
    try:
        settings_, _, _ = translate.to_settings(payload, task, "tiny", None)
        make_plan(settings_, StudioConfig(device="cpu"))
    except InvalidValue as exc:
        assert exc.field and "allowed" in str(exc), str(exc)
    except StudioError:
        pass
