"""A1111's prompt editing and alternation schedules: its parser's doctests are the specification, and
the other cases below are what A1111 1.10's own parser answered for them (run beside this one)."""

from __future__ import annotations

import pytest

from studio.errors import InvalidValue
from studio.prompt_schedule import MAX_SCHEDULED_PROMPTS, check_schedule, describe, schedule

ALTERNATE = [[1, "a"], [2, "(b:1.1)"], [3, "a"], [4, "(b:1.1)"], [5, "a"], [6, "(b:1.1)"], [7, "a"], [8, "(b:1.1)"],
             [9, "a"], [10, "(b:1.1)"]]

# get_learned_conditioning_prompt_schedules's doctests (steps 10), in A1111 1.10's modules/prompt_parser.py
DOCTESTS = [
    ("test", [[10, "test"]]),
    ("a [b:3]", [[3, "a "], [10, "a b"]]),
    ("a [b: 3]", [[3, "a "], [10, "a b"]]),
    ("a [[[b]]:2]", [[2, "a "], [10, "a [[b]]"]]),
    ("[(a:2):3]", [[3, ""], [10, "(a:2)"]]),
    ("a [b : c : 1] d", [[1, "a b  d"], [10, "a  c  d"]]),
    ("a[b:[c:d:2]:1]e", [[1, "abe"], [2, "ace"], [10, "ade"]]),
    ("a [unbalanced", [[10, "a [unbalanced"]]),
    ("a [b:.5] c", [[5, "a  c"], [10, "a b c"]]),
    ("((a][:b:c [d:3]", [[3, "((a][:b:c "], [10, "((a][:b:c d"]]),
    ("[a|(b:1.1)]", ALTERNATE),
    ("[fe|]male", [[1, "female"], [2, "male"], [3, "female"], [4, "male"], [5, "female"], [6, "male"],
                   [7, "female"], [8, "male"], [9, "female"], [10, "male"]]),
    ("[fe|||]male", [[1, "female"], [2, "male"], [3, "male"], [4, "male"], [5, "female"], [6, "male"], [7, "male"],
                     [8, "male"], [9, "female"], [10, "male"]]),
]

# What A1111's parser (its lark grammar) answers on odd input: read, or the whole prompt left as text
ODD = [
    ("a | b [c:d:5]", [[10, "a | b [c:d:5]"]]),  # a '|' outside [a|b]: the grammar fails, nothing is edited
    ("(x [b:c])", [[10, "(x [b:c])"]]),
    ("[a:b:c]", [[10, "[a:b:c]"]]),
    ("a [b:c:3 ] d", [[3, "a b d"], [10, "a c d"]]),
    ("[a:b:-2]", [[10, "b"]]),
    ("[a:b:1e1]", [[10, "a"]]),
    ("[a:b:+3]", [[3, "a"], [10, "b"]]),
    ("\\[a:b:3\\]", [[10, "\\[a:b:3\\]"]]),
    ("[a:b:3.5]", [[10, "a"]]),  # with a dot, a fraction of the steps: 3.5 x 10, past the last step
    ("[a::3]", [[3, "a"], [10, ""]]),
    ("[:b:3]", [[3, ""], [10, "b"]]),
    ("[a|b:3]", [[10, "[a|b:3]"]]),
    ("([a:b:3]:1.2)", [[3, "(a:1.2)"], [10, "(b:1.2)"]]),
    ("[a|[b:c:3]]", [[1, "a"], [2, "b"], [3, "a"], [4, "c"], [5, "a"], [6, "c"], [7, "a"], [8, "c"], [9, "a"],
                     [10, "c"]]),
    ("a [{b|d{:.5] c", [[10, "a [{b|d{:.5] c"]]),  # A1111's doctest says otherwise ("not handling this"); its parser this
    # How its Earley parser settles an ambiguity: an edit before an even run of stray brackets is text
    ("[a:b:3]]", [[3, "a]"], [10, "b]"]]),
    ("[a:b:3]]]", [[10, "[a:b:3]]]"]]),
    ("[a:b:3]]]]", [[3, "a]]]"], [10, "b]]]"]]),
    ("[a:b:3]::", [[10, "[a:b:3]::"]]),
    ("[a:b:3]:]:", [[3, "a:]:"], [10, "b:]:"]]),
    ("[a:b:3]:: [c:d:5]::", [[10, "[a:b:3]:: [c:d:5]::"]]),
    ("[a|b]]]", [[i, "ab"[(i - 1) % 2] + "]]"] for i in range(1, 11)]),
    ("[[a:b:3]]]]", [[3, "[a]]]"], [10, "[b]]]"]]),
    # ... counting the brackets that end with it: ([a:b:3]) + one stray is text, + two is an edit
    ("([a:b:3]))", [[10, "([a:b:3]))"]]),
    ("([a:b:3])))", [[3, "(a)))"], [10, "(b)))"]]),
    ("(x:[a:b:3]))", [[10, "(x:[a:b:3]))"]]),
    ("[[c|d][a:b:3]])", [[i, f"[{'cd'[(i - 1) % 2]}[a:b:3]])"] for i in range(1, 11)]),  # the other edits stay
    ("[ [a:b:3] ])", [[3, "[ a ])"], [10, "[ b ])"]]),  # it does not end the brackets: an edit
]


