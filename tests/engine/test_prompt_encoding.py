"""Prompt weighting on the tiny models: A1111 and compel syntax encoded, long prompts, SD and SDXL,
clip skip, the parsed view, the cache. The parsers alone: tests/unit/test_prompt_parser.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import pixels, tiny_request
from studio import prompts
from studio import families
from studio.conditioning import CHUNK_TOKENS, ClipSkip, chunk_token_counts
from studio.errors import InvalidValue
from studio.prompts import parse


@pytest.fixture(scope="module")
def sd(studio):
    return studio.load("tiny").pipe


@pytest.fixture(scope="module")
def xl(studio):
    return studio.load("tiny-xl").pipe


def embeds(pipe, text, syntax="A1111", family="sd15", clip_skip=1):
    return families.family(family).prompt_encoder(pipe, clip_skip).encode(parse(text, syntax))


def test_unweighted_prompts_encode_exactly_as_diffusers_does(sd, xl):
    reference, _ = sd.encode_prompt("a red cube", "cpu", 1, False)
    assert torch.equal(embeds(sd, "a red cube").embeds, reference)
    pe, _, pooled, _ = xl.encode_prompt("a red cube", device="cpu", num_images_per_prompt=1,
                                        do_classifier_free_guidance=False)
    ours = embeds(xl, "a red cube", family="sdxl")
    assert torch.equal(ours.embeds, pe) and torch.equal(ours.pooled, pooled)


@pytest.mark.parametrize(
    "a, b",
    [
        ("a (cat:1.0) on a mat", "a cat on a mat"),
        ("a ((cat)) on a mat", "a (cat:1.21) on a mat"),
        ("a [cat]", "a (cat:0.9090909090909091)"),
    ],
)
def test_a1111_equivalences(sd, a, b):
    assert torch.equal(embeds(sd, a).embeds, embeds(sd, b).embeds)


@pytest.mark.parametrize(
    "a1111, compel",
    [
        ("a (red:1.3) cube", "a (red)1.3 cube"),
        ("a ((cat)) on a mat", "a cat++ on a mat"),
        ("a (cat:0.81) on a mat", "a cat-- on a mat"),
        ("a cat BREAK a dog", '("a cat", "a dog").and()'),
    ],
)
def test_a1111_and_compel_spellings_encode_alike(sd, xl, a1111, compel):
    for pipe, family in ((sd, "sd15"), (xl, "sdxl")):
        x, y = embeds(pipe, a1111, family=family), embeds(pipe, compel, "compel", family=family)
        assert x.embeds.shape == y.embeds.shape
        assert torch.allclose(x.embeds, y.embeds, atol=1e-6)


def test_weights_change_the_embedding(sd):
    assert not torch.equal(embeds(sd, "a (cat:1.3)").embeds, embeds(sd, "a cat").embeds)
    assert not torch.equal(embeds(sd, "a [cat]").embeds, embeds(sd, "a cat").embeds)


def test_blend_is_the_weighted_mix(sd):
    cat, dog = embeds(sd, "a cat").embeds, embeds(sd, "a dog").embeds
    blend = embeds(sd, '("a cat", "a dog").blend(0.75, 0.25)', "compel").embeds
    assert torch.allclose(blend, 0.75 * cat + 0.25 * dog, atol=1e-6)


def test_long_prompts_are_chunked_not_truncated(sd):
    long = ", ".join(f"word{i}" for i in range(60))
    assert embeds(sd, long).chunks >= 2
    assert sum(chunk_token_counts(parse(long), sd.tokenizer)) == len(sd.tokenizer(long, add_special_tokens=False).input_ids)
    assert embeds(sd, "a BREAK b").chunks == 2


def test_clip_skip_2_is_the_normalised_penultimate_layer(sd):
    ids = sd.tokenizer("a red cube", padding="max_length", max_length=77, return_tensors="pt").input_ids
    hidden = sd.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
    expected = sd.text_encoder.final_layer_norm(hidden)
    assert torch.equal(embeds(sd, "a red cube", clip_skip=2).embeds, expected)
    assert ClipSkip(sd.text_encoder, 2).device == sd.text_encoder.device


def long_prompt(tail: str) -> str:
    return ", ".join(f"word{i}" for i in range(50)) + ", " + tail


def test_text_past_the_first_chunk_changes_the_image(studio):
    first = pixels(studio.run(tiny_request(prompt=long_prompt("a red cube"), sampler="Euler")).images[0])
    other = pixels(studio.run(tiny_request(prompt=long_prompt("a blue sphere"), sampler="Euler")).images[0])
    assert not np.array_equal(first, other)


def test_positive_and_negative_of_different_lengths_work(studio):
    result = studio.run(tiny_request(prompt="a cube", negative_prompt=long_prompt("blurry")))
    assert result.images
    result = studio.run(tiny_request(prompt=long_prompt("a cube"), negative_prompt=""))
    assert result.images


def test_sdxl_with_weights_and_a_long_negative_prompt(studio):
    request = tiny_request(model="tiny-xl", prompt="a (red:1.4) cube, [blurry]",
                           negative_prompt=long_prompt("ugly"), seed=3)
    result = studio.run(request)
    plain = studio.run(tiny_request(model="tiny-xl", prompt="a red cube, blurry",
                                    negative_prompt=long_prompt("ugly"), seed=3))
    assert not np.array_equal(pixels(result.images[0]), pixels(plain.images[0]))
    assert np.array_equal(pixels(result.images[0]), pixels(studio.run(request).images[0]))


def test_weight_one_changes_nothing_and_spellings_give_the_same_image(studio):
    plain = pixels(studio.run(tiny_request(prompt="a cat on a mat")).images[0])
    assert np.array_equal(plain, pixels(studio.run(tiny_request(prompt="a (cat:1.0) on a mat")).images[0]))
    a1111 = pixels(studio.run(tiny_request(prompt="a ((cat)) on a (mat:1.3)")).images[0])
    compel = pixels(studio.run(tiny_request(prompt="a cat++ on a (mat)1.3", prompt_syntax="compel")).images[0])
    assert np.array_equal(a1111, compel)
    assert not np.array_equal(plain, a1111)


@pytest.mark.slow
def test_weighting_applies_to_every_image_of_a_batch(studio):
    batch = studio.run(tiny_request(prompt="a (cat:1.4)", seed=20, batch_size=2, sampler="Euler"))
    single = studio.run(tiny_request(prompt="a (cat:1.4)", seed=21, sampler="Euler"))
    diff = np.abs(pixels(batch.images[1]).astype(int) - pixels(single.images[0]).astype(int))
    assert diff.max() <= 2


def test_clip_skip_changes_the_image_and_is_recorded(studio):
    skip = studio.run(tiny_request(clip_skip=2))
    assert "Clip skip: 2," in skip.infotexts[0]
    assert not np.array_equal(pixels(skip.images[0]), pixels(studio.run(tiny_request()).images[0]))


def test_prompt_syntax_is_recorded(studio):
    assert "Prompt syntax: compel" in studio.run(tiny_request(prompt_syntax="compel")).infotexts[0]


def test_unchanged_prompts_are_not_encoded_again(studio):
    studio.run(tiny_request(prompt="cache me", negative_prompt="and me"))
    count = studio.prompt_encodes
    studio.run(tiny_request(prompt="cache me", negative_prompt="and me", seed=99, sampler="Euler a"))
    assert studio.prompt_encodes == count
    studio.run(tiny_request(prompt="cache me", negative_prompt="not me"))
    assert studio.prompt_encodes == count + 1
    studio.run(tiny_request(prompt="cache me", negative_prompt="not me", prompt_syntax="compel"))
    assert studio.prompt_encodes == count + 3  # both prompts again: the syntax changed


@pytest.mark.slow
def test_odd_prompts_warn_in_the_result_and_never_crash(studio):
    odd = ["a (cat", "(word:abc)", ":", "))((", "🐱 猫 кошка", "x" * 1_000, "[a|b] \\", "BREAK BREAK"]
    for text in odd:
        result = studio.run(tiny_request(prompt=text, steps=1))
        assert result.images
    # 10,000 x's are 134 chunks of 75 tokens: past the 20 a prompt may have, refused by name.
    with pytest.raises(InvalidValue, match="^prompt: .*at most 20 chunks"):
        studio.run(tiny_request(prompt="x" * 10_000, steps=1))
    warned = studio.run(tiny_request(prompt="a (cat", steps=1))
    assert any("never closed" in w for w in warned.prompt_warnings)
    assert any("never closed" in n for n in warned.notices)


@given(st.text(max_size=120))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_prompts_encode(studio, text):
    try:
        view = studio.describe_prompt(text, "tiny")
    except InvalidValue as exc:  # control characters and lone surrogates are refused, by name
        assert str(exc).startswith("prompt: ")
        return
    assert view.chunk_tokens and all(0 <= n <= CHUNK_TOKENS for n in view.chunk_tokens)
    for syntax in prompts.syntax_names():
        families.family("sd15").prompt_encoder(studio.load("tiny").pipe).encode(parse(text, syntax))


def test_parsed_view(studio):
    studio.load("tiny")
    view = studio.describe_prompt("a ((cat)) BREAK " + ", ".join(["dog"] * 50), "tiny")
    assert view.fragments[1] == ("cat", pytest.approx(1.21))
    # The tiny tokenizer spells words out letter by letter: "a cat" is 4 tokens, 50 "dog"s 199.
    assert view.chunk_tokens == (4, 75, 73, 51)  # 73: the chunk ends after the comma nearest 75
    assert view.warnings == ()
    assert studio.describe_prompt("a (cat", "not a model at all").chunk_tokens is None
