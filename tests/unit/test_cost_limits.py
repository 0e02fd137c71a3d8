"""Work the cost counts (issue 28): long prompts and ControlNet preprocessing are part of a request's
cost, and what the megapixel-steps cannot bound on their own is refused by name before any work."""

from __future__ import annotations

import pytest
from PIL import Image

from support import tiny_request
from studio.config import StudioConfig
from studio.control import preprocessors
from studio.engine.admit import admit, check_work
from studio.errors import InvalidValue
from studio.prompts import MAX_PROMPT_CHUNKS, estimate_chunks
from studio.service.plan import make_plan

BREAK_FLOOD = "BREAK " * 1600  # 9600 characters: 1601 empty chunks in A1111's reading


def unit(image, module="canny", **fields):
    return {"image": image, "module": module, "model": "some-controlnet", **fields}


def test_consecutive_breaks_count_as_chunks_as_a1111_encodes_them():
    assert estimate_chunks("a cat") == 1
    assert estimate_chunks("a cat BREAK a dog") == 2
    assert estimate_chunks("a cat BREAK BREAK a dog") == 3  # the empty chunk between is encoded too
    assert estimate_chunks(BREAK_FLOOD) > MAX_PROMPT_CHUNKS
    assert estimate_chunks("word " * 300) == 4  # 300 words: at least 300 tokens, 4 chunks of 75


def test_compel_parts_count_each_quoted_prompt():
    flood = "(" + ", ".join(['""'] * 100) + ").and()"
    assert estimate_chunks(flood, "compel") >= 100
    assert estimate_chunks("a cat", "compel") == 1


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_break_flood_is_refused_by_name_before_any_work(field):
    request = tiny_request(**{field: BREAK_FLOOD}, steps=1)
    with pytest.raises(InvalidValue) as refused:
        check_work(request)
    assert refused.value.field == field
    assert str(MAX_PROMPT_CHUNKS) in refused.value.allowed
    with pytest.raises(InvalidValue) as planned:
        make_plan({"model": "tiny", "steps": 1, "width": 64, "height": 64, field: BREAK_FLOOD}, StudioConfig())
    assert planned.value.field == field
    with pytest.raises(InvalidValue) as admitted:
        admit(request, StudioConfig())
    assert admitted.value.field == field


def test_the_cost_grows_with_the_chunks_of_both_prompts():
    short = tiny_request(prompt="a cat")
    longer = tiny_request(prompt="a cat BREAK a dog BREAK a bird")
    both = tiny_request(prompt="a cat BREAK a dog BREAK a bird", negative_prompt="blur BREAK noise")
    assert short.encoding_cost() == 0  # one chunk each: the megapixel-steps already cover it
    assert short.cost() < longer.cost() < both.cost()
    assert longer.cost() - short.cost() == pytest.approx(longer.encoding_cost())


def test_a_cheap_request_with_a_long_prompt_is_refused_by_the_cost_cap():
    settings = {"model": "tiny", "steps": 1, "width": 64, "height": 64,
                "prompt": " BREAK ".join(["a cat"] * MAX_PROMPT_CHUNKS)}
    assert make_plan(settings, StudioConfig()).cost > 1  # 0.004 megapixel-steps of pixels, 19 extra chunks
    with pytest.raises(InvalidValue) as refused:
        make_plan(settings, StudioConfig(max_cost=1))
    assert refused.value.field == "cost"


def test_a_strip_picture_is_refused_by_its_unit_without_resizing_it():
    strip = Image.new("RGB", (8, 8192))
    request = tiny_request(controlnets=[unit(Image.new("RGB", (64, 64))), unit(strip)])
    with pytest.raises(InvalidValue) as refused:
        check_work(request)
    assert refused.value.field == "controlnets[1].image"
    assert str(preprocessors.MAX_ASPECT) in refused.value.allowed
    with pytest.raises(InvalidValue) as direct:  # the engine's own check, before at_resolution
        preprocessors.preprocess(strip, "canny", (64, 64))
    assert direct.value.field == "image"


def test_a_picture_read_past_the_pixel_bound_is_refused():
    wide = (8 * 2048, 2048)  # 1:8, at resolution 2048: 16384 x 2048 = 33.5 MP
    with pytest.raises(InvalidValue) as refused:
        preprocessors.read_size(wide, "shuffle", (512, 512), "Crop and resize", 2048, "controlnets[0]")
    assert refused.value.field == "controlnets[0].image"
    assert preprocessors.read_size(wide, "shuffle", (512, 512), "Crop and resize", 512)[1] == (4096, 512)


def test_the_cost_counts_preprocessing_by_pixels_and_module():
    picture = Image.new("RGB", (512, 512))
    bare = tiny_request()
    mapped = tiny_request(controlnets=[unit(picture, "none")])
    edges = tiny_request(controlnets=[unit(picture, "canny")])
    shuffled = tiny_request(controlnets=[unit(picture, "shuffle")])
    sharper = tiny_request(controlnets=[unit(picture, "shuffle", processor_res=1024)])
    assert bare.cost() == mapped.cost() < edges.cost() < shuffled.cost() < sharper.cost()
    assert sharper.preprocessing_cost() == pytest.approx(4 * shuffled.preprocessing_cost())
    off = tiny_request(controlnets=[unit(picture, "shuffle", weight=0)])  # never preprocessed: free
    assert off.cost() == bare.cost()
