"""The registries import without torch: a setting is declared, listed and checked without loading it.

Each check runs in a fresh interpreter (another test of this run may have imported torch already).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "compel")
# The field table and everything it reads; the request, its checks and its typed fields; infotext, PNG Info, docs.
LIGHT_MODULES = (
    "studio.fields", "studio.families", "studio.families.sd", "studio.families.sd3", "studio.families.flux",
    "studio.families.zimage", "studio.samplers", "studio.prompts", "studio.validation", "studio.infotext",
    "studio.pnginfo", "studio.docs", "studio.request", "studio.models", "studio.styles", "studio.previews",
    "studio.tasks", "studio.tasks.hires", "studio.control.units", "studio.control.image_prompts",
    "studio.request_types", "studio.request_fields",
)


def heavy_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_registries_import_without_torch():
    assert heavy_after("\n".join(f"import {name}" for name in LIGHT_MODULES)) == []


def test_a_request_is_checked_and_written_as_infotext_without_torch():
    code = """
from studio import fields, samplers
from studio.families import FAMILIES
from studio.infotext import format_infotext, parse_infotext, request_fields
from studio.request import GenerationRequest

request = GenerationRequest(prompt="a (red:1.2) cube", model="sd15", sampler="Euler a", steps=12)
assert request.schedule == "Automatic" and request.width == FAMILIES["sd15"].size.default
assert "steps" in fields.TABLE and "Euler a" in samplers.sampler_names()
found, _ = request_fields(parse_infotext(format_infotext(request)))
assert found["steps"] == 12, found
"""
    assert heavy_after(code) == []
