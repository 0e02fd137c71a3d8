"""Variation seeds as settings (studio/variation_fields.py): their checks, the batch's seeds and subseeds as
A1111 derives them, the infotext both ways and A1111's API names. The noise itself: test_variation_noise.py;
the images: tests/engine/test_variation_seeds.py."""

from __future__ import annotations

import pytest
from PIL import Image

from support import tiny_request
from studio.errors import InvalidValue
from studio.infotext import format_infotext, parse_infotext, request_fields, unused_params
from studio.web.sdapi import translate

VARIATION = ("seed", "subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h")


def restored(text: str) -> dict:
    found, notes = request_fields(parse_infotext(text))
    assert notes == []
    return {name: found[name] for name in VARIATION}


def test_a_plain_request_writes_nothing_new_and_keeps_seed_plus_i():
    request = tiny_request(seed=40, batch_size=3)
    assert request.seeds() == [40, 41, 42] and request.with_seed() is request  # no subseed drawn for nothing
    text = format_infotext(request, 2)
    assert "Seed: 42," in text and "Variation" not in text and "Seed resize" not in text
    assert restored(text) == {"seed": 40, "subseed": -1, "subseed_strength": 0.0, "seed_resize_from_w": 0,
                              "seed_resize_from_h": 0}


def test_with_a_strength_the_batch_shares_the_seed_and_counts_the_subseed_on():
    request = tiny_request(seed=40, subseed=7, subseed_strength=0.25, batch_size=3)
    assert request.seeds() == [40, 40, 40]
    texts = [format_infotext(request, i) for i in range(3)]
    assert all("Seed: 40," in t for t in texts) and "Variation seed: 9, Variation seed strength: 0.25" in texts[2]
    for text in texts:  # any image's text restores the batch it came from
        assert restored(text) == {"seed": 40, "subseed": 7, "subseed_strength": 0.25, "seed_resize_from_w": 0,
                                  "seed_resize_from_h": 0}
    assert [(r.seed, r.subseed) for r in request.batches(3)] == [(40, 7), (40, 10), (40, 13)]
    plain = tiny_request(seed=40, batch_size=3, subseed=7)
    assert [(r.seed, r.subseed) for r in plain.batches(2)] == [(40, 7), (43, 7)]


def test_a_random_subseed_is_drawn_before_the_run_where_a_strength_uses_it():
    request = tiny_request(seed=-1, subseed=-1, subseed_strength=0.5).with_seed()
    assert request.seed != -1 and request.subseed != -1
    assert f"Variation seed: {request.subseed}," in format_infotext(request)
    batches = tiny_request(seed=5, subseed=-1, subseed_strength=0.5, batch_size=2).batches(2)
    assert batches[1].subseed == batches[0].subseed + 2 and batches[0].seed == batches[1].seed == 5


def test_a_seed_resize_is_written_and_read_back_and_a1111s_minus_1_is_off():
    request = tiny_request(seed=3, seed_resize_from_w=512, seed_resize_from_h=768)
    text = format_infotext(request)
    assert "Seed resize from: 512x768" in text and "Variation seed" not in text
    assert restored(text)["seed_resize_from_w"] == 512 and restored(text)["seed_resize_from_h"] == 768
    assert not {"Variation seed", "Variation seed strength", "Seed resize from"} & set(unused_params(
        parse_infotext("x\nSteps: 4, Seed: 1, Variation seed: 2, Variation seed strength: 0.3, "
                       "Seed resize from: 64x64").params))  # read now, no longer reported as unused
    off = tiny_request(seed_resize_from_w=-1, seed_resize_from_h=-1)
    assert (off.seed_resize_from_w, off.seed_resize_from_h) == (0, 0)


@pytest.mark.parametrize("fields, name", [
    ({"subseed_strength": 1.5}, "subseed_strength"),
    ({"subseed_strength": -0.1}, "subseed_strength"),
    ({"subseed": -2}, "subseed"),
    ({"subseed": 2**32}, "subseed"),
    ({"seed_resize_from_w": 30, "seed_resize_from_h": 64}, "seed_resize_from_w"),
    ({"seed_resize_from_w": 512, "seed_resize_from_h": 9000}, "seed_resize_from_h"),
    ({"seed_resize_from_w": 512}, "seed_resize_from_h"),  # both sides, or neither
    ({"seed_resize_from_h": "tall"}, "seed_resize_from_h"),
])
def test_bad_values_are_refused_by_field_name(fields, name):
    with pytest.raises(InvalidValue) as caught:
        tiny_request(**fields)
    assert caught.value.field == name


def test_image_tasks_refuse_variation_noise_rather_than_ignore_it():
    picture = Image.new("RGB", (64, 64), (90, 120, 30))
    with pytest.raises(InvalidValue) as caught:
        tiny_request(init_image=picture, subseed_strength=0.3)
    assert caught.value.field == "subseed_strength" and "txt2img" in caught.value.allowed
    with pytest.raises(InvalidValue) as caught:
        tiny_request(init_image=picture, seed_resize_from_w=64, seed_resize_from_h=64)
    assert caught.value.field == "seed_resize_from_w"
    assert tiny_request(init_image=picture, subseed=5).subseed == 5  # a subseed alone changes nothing: fine


def test_a1111s_api_names_map_to_the_fields():
    settings, ignored, _ = translate.to_settings(
        {"prompt": "x", "subseed": 12, "subseed_strength": 0.4, "seed_resize_from_w": 640, "seed_resize_from_h": 512},
        "txt2img", None, None)
    assert ignored == {}
    assert {k: settings[k] for k in VARIATION[1:]} == {"subseed": 12, "subseed_strength": 0.4,
                                                        "seed_resize_from_w": 640, "seed_resize_from_h": 512}
    _, ignored, _ = translate.to_settings({"prompt": "x", "subseed": -1, "subseed_strength": 0,
                                           "seed_resize_from_w": -1, "seed_resize_from_h": -1}, "txt2img", None, None)
    assert ignored == {}  # A1111's defaults, as every client sends them
