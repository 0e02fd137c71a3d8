"""The prompt as the page shows it before Generate: styles applied, token counts for the prompt and
the negative prompt, and the parsed view (warnings first, fragments coloured by weight)."""

from __future__ import annotations

import html
from typing import Any, Callable, Iterable

from .. import validation
from ..engine.interface import Engine
from ..errors import StudioError
from ..fields import TABLE
from ..styles import apply_styles
from .calls import as_gradio_error


def view_json(view: Any) -> dict:
    """A PromptView as the `/parse_prompt` API answers it."""
    return {
        "fragments": [{"text": text, "weight": round(weight, 4)} for text, weight in view.fragments],
        "chunk_tokens": list(view.chunk_tokens) if view.chunk_tokens is not None else None,
        "warnings": list(view.warnings),
        "token_limit": view.token_limit,
        "schedule": [{"first": first, "last": last, "text": text} for first, last, text in view.schedule],
    }


def make_parse_prompt(studio: Engine) -> Callable[..., dict]:
    """The handler behind `/parse_prompt`: the parsed view of a prompt, as JSON."""

    def parse_prompt(prompt: str, prompt_syntax: str = "A1111", model: str = TABLE["model"].default,
                     steps: int = 20) -> dict:
        """The prompt as the model will read it: fragments with their final weights, tokens in each
        75-token chunk (or of the encoder's limit), warnings, and where A1111's prompt editing or
        alternation changes it between steps, which text runs at which steps.

        Parameters:
            prompt: the prompt, in the syntax below
            prompt_syntax: "A1111" (weights, BREAK, [from:to:when], [a|b]) or "compel"
            model: the model whose encoder counts the tokens (a preset, hub id, folder or file)
            steps: the steps the schedule is worked out over
        Returns:
            view: {"fragments": [{"text", "weight"}...], "chunk_tokens": [...], "token_limit": n or null, "warnings": [...], "schedule": [{"first", "last", "text"}...] (empty when unedited)}
        """
        try:
            view = studio.describe_prompt(prompt or "", validation.text("model", model), prompt_syntax, steps)
        except StudioError as exc:
            raise as_gradio_error(exc) from None
        return view_json(view)

    return parse_prompt


def token_counter(view: dict | None, what: str = "Tokens") -> str:
    """A1111's counter: tokens used in each 75-token chunk (or of the encoder's limit)."""
    view = view if isinstance(view, dict) else {}
    counts = view.get("chunk_tokens")
    counts = counts if isinstance(counts, list) and all(isinstance(c, int) for c in counts) else None
    warnings = len(view.get("warnings") or []) if isinstance(view.get("warnings"), list) else 0
    note = f" · ⚠ {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    if counts is None:
        return f"{what}: counted when the model has loaded{note}"
    limit = view.get("token_limit")
    if isinstance(limit, int) and not isinstance(limit, bool):  # one sequence (FLUX's T5), no chunks
        return f"{what}: {sum(counts)}/{limit}{note}"
    chunks = " · ".join(f"{c}/75" for c in counts) or "0/75"
    many = f" ({len(counts)} chunks)" if len(counts) > 1 else ""
    return f"{what}: {chunks}{many}{note}"


def parsed_html(view: dict, title: str) -> str:
    """One prompt's parsed view: its warnings first, then each fragment with its weight, green when
    weighted up and red when down."""
    parts = [f"<p><b>{html.escape(title)}</b></p>"]
    warnings = view.get("warnings") or []
    parts += [f'<p class="warning">⚠ {html.escape(str(w))}</p>' for w in warnings]
    fragments = []
    for fragment in view.get("fragments") or []:
        weight = float(fragment.get("weight", 1.0))
        css = "weight-up" if weight > 1.0 else "weight-down" if weight < 1.0 else ""
        shown = html.escape(str(fragment.get("text", "")))
        label = f" <sub>×{weight:g}</sub>" if weight != 1.0 else ""
        fragments.append(f'<span class="{css}">{shown}{label}</span>')
    parts.append('<p class="fragments">' + ("".join(fragments) or "<i>empty</i>") + "</p>")
    schedule = view.get("schedule") or []
    if schedule:  # prompt editing / alternation: the fragments above are the first step's
        rows = "".join(f"<tr><td>{row['first']}{'–' + str(row['last']) if row['last'] != row['first'] else ''}</td>"
                       f"<td>{html.escape(str(row['text'])) or '<i>empty</i>'}</td></tr>" for row in schedule)
        parts.append(f'<table class="schedule"><tr><th>Steps</th><th>Text (prompt editing)</th></tr>{rows}</table>')
    return "\n".join(parts)


def make_prompt_preview(studio: Engine) -> Callable[..., tuple[str, str, str, str]]:
    """The page's prompt preview: (prompt counter, negative counter, final prompts with styles,
    parsed view HTML) for what Generate would send now."""
    parse = make_parse_prompt(studio)

    def preview(prompt: str, negative: str, names: Iterable[str] | None, syntax: str, model: str,
                steps: Any = 20) -> tuple:
        try:
            final, final_negative = apply_styles(prompt or "", negative or "", list(names or []))
        except StudioError as exc:
            raise as_gradio_error(exc) from None
        steps = int(steps) if isinstance(steps, (int, float)) and 1 <= steps <= 150 else 20  # the slider's, if set
        views = parse(final, syntax, model, steps), parse(final_negative, syntax, model, steps)
        title = "Prompt as sent (styles applied)" if names else "Prompt as sent"
        shown = (f'<p><b>{title}</b></p><p class="as-sent">{html.escape(final) or "<i>empty</i>"}</p>'
                 f'<p><b>Negative</b></p><p class="as-sent">{html.escape(final_negative) or "<i>empty</i>"}</p>')
        body = parsed_html(views[0], "Prompt, parsed") + parsed_html(views[1], "Negative prompt, parsed")
        return (token_counter(views[0]), token_counter(views[1], "Negative tokens"), shown, body)

    return preview