@pytest.mark.parametrize("prompt, expected", DOCTESTS + ODD)
def test_schedules_are_a1111s(prompt, expected):
    assert [list(e) for e in schedule(prompt, 10).entries] == expected


@pytest.mark.parametrize("prompt, expected", [
    ("a [b:.5] c", [[10, "a b c"]]),  # the hires pass: fractions past 1 and steps past the first pass's
    ("a [b:1.5] c", [[5, "a  c"], [10, "a b c"]]),
    ("a [b:15] c", [[5, "a  c"], [10, "a b c"]]),
])
def test_the_hires_pass_counts_on_from_the_first(prompt, expected):
    assert [list(e) for e in schedule(prompt, 10, hires_steps=10).entries] == expected


def test_a_step_takes_the_first_entry_it_is_not_past():
    found = schedule("a [b:3]", 10)  # A1111's reconstruct_cond_batch: steps 0..3 'a ', then 'a b'
    assert [found.at(step) for step in range(10)] == ["a "] * 4 + ["a b"] * 6
    assert found.texts == ("a ", "a b") and found.edited and not schedule("a b", 10).edited


def test_the_view_counts_steps_as_people_do():
    assert describe(schedule("a [b:3]", 10)) == [{"first": 1, "last": 4, "text": "a "},
                                                  {"first": 5, "last": 10, "text": "a b"}]
    assert describe(schedule("[a:b:9]", 10)) == [{"first": 1, "last": 10, "text": "a"}]  # 'b' never runs


def test_long_bracketed_prompts_parse_in_one_pass():
    prompt = "a photo of (a cat:1.2), [dog:cat:0.5], ((masterpiece)), [red|blue] hair, " * 130  # ~9,600 characters
    found = schedule(prompt, 20)  # A1111's Earley parser takes seconds for a tenth of this
    assert len(found.texts) == 4 and found.at(0).startswith("a photo of (a cat:1.2), dog, ((masterpiece)), red hair")
    deep = "[" * 5000 + "a:b:3" + "]" * 5000  # past MAX_DEPTH brackets: text at every step, as a failed parse is
    assert schedule(deep, 20).entries == ((20, deep),)
    assert schedule("[" * 90 + "a:b:3" + "]" * 90, 20).edited


def test_too_many_texts_are_refused_by_field():
    with pytest.raises(InvalidValue, match=r"negative_prompt: .*different prompts.*at most 16"):
        check_schedule("negative_prompt", "[a|b] [c|d|e] [f|g|h|i] [j|k|l|m|n]", 60)
    assert len(check_schedule("prompt", "[a|b] [c|d|e]", 60).texts) == 6 <= MAX_SCHEDULED_PROMPTS
