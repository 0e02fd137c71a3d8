"""What the page shows of a loaded model: the token counter (A1111 chunks of the model's tokenizer),
the parsed prompt preview with styles and warnings, the model list with loaded models marked."""

from __future__ import annotations

import pytest

from studio import Studio
from studio.web import handlers, prompt_view


@pytest.mark.parametrize(
    "view, expected",
    [
        (None, "Tokens: counted when the model has loaded"),
        ({"chunk_tokens": [7], "warnings": []}, "Tokens: 7/75"),
        ({"chunk_tokens": [75, 12], "warnings": ["x"]}, "Tokens: 75/75 · 12/75 (2 chunks) · ⚠ 1 warning"),
        ({"chunk_tokens": [], "warnings": ["a", "b"]}, "Tokens: 0/75 · ⚠ 2 warnings"),
    ],
)
def test_token_counter(view, expected):
    assert prompt_view.token_counter(view) == expected


def test_token_counter_counts_a1111_chunks(studio):
    studio.load("tiny")
    view = prompt_view.make_parse_prompt(studio)("word " * 80, "A1111", "tiny")
    counts = view["chunk_tokens"]  # the generated tokenizer splits words into several tokens
    assert len(counts) > 1 and set(counts[:-1]) == {75} and 0 < counts[-1] <= 75
    assert prompt_view.token_counter(view).startswith("Tokens: 75/75 · 75/75") and f"({len(counts)} chunks)" in \
        prompt_view.token_counter(view)


def test_model_choices_mark_loaded_models(studio, tmp_path):
    studio.load("tiny")
    (tmp_path / "mine.safetensors").write_bytes(b"x")
    choices = dict((value, label) for label, value in handlers.model_choices(studio, tmp_path, False))
    assert choices["tiny"] == "tiny ● loaded" and choices["sd15"] == "sd15"
    assert choices[str((tmp_path / "mine.safetensors").resolve())] == "mine.safetensors (models folder)"


def test_the_prompt_preview_counts_both_prompts_with_styles_and_shows_warnings_first():
    from studio.web.prompt_view import make_prompt_preview, parsed_html

    studio = Studio(device="cpu", cache_size=1)
    studio.load("tiny")
    preview = make_prompt_preview(studio)
    plain = preview("a cube", "", [], "A1111", "tiny")
    styled = preview("a cube", "", ["cinematic"], "A1111", "tiny")
    assert plain[0].startswith("Tokens: ") and styled[1].startswith("Negative tokens: ")
    assert plain[0] != styled[0] and "cinematic film still of a cube" in styled[2]  # counted with the style
    html = parsed_html({"fragments": [{"text": "<b>up</b>", "weight": 1.3}, {"text": "down", "weight": 0.8}],
                        "warnings": ["'(' never closed"]}, "Prompt")
    assert html.index("warning") < html.index("weight-up") < html.index("weight-down")
    assert "&lt;b&gt;up&lt;/b&gt;" in html and "<b>up</b>" not in html  # the prompt's text is escaped


def test_the_parsed_view_shows_which_text_runs_at_which_steps():
    from studio.web.prompt_view import make_prompt_preview

    preview = make_prompt_preview(Studio(device="cpu", cache_size=1))
    counter, _, _, body = preview("a [cat:dog:0.5] on a <mat>", "", [], "A1111", "tiny", 10)
    assert "Steps" in body and "<td>1–6</td><td>a cat on a &lt;mat&gt;</td>" in body
    assert "<td>7–10</td><td>a dog on a &lt;mat&gt;</td>" in body and "warning" not in body
    assert "schedule" not in preview("a cat", "", [], "A1111", "tiny", 10)[3]  # unedited: no table
