"""Prompt styles: A1111's rule for {prompt}, several at once, errors naming the choices."""

from __future__ import annotations

import pytest

from studio.errors import InvalidValue
from studio.styles import apply_styles, apply_to, style_names, styles


def test_the_shipped_styles_are_there():
    for name in ("cinematic", "photographic", "anime", "watercolor", "line-art"):
        assert name in style_names()
    assert all("{prompt}" in s.prompt and s.negative_prompt for s in styles().values())


@pytest.mark.parametrize(
    "template, text, expected",
    [
        ("photo of {prompt}, 35mm", "a cat", "photo of a cat, 35mm"),
        ("35mm, film grain", "a cat", "a cat, 35mm, film grain"),
        ("35mm", "", "35mm"),
        ("photo of {prompt}", "", "photo of "),
        ("grainy", "a cat,", "a cat, grainy"),
    ],
)
def test_placeholder_or_append(template, text, expected):
    assert apply_to(template, text) == expected


def test_several_styles_apply_in_order_to_both_prompts():
    prompt, negative = apply_styles("a cat", "blurry", ["watercolor", "cinematic"])
    assert prompt.startswith("cinematic film still of watercolor painting of a cat")
    assert negative.startswith("blurry, anime, photorealistic") and "cartoon" in negative


def test_no_styles_changes_nothing():
    assert apply_styles("a (cat:1.2)", "", []) == ("a (cat:1.2)", "")


def test_unknown_style_lists_the_choices():
    with pytest.raises(InvalidValue, match="styles: 'vaporwave' is not valid; allowed: one of .*cinematic"):
        apply_styles("a cat", "", ["vaporwave"])
