"""Restore fits the model in a real browser: an A1111 PNG of 512x768 from a checkpoint this studio
lacks, sent to the form on `tiny` (sizes up to 512), is fitted as a model switch fits it, with a note
naming each change and each key the studio does not use; Generate then works, and a refused value
is named in the status line, never as Gradio's bare range toast."""

from __future__ import annotations

import pytest

from support.browser import infotext, needs_chromium, number, pick, set_number, studio_page, wait_for

pytestmark = needs_chromium

TEXT = ("a tall cat from elsewhere\nNegative prompt: dog\nSteps: 2, Sampler: Euler a, Schedule type: Simple, "
        "CFG scale: 6, Seed: 9, Size: 512x768, Model hash: 0123abcdef, Model: someone-elses-mix, "
        "Variation seed: 123, Variation seed strength: 0.3, ENSD: 31337, Version: v1.9.4")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with studio_page(tmp_path_factory, width=1400, height=1000) as page:
        yield page


def toasts(page) -> list[str]:
    return page.locator(".toast-body").all_inner_texts()


def test_a_512x768_a1111_png_is_fitted_to_the_tiny_model_and_generates(page, tmp_path):
    from PIL import Image, PngImagePlugin

    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", TEXT)
    png = tmp_path / "tall.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=chunks)
    page.click("#png-info button") if page.locator("#png-info button").count() else page.click("text=PNG Info")
    page.locator("#png-file input[type=file]").set_input_files(str(png))
    wait_for(lambda: "a tall cat" in page.locator("#png-text textarea").input_value())
    page.click("#send-to-form")
    note = page.locator("#png-note")
    wait_for(lambda: "height 768 → 512" in note.inner_text())
    text = note.inner_text()
    assert "someone-elses-mix" in text and "ENSD: 31337" in text and "Variation seed" not in text  # read: it runs
    assert "Schedule type Simple" in text
    wait_for(lambda: number(page, "Height") == 512 and number(page, "Width") == 512)
    set_number(page, "Height", 64)  # the fitted width goes through Generate; 512x512 is minutes on a CPU
    wait_for(lambda: number(page, "Height") == 64)
    page.click("#generate")
    wait_for(lambda: "a tall cat" in infotext(page), timeout=180)
    assert "Size: 512x64" in infotext(page) and "Seed: 9," in infotext(page)
    assert "Variation seed: 123, Variation seed strength: 0.3" in infotext(page)
    assert not any("greater than maximum" in t for t in toasts(page))


def test_a_model_switch_fits_the_form_updates_the_header_and_a_refusal_names_its_field(page):
    set_number(page, "Width", 200)
    wait_for(lambda: number(page, "Width") == 200)
    pick(page, "model", "tiny-flux", "tiny-flux ● loaded")
    note = page.locator("#model-note")
    wait_for(lambda: "width 200 → 192" in note.inner_text() and "cfg_scale 6 → 3.5" in note.inner_text())
    wait_for(lambda: "tiny-flux" in page.locator("#notice").inner_text())
    assert page.locator("#aspect input").input_value() == ""  # 192x512 is none of the presets
    set_number(page, "Width", 200)  # not a multiple of 16: Generate refuses it, naming the field
    page.fill("#prompt textarea", "an odd width")
    page.click("#generate")
    wait_for(lambda: "width: 200" in page.locator("#status").inner_text())
    assert not any("greater than maximum" in t or "less than minimum" in t for t in toasts(page))
    pick(page, "model", "tiny", "tiny ● loaded")
    wait_for(lambda: "offline tiny model" in page.locator("#notice").inner_text())
    set_number(page, "Width", 128)
    set_number(page, "Height", 128)
    wait_for(lambda: page.locator("#aspect input").input_value() == "1:1")
