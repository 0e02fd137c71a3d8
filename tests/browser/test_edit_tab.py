"""The Edit tab as an artist uses it, on the tiny offline FLUX.2 Klein: generate, send the result to
Edit, add a second picture from a file, say what to change, Generate; the infotext names both pictures;
a History image joins them.
On a phone the four picture slots fit the width. A model that does not edit is refused by name in the
status, and the page keeps serving."""

from __future__ import annotations

import pytest
from PIL import Image

from support.browser import infotext, needs_chromium, open_task_tab, phone_tab, pick, shot, studio_page, wait_for

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with studio_page(tmp_path_factory, "--model", "tiny-klein") as page:
        yield page


def status(page) -> str:
    return page.locator("#status").inner_text()


def finished(page) -> str:
    return wait_for(lambda: ((s := status(page)).startswith("Done") or "⚠" in s) and s, timeout=180)


def test_send_a_result_to_edit_add_a_picture_and_edit_with_both(page, tmp_path):
    page.fill("#prompt textarea", "a lighthouse")
    page.click("#generate")
    assert finished(page).startswith("Done")
    page.click("#send-edit")
    wait_for(lambda: page.locator("#reference-0 img").count() > 0)
    assert page.locator("#tasks button[aria-selected='true']").inner_text() == "Edit"
    picture = tmp_path / "blue.png"
    Image.new("RGB", (96, 64), (30, 30, 200)).save(picture)
    page.locator("#reference-1 input[type=file]").set_input_files(str(picture))
    wait_for(lambda: page.locator("#reference-1 img").count() > 0)
    page.fill("#prompt textarea", "make it night")
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    text = infotext(page)
    assert text.startswith("make it night") and "References: \"" in text and "96x64\"" in text
    shot(page, "edit-tab-laptop.png")
    # A History image goes to the first empty slot: the third.
    page.click("#history button") if page.locator("#history button").count() else page.click("text=History")
    wait_for(lambda: page.locator("#history-gallery img").count() >= 2)
    page.locator("#history-gallery img").first.click()
    wait_for(lambda: "make it night" in page.locator("#history-text textarea").input_value())
    page.click("#history-send-edit")
    wait_for(lambda: page.locator("#reference-2 img").count() > 0)
    assert page.locator("#reference-3 img").count() == 0
    # An edit-only model opens its tab when picked (from Text to image here).
    page.get_by_role("tab", name="Text to image").click()
    pick(page, "model", "tiny-qwen-edit")
    wait_for(lambda: page.locator("#tasks button[aria-selected='true']").inner_text() == "Edit")


def test_on_a_phone_the_picture_slots_fit_and_a_model_that_does_not_edit_is_named(page, tmp_path):
    with phone_tab(page) as phone:
        open_task_tab(phone, "Edit")
        row = phone.locator("#reference-row")
        row.scroll_into_view_if_needed()
        box = row.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1
        shot(phone, "edit-tab-phone.png")
        path = tmp_path / "red.png"
        Image.new("RGB", (64, 64), (200, 30, 30)).save(path)
        phone.locator("#reference-0 input[type=file]").set_input_files(str(path))
        wait_for(lambda: phone.locator("#reference-0 img").count() > 0)
        pick(phone, "model", "tiny")
        phone.fill("#prompt textarea", "make it night")
        phone.click("#generate")
        said = finished(phone)
        assert "⚠ task: 'edit'" in said and "does not edit by instruction" in said and "FLUX.2 Klein" in said
        wait_for(lambda: phone.locator("#generate").inner_text() == "Generate")  # the button is free again
