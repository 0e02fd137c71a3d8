"""The generated reference, `docs/reference.md`: the field table, the sampler tables, the server's
flags and the HTTP endpoints, each rendered from the code that declares it.

`python3 -m studio.docs` prints it and `python3 -m studio.docs --write` rewrites docs/reference.md and
studio/request_fields.py (the request's fields typed, studio/request_types.py);
tests/unit/test_reference_docs.py and test_request_types.py keep both equal to what is rendered. The renderers
take what they document as data; only `render` imports the web front doors (`studio.web`), when it
runs, never when this module is imported.
"""

from __future__ import annotations

import argparse
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, get_args
from unittest import mock

from . import options, samplers
from .families import FAMILIES
from .fields import FROM_MODEL, TABLE, Field, FieldTable
from .tasks import TASK_NAMES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
REGENERATE = "python3 -m studio.docs --write"


def _allowed(f: Field) -> str:
    if f.model_range:
        return "a multiple of 8 in the model's size range"
    if f.range is not None:
        low, high = f.range
        text = f"{low:g}..{high:g}" if f.kind == "float" else f"{int(low)}..{int(high)}"
        return text + f.range_note
    if f.choices is not None:
        return ", ".join(f"`{c}`" for c in f.choice_list())
    return {"text": "text", "bool": "true / false", "image": "an image", "model": "a preset, hub id, folder or "
            ".safetensors file", "loras": "[name, weight] pairs",
            "records": f"up to {f.items.max_items} {f.items.plural or f.items.noun + 's'} (below)" if f.items else ""
            }.get(f.kind, f.help or f.kind)


def _default(f: Field) -> str:
    if f.default is FROM_MODEL:
        return "the model's"
    if f.default is None:
        return "from the images" if f.name == "task" else "none"
    return f"`{list(f.default) if isinstance(f.default, tuple) else f.default}`" if f.default != "" else '`""`'


def _a1111(f: Field) -> str:
    """The field's key in A1111's `/sdapi/v1` requests, or how its callers get it instead."""
    spec = f.a1111
    if spec is None or spec.key is None:
        return f"({spec.note})" if spec is not None and spec.note else ""
    when = f" with `{spec.when}`" if spec.when else ""
    return f"`{spec.key}`{when}" + (f" ({spec.note})" if spec.note else "")


# Settings the page gathers in a panel of its own (studio/web/control_view.py), not one widget.
PANELS = {"controlnets": "the ControlNet panel", "image_prompts": "the Image prompts panel"}


