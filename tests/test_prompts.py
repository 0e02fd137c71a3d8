"""Prompt weighting: A1111 and compel syntax, long prompts, SD and SDXL, the parsed view, the cache."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import pixels, tiny_request
from studio import GenerationRequest, prompts
from studio import families
from studio.conditioning import CHUNK_TOKENS, ClipSkip, chunk_token_counts, split_chunks
from studio.errors import InvalidValue
from studio.prompts import fragments, parse


def test_a1111_documented_examples_hold():
    failures, tried = doctest.testmod(prompts)
    assert tried >= 6 and failures == 0


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("cat", [("cat", 1.0)]),
        ("(cat)", [("cat", 1.1)]),
        ("((cat))", [("cat", 1.1 * 1.1)]),
        ("[cat]", [("cat", 1 / 1.1)]),
        ("[[cat]]", [("cat", 1 / 1.1 / 1.1)]),
        ("(cat:1.3)", [("cat", 1.3)]),
        ("(cat: 0.5 )", [("cat", 0.5)]),
        ("((cat:1.5))", [("cat", 1.5 * 1.1)]),
        ("([cat])", [("cat", 1.1 / 1.1)]),
        ("a (b (c:2))", [("a ", 1.0), ("b ", 1.1), ("c", 2.2)]),
        ("(cat:1.0)", [("cat", 1.0)]),
        ("a \\(b\\) c", [("a (b) c", 1.0)]),
        ("\\[x\\]", [("[x]", 1.0)]),
        ("a BREAK b", [("a", 1.0), ("BREAK", -1), ("b", 1.0)]),
        ("(a BREAK b)", [("a", 1.1), ("BREAK", -1), ("b", 1.1)]),
        ("BREAKFAST", [("BREAKFAST", 1.0)]),
        ("a BREAK BREAK b", [("a", 1.0), ("BREAK", -1), ("BREAK", -1), ("b", 1.0)]),
        ("", [("", 1.0)]),
        ("(cat:-1)", [("cat", -1.0)]),
    ],
)
def test_a1111_weights(prompt, expected):
    got = fragments(parse(prompt))
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("cat++", [("cat", 1.21)]),
        ("cat--", [("cat", 0.81)]),
        ("a (red cube)1.3", [("a", 1.0), ("red cube", 1.3)]),
        ('("a cat", "a dog").blend(0.7, 0.3)', [("a cat", 0.7), ("a dog", 0.3)]),
        ('("a cat", "a dog").and()', [("a cat", 1.0), ("BREAK", -1), ("a dog", 1.0)]),
    ],
)
def test_compel_weights(prompt, expected):
    got = fragments(parse(prompt, "compel"))
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


@pytest.mark.parametrize(
    "prompt, syntax, warning",
    [
        ("a (cat", "A1111", "'(' at position 2 is never closed"),
        ("a [cat", "A1111", "'[' at position 2 is never closed"),
        ("a cat)", "A1111", "')' at position 5 has no opening bracket"),
        ("(word:abc)", "A1111", "':' at position 5 is not followed by a weight"),
        ("(cat:12)", "A1111", "weight 12 at position 4 is far outside"),
        ("[cat:dog:0.5]", "A1111", "prompt editing"),
        ("a cat++", "A1111", "looks like compel syntax"),
        ("a (cat:1.3)", "compel", "looks like A1111 syntax"),
        ("a cat.swap(dog)", "compel", ".swap() is not supported"),
    ],
)
def test_odd_prompts_warn_with_position(prompt, syntax, warning):
    warnings = parse(prompt, syntax).warnings
    assert any(warning in w for w in warnings), warnings


def test_clean_prompts_do_not_warn():
    assert parse("a (red:1.2) cube, [blurry], ((sharp)) BREAK sky").warnings == ()
    assert parse("a red++ cube, (sharp focus)1.2", "compel").warnings == ()


def test_unknown_syntax_lists_choices():
    with pytest.raises(InvalidValue, match="prompt_syntax: 'comfy' is not valid; allowed: one of A1111, compel"):
        GenerationRequest(prompt="x", model="tiny", width=64, height=64, prompt_syntax="comfy")
    assert GenerationRequest(prompt="x", model="tiny", width=64, height=64, prompt_syntax="COMPEL").prompt_syntax == "compel"


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_strings_never_raise(text):
    for syntax in prompts.syntax_names():
        parsed = parse(text, syntax)
        assert fragments(parsed)


# -- chunking ------------------------------------------------------------------------------


def test_chunks_split_at_a_late_comma_as_a1111_does():
    comma = 9
    tokens = [1] * 70 + [comma] + [1] * 10  # comma at index 70: within 20 of the 75 limit
    chunks = split_chunks([tokens], [1.0], comma)
    assert [len(t) for t, _ in chunks] == [71, 10]
    early = [1] * 40 + [comma] + [1] * 40  # comma 35 tokens back: too far, hard split
    assert [len(t) for t, _ in split_chunks([early], [1.0], comma)] == [75, 6]


def test_chunks_keep_per_token_weights_across_the_split():
    chunks = split_chunks([[1] * 70, [2] * 10], [1.0, 1.5], None)
    assert [len(t) for t, _ in chunks] == [CHUNK_TOKENS, 5]
    assert chunks[0][1][-1] == 1.5 and chunks[1][1] == [1.5] * 5


def test_empty_prompt_is_one_empty_chunk():
    assert split_chunks([], [], None) == [([], [])]


# -- encoding on the tiny models -----------------------------------------------------------


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


# -- through the engine --------------------------------------------------------------------


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


def test_odd_prompts_warn_in_the_result_and_never_crash(studio):
    odd = ["a (cat", "(word:abc)", ":", "))((", "🐱 猫 кошка", "x" * 10_000, "[a|b] \\", "BREAK BREAK"]
    for text in odd:
        result = studio.run(tiny_request(prompt=text, steps=1))
        assert result.images
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
