"""Dynamic prompts' settings, declared once (their block of the field table: studio/fields.py adds
`FIELDS`): the mode, a per-click setting as batch count is, and the templates the plan writes into each
request it resolved, under sd-dynamic-prompts' infotext keys (`Template`, `Negative Template`).

The templates are the plan's output, never an input: not on the page, not an API parameter, not restored
from a PNG (the prompt that comes back is the resolved one, so the same image is made again)."""

from __future__ import annotations

from ..field_spec import A1111, Field, Infotext

RANDOM, COMBINATORIAL = "random", "combinatorial"
MODES = (RANDOM, COMBINATORIAL)
MAX_COMBINATIONS = 64  # images one combinatorial Generate makes at most (the cost cap applies as well)


def _template(name: str, key: str, position: int, label: str) -> Field:
    return Field(name, "text", "", label, record=False, api=False,
                 help="written by the plan when the prompt had wildcards or choices",
                 infotext=(Infotext(key, position, read=lambda params: "", note="written, never restored"),),
                 a1111=A1111(None, note="the extension's infotext key; the API resolves the prompt as it does"))


FIELDS: tuple[Field, ...] = (
    Field("dynamic_prompts", "choice", RANDOM, "Dynamic prompts", choices=MODES, widget="radio", scope="run",
          record=False,
          help="{a|b} choices and __name__ wildcards: random picks one per image from its seed; combinatorial "
               f"makes every combination, one image each (at most {MAX_COMBINATIONS})",
          infotext=(Infotext(None, read=lambda params: RANDOM, note="restored as random (the prompt is resolved)"),),
          a1111=A1111(None, note="random, the extension's default: wildcards and choices resolve in txt2img and "
                                 "img2img too")),
    _template("prompt_template", "Template", 9_000, "Prompt template"),
    _template("negative_template", "Negative Template", 9_001, "Negative prompt template"),
)