def records_markdown(table: FieldTable = TABLE) -> str:
    """Each records field's items (a ControlNet unit, an image prompt): the fields their class declares."""
    parts = []
    for f in table:
        if f.items is None:
            continue
        lines = [f"### `{f.name}[i]`: {f.items.one} (`{f.items.cls.__module__}.{f.items.cls.__name__}`)", "",
                 "| field | type | default | allowed | infotext key | page | A1111 API |",
                 "|---|---|---|---|---|---|---|"]
        for p in f.items.fields:
            keys = ", ".join(spec.key for spec in p.infotext if spec.key)
            lines.append(f"| `{p.name}` | {p.kind} | {_default(p)} | {_allowed(p)} | {keys} | "
                         f"{p.label if p.widget else ''} | {_a1111(p)} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def table_markdown(table: FieldTable = TABLE) -> str:
    """The field table: every generation setting as `studio/fields.py` declares it."""
    lines = ["| field | type | default | allowed | tasks | families | infotext key | page | A1111 API |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in table:
        keys = ", ".join(spec.key or f"({spec.note})" for spec in f.infotext if spec.key or spec.note)
        tasks = "all" if set(f.tasks) == set(TASK_NAMES) else ", ".join(f.tasks)
        scope = " (per click)" if f.scope == "run" else ""
        page = f.label if f.widget and f.widget != "task" else ("the open tab" if f.widget == "task" else
                                                                PANELS.get(f.name, "API only" if f.api else "none: set by the studio"))
        families = "all" if f.families is None else ", ".join(f.families)
        lines.append(f"| `{f.name}` | {f.kind}{scope} | {_default(f)} | {_allowed(f)} | {tasks} | {families} | {keys} "
                     f"| {page} | {_a1111(f)} |")
    return "\n".join(lines)


# -- samplers ---------------------------------------------------------------------------------------

def sampler_tables_markdown() -> str:
    """One table per sampler registry (`studio/samplers.py`: SAMPLER_SETS), titled with the families
    that take it and the samplers a family narrows it to."""
    parts = []
    for kind in samplers.SAMPLER_SETS:
        families = [f for f in FAMILIES.values() if f.sampler_kind == kind]
        narrowed = "".join(f" ({f.title}: {', '.join(f.samplers)} only)" for f in families if f.samplers)
        title = f"### `{kind}` samplers: {', '.join(f.title for f in families)}{narrowed}"
        parts.append(f"{title}\n\n{samplers.sampler_table_markdown(kind)}")
    return "\n\n".join(parts)


# -- the HTTP endpoints -----------------------------------------------------------------------------

def _type_name(annotation: Any) -> str:
    """`Optional[int]`, `list[tuple[str, float]]`, `FileData`: module paths left out."""
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", inspect.formatannotation(annotation))


def generate_api_markdown(signature: inspect.Signature, outputs: Any, descriptions: Mapping[str, str],
                          results: Sequence[tuple[str, str]]) -> str:
    """`/generate`'s parameters (`studio/web/generate_api.py` types and describes them from the field table)
    and its updates' values, named and described as `view_api()` shows them."""
    lines = ["| parameter | type | default | description |", "|---|---|---|---|"]
    for p in signature.parameters.values():
        if p.name == "request":  # Gradio's own, not sent by clients
            continue
        lines.append(f"| `{p.name}` | `{_type_name(p.annotation)}` | `{p.default!r}` | {_cell(descriptions[p.name])} |")
    lines += ["", f"Each streamed update: `{_type_name(outputs)}`, named:", "",
              "| value | type | description |", "|---|---|---|"]
    lines += [f"| `{name}` | `{_type_name(kind)}` | {_cell(text)} |"
              for (name, text), kind in zip(results, get_args(outputs), strict=True)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text in a Markdown table cell: a `|` would end the cell, and `<lora:name:0.8>` read as HTML vanishes."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def a1111_routes_markdown(routes: Sequence[Any]) -> str:
    """A1111's `/sdapi/v1` routes (each with `.path` and `.methods`), in the order they are declared."""
    methods: dict[str, list[str]] = {}
    for route in routes:
        methods.setdefault(route.path, []).extend(sorted(route.methods))
    lines = ["| method | path |", "|---|---|"]
    lines += [f"| {', '.join(verbs)} | `{path}` |" for path, verbs in methods.items()]
    return "\n".join(lines)


# -- the page ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """What the reference reads from above the parts: the HTTP front doors. `render` gathers them; the
    renderers take them as data."""

    generate_signature: inspect.Signature
    generate_outputs: Any
    a1111_routes: Sequence[Any]
    generate_descriptions: Mapping[str, str]  # parameter name -> what view_api says of it
    generate_results: Sequence[tuple[str, str]]  # each update's values: name, description


def reference_markdown(sources: Sources) -> str:
    """docs/reference.md: every generated table, with a pointer to the page that explains it."""
    return "\n".join([
        "# Reference",
        "",
        (f"*Generated from the code by `studio/docs.py`: do not edit by hand; regenerate with `{REGENERATE}` "
         "(`tests/unit/test_reference_docs.py` checks it).*"),
        "",
        "## Settings: the field table",
        "",
        ("Every generation setting, as `studio/fields.py` declares it; explained in "
         "[settings.md](settings.md#settings-the-field-table)."),
        "",
        table_markdown(),
        "",
        "Records: the fields of each item of a list-valued setting, declared on its class (`part`).",
        "",
        records_markdown(),
        "",
        "## Samplers",
        "",
        "The sampler registries of `studio/samplers.py`; explained in [settings.md](settings.md#samplers).",
        "",
        sampler_tables_markdown(),
        "",
        "## Flags",
        "",
        ("`python3 app.py --help`, from the server-options table of `studio/options.py`, with the environment "
         "variables each default is read from (a flag given wins); explained in [settings.md](settings.md#flags)."),
        "",
        options.flags_markdown(),
        "",
        "## Endpoints",
        "",
        "### `/generate` (Gradio API)",
        "",
        ("Its parameters are the field table's (`studio/web/generate_api.py`), described as "
         "`gradio_client`'s `view_api()` shows them; explained in [api.md](api.md#http-api)."),
        "",
        generate_api_markdown(sources.generate_signature, sources.generate_outputs, sources.generate_descriptions,
                              sources.generate_results),
        "",
        "### A1111's API (`/sdapi/v1`)",
        "",
        "The routes of `studio/web/sdapi/routes.py`; explained in [a1111-api.md](a1111-api.md).",
        "",
        a1111_routes_markdown(sources.a1111_routes),
        "",
    ])


def render() -> str:
    """The reference as the code declares it now. The one function here that reaches above the parts:
    it imports the web front doors, when it runs."""
    from .web.sdapi.routes import build_router
    from .web.generate_api import OUTPUTS, RESULTS, api_signature, parameter_description

    # Declaring the routes calls nothing on the A1111 service behind them: a stand-in serves.
    router = build_router(mock.MagicMock(name="SdApi"), credentials=None)
    descriptions = {f.name: parameter_description(f) for f in TABLE.api}
    return reference_markdown(Sources(api_signature(), OUTPUTS, router.routes, descriptions, RESULTS))


# The request's fields typed for type checkers (studio/request_types.py renders it from the table).
REQUEST_FIELDS = ROOT / "studio" / "request_fields.py"


def main(argv: list[str] | None = None) -> None:
    from .request_types import fields_source

    cli = argparse.ArgumentParser(prog="python3 -m studio.docs", description="Print the generated reference "
                                  "(docs/reference.md), or rewrite it and studio/request_fields.py with --write.")
    cli.add_argument("--write", action="store_true", help=f"rewrite {REFERENCE.relative_to(ROOT)} and "
                     f"{REQUEST_FIELDS.relative_to(ROOT)}")
    args = cli.parse_args(argv)
    text = render()
    if args.write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        for path, content in ((REFERENCE, text), (REQUEST_FIELDS, fields_source(TABLE))):
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
