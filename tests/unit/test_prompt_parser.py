"""The prompt parsers: A1111 and compel syntax and their weights, warnings with positions, chunking
at 75 tokens as A1111 does. Encoding on the models: tests/engine/test_prompt_encoding.py."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio import GenerationRequest, prompts
from studio.conditioning import CHUNK_TOKENS, split_chunks
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
