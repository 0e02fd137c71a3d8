"""What the browser tests share: Debian's Chromium and its flags, waits that poll the page with
generous bounds (never a fixed sleep), and readers and setters of the page's controls by label or id."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from . import ROOT, running_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"

# Skipped on a developer machine without chromium; in CI (which installs it) a missing browser fails.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it with apt-get)",
)


@contextlib.contextmanager
def studio_page(tmp_path_factory, *flags: str, width: int = 1280, height: int = 1000):
    """The studio started with `flags` and one page of it open in Chromium (`page.app` is the app)."""
    from playwright.sync_api import sync_playwright

    with running_app(tmp_path_factory, *flags) as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        # One context: its tabs (page.context.new_page()) share the browser's connections, as a person's do.
        page = browser.new_context(viewport={"width": width, "height": height}).new_page()
        page.goto(app.url)
        page.wait_for_selector("#prompt textarea", timeout=60_000)
        page.app = app
        try:
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def phone_tab(page, width: int = 390, height: int = 844):
    """A second tab of the same browser at a phone's size, on the same studio, closed afterwards."""
    phone = page.context.new_page()
    phone.set_viewport_size({"width": width, "height": height})
    try:
        phone.goto(page.app.url)
        phone.wait_for_selector("#prompt textarea", timeout=60_000)
        yield phone
    finally:
        phone.close()


def open_task_tab(page, title: str) -> None:
    """Open a task tab as a person does: its button, or on a narrow screen Gradio's "More tabs" (…) menu
    where the tabs that do not fit wait."""
    visible = page.locator("#tasks [role=tab]", has_text=title)
    if visible.count():
        visible.first.click()
    else:
        page.locator("#tasks button[aria-label='More tabs']").click()
        page.locator("#tasks .overflow-dropdown button", has_text=title).click()
    wait_for(lambda: page.locator("#tasks button[aria-selected='true']").inner_text() == title)


def shot(page, name: str, full_page: bool = False) -> None:
    """A screenshot kept in test-artifacts/ (CI keeps the folder): what a person would have seen."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def set_number(page, label: str, value: int) -> None:
    box = page.locator(f"input[aria-label='number input for {label}']")
    box.fill(str(value))
    box.press("Enter")


def infotext(page) -> str:
    return page.locator("#infotext textarea").input_value()


def wait_for(condition, timeout: float = 60.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting in the browser")


def wait_stable(read, timeout: float = 60.0, every: float = 0.25):
    """A value once it has stopped changing (and is not None)."""
    previous = object()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value is not None and value == previous:
            return value
        previous = value
        time.sleep(every)
    raise AssertionError("the value kept changing")


def preview_src(page) -> str | None:
    img = page.locator("#result img")
    return img.first.get_attribute("src") if img.count() else None


def number(page, label: str) -> float:
    return float(page.locator(f"input[aria-label='number input for {label}']").input_value())


def pick(page, elem_id: str, *labels: str) -> None:
    """Choose the dropdown option shown with any of these labels."""
    page.click(f"#{elem_id} input")
    page.locator(", ".join(f"li[role=option][aria-label='{label}']" for label in labels)).first.click()


def checked(page, elem_id: str) -> bool:
    return page.locator(f"#{elem_id} input[type=checkbox]").is_checked()


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + min(box["height"], 60) <= size["height"] \
        and box["x"] >= 0 and box["x"] + min(box["width"], 60) <= size["width"]


def load_into_editor(page, path) -> None:
    """A picture into the Inpaint editor. Its canvas starts asynchronously (it shows its zoom level once
    it has): an upload before that is dropped, so a dropped upload is retried rather than waited on."""
    import re

    editor = page.locator("#inpaint-editor")
    editor.wait_for(state="visible")
    wait_for(lambda: re.search(r"\d+%", editor.inner_text()), timeout=60)
    for attempt in range(3):
        page.locator("#inpaint-editor input[type=file]").set_input_files(str(path))
        try:
            wait_for(lambda: "Upload an image" not in editor.inner_text(), timeout=20)
            return
        except AssertionError:
            if attempt == 2:
                raise
