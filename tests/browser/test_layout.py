"""The page where an artist works, in Chromium at a desktop's and a phone's sizes (issue 26).

On a desktop the result block (Generate, Stop, the status, the picture) stays in view wherever the
settings are scrolled, with the Inpaint tab or ControlNet open; on a phone the blocks stack as
prompt, Generate, result, settings, and the page stays short. Every send brings what it changed into
view with a note that says so; Generate says it is busy until its run ends; the result has download
and fullscreen buttons. Screenshots of each size go to test-artifacts/.
"""

from __future__ import annotations

import pytest

from support.browser import in_view, infotext, needs_chromium, set_number, shot, studio_page, wait_for

pytestmark = needs_chromium

DESKTOPS = [(1920, 1080), (1400, 1000), (1024, 768)]
PHONE = (420, 900)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with studio_page(tmp_path_factory, width=1400, height=1000) as page:
        yield page


def open_page(page, width: int, height: int):
    """Another page of the same app at this size, its model loaded."""
    other = page.context.browser.new_page(viewport={"width": width, "height": height})
    other.goto(page.app.url)
    other.wait_for_selector("#prompt textarea", timeout=60_000)
    wait_for(lambda: other.locator("#token-count").inner_text().startswith("Tokens: 0/75"), timeout=120)
    return other


def generate(page, prompt: str, steps: int = 2, size: int = 128) -> None:
    page.fill("#prompt textarea", prompt)
    set_number(page, "Steps", steps)
    set_number(page, "Width", size)
    set_number(page, "Height", size)
    page.click("#generate")
    wait_for(lambda: prompt in infotext(page), timeout=180)


def open_accordion(page, elem_id: str, inside: str) -> None:
    """Open an accordion (once) and wait for something inside it to show."""
    if not page.locator(inside).first.is_visible():
        page.locator(f"#{elem_id} button").first.click()  # the accordion's title
    wait_for(lambda: page.locator(inside).first.is_visible())


def result_in_view(page) -> bool:
    return in_view(page, "#generate") and in_view(page, "#stop") and in_view(page, "#status")


def scroll_to(page, selector: str) -> None:
    page.locator(selector).first.scroll_into_view_if_needed()
    page.evaluate("(s) => document.querySelector(s).scrollIntoView({block: 'start'})", selector)


@pytest.mark.parametrize("width, height", DESKTOPS)
def test_on_a_desktop_the_result_stays_in_view_wherever_the_settings_scroll(page, width, height):
    other = open_page(page, width, height)
    try:
        generate(other, f"kept in view at {width} px")
        other.evaluate("window.scrollBy(0, 700)")
        assert result_in_view(other), "scrolled 700 px"
        scroll_to(other, "#more-settings")
        assert result_in_view(other), "the last settings accordion"
        other.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        assert result_in_view(other), "the end of the page"

        other.evaluate("window.scrollTo(0, 0)")
        other.get_by_role("tab", name="Inpaint").click()
        wait_for(lambda: other.locator("#inpaint-editor").is_visible())
        scroll_to(other, "#inpaint-editor")
        assert result_in_view(other), "the Inpaint tab"
        other.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        assert result_in_view(other), "the Inpaint tab, the end of the page"
        shot(other, f"layout-{width}x{height}-inpaint.png")
        other.get_by_role("tab", name="Text to image").click()

        open_accordion(other, "controlnet", "#cn-map-0")
        for place in ("#cn-image-0", "#cn-map-0", "#more-settings"):
            scroll_to(other, place)
            assert result_in_view(other), f"ControlNet open, at {place}"
        assert in_view(other, "#result")
        shot(other, f"layout-{width}x{height}-controlnet.png")
    finally:
        other.close()


def test_on_a_phone_the_blocks_stack_and_the_page_stays_short(page):
    other = open_page(page, *PHONE)
    try:
        start = other.evaluate("document.body.scrollHeight")
        y = {s: other.locator(s).first.bounding_box()["y"]
             for s in ("#prompt", "#generate", "#result", "#settings-block")}
        assert y["#prompt"] < y["#generate"] < y["#result"] < y["#settings-block"], y
        # The last line says where the work runs (this studio's device; every replica's on a cluster).
        wait_for(lambda: other.locator("#runs-on").inner_text().startswith("Runs on cpu"))
        assert other.locator("#runs-on").bounding_box()["y"] > y["#settings-block"]
        # The size row wraps to whole lines: width and height side by side, the swap button beside Aspect.
        boxes = {s: other.locator(s).bounding_box() for s in ("#width", "#height", "#aspect", "#swap-size")}
        assert abs(boxes["#width"]["y"] - boxes["#height"]["y"]) < 2
        assert abs((boxes["#aspect"]["y"] + boxes["#aspect"]["height"])
                   - (boxes["#swap-size"]["y"] + boxes["#swap-size"]["height"])) < 24
        shot(other, "layout-420x900.png", full_page=True)

        open_accordion(other, "controlnet", "#cn-map-0")
        canvas, control_map = other.locator("#cn-image-0").bounding_box(), other.locator("#cn-map-0").bounding_box()
        assert abs(canvas["y"] - control_map["y"]) < 2 and canvas["height"] <= 240  # side by side, smaller
        with_controlnet = other.evaluate("document.body.scrollHeight")
        shot(other, "layout-420x900-controlnet.png", full_page=True)
        # Measured: 2,517 px at the start and 4,282 px with ControlNet open before issue 26; 2,225 and
        # about 3,450 after; 2,377 and 3,661 with issue 31's Detailer and Restore faces panels (closed:
        # about 50 px each) and five sends in two rows; issue 32's X/Y/Z panel (closed) and the embeddings
        # row took it to 2,596, so LoRA and embeddings went behind one closed panel: 2,293.
        assert start < 2_400 and with_controlnet < 3_700, (start, with_controlnet)

        # A batch: its images a grid without a scroller of its own.
        other.fill("#prompt textarea", "a batch on a phone")
        set_number(other, "Steps", 2)
        set_number(other, "Width", 64)
        set_number(other, "Height", 64)
        set_number(other, "Batch size", 4)
        other.click("#generate")
        wait_for(lambda: other.locator("#gallery .gallery-item").count() == 4, timeout=180)
        scrollers = other.evaluate("""() => [...document.querySelectorAll('#gallery *')].filter(
            (e) => e.scrollHeight > e.clientHeight + 1 && getComputedStyle(e).overflowY !== 'visible'
                   || e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible').length""")
        assert scrollers == 0
        items = other.locator("#gallery .gallery-item")
        assert abs(items.nth(0).bounding_box()["y"] - items.nth(3).bounding_box()["y"]) < 2  # one row of four
        other.locator("#gallery").scroll_into_view_if_needed()
        shot(other, "layout-420x900-batch.png")
    finally:
        other.close()


@pytest.mark.parametrize("width, height", [(1400, 1000), PHONE])
def test_a_send_shows_where_it_landed(page, width, height):
    other = open_page(page, width, height)
    try:
        generate(other, f"sent on at {width} px")
        other.locator("#send-img2img").scroll_into_view_if_needed()
        other.click("#send-img2img")
        wait_for(lambda: other.locator("#init_image img").count() > 0)
        wait_for(lambda: "Sent to Image to image" in note(other) and in_view(other, "#tasks"))
        shot(other, f"layout-{width}x{height}-sent-img2img.png")

        other.evaluate("window.scrollTo(0, 0)")
        other.click("#send-inpaint")
        wait_for(lambda: "Sent to Inpaint" in note(other) and in_view(other, "#tasks"))
        assert other.get_by_role("tab", name="Inpaint").get_attribute("aria-selected") == "true"

        # PNG Info, at the end of the settings: the form it fills is far above.
        saved = sorted(page.app.outputs.glob("*/*.png"))
        open_accordion(other, "png-info", "#png-file")
        other.locator("#png-file input[type=file]").set_input_files(str(saved[-1]))
        wait_for(lambda: "Seed:" in other.locator("#png-text textarea").input_value())
        other.fill("#prompt textarea", "something else")
        other.locator("#send-to-form").scroll_into_view_if_needed()
        assert not in_view(other, "#prompt")
        other.click("#send-to-form")
        wait_for(lambda: other.locator("#prompt textarea").input_value().startswith("sent on at"))
        wait_for(lambda: "Sent to the form" in note(other) and in_view(other, "#prompt"))
        shot(other, f"layout-{width}x{height}-sent-form.png")
    finally:
        other.close()


def note(page) -> str:
    """The text of the note a send shows while it is in view, else "" (read at once: it goes away by itself)."""
    return page.evaluate("""() => {
      const note = document.querySelector('#send-note');
      if (!note) return '';
      const box = note.getBoundingClientRect();
      const seen = box.height > 0 && box.top >= 0 && box.bottom <= innerHeight && box.left >= 0 && box.right <= innerWidth;
      return seen ? note.innerText : '';
    }""")


def test_restore_with_nothing_picked_stays_put(page):
    other = open_page(page, *PHONE)
    try:
        open_accordion(other, "history", "#restore")
        other.locator("#restore").scroll_into_view_if_needed()
        other.click("#restore")
        wait_for(lambda: "Pick an image in the history first" in other.locator("#history-note").inner_text())
        assert in_view(other, "#history-note") and other.locator("#send-note").count() == 0
    finally:
        other.close()


def test_generate_says_it_is_busy_until_its_run_ends_and_the_result_downloads(page):
    other = open_page(page, 1400, 1000)
    try:
        other.fill("#prompt textarea", "a busy button")
        set_number(other, "Steps", 60)
        set_number(other, "Width", 128)
        set_number(other, "Height", 128)
        assert other.locator("#generate").get_attribute("aria-busy") != "true"
        other.click("#generate")
        label = "getComputedStyle(document.querySelector('#generate'), '::after').content"
        wait_for(lambda: other.locator("#generate").get_attribute("aria-busy") == "true")
        assert "Generating" in other.evaluate(label)
        shot(other, "layout-busy.png")
        wait_for(lambda: "a busy button" in infotext(other), timeout=180)
        wait_for(lambda: other.locator("#generate").get_attribute("aria-busy") == "false")
        assert other.evaluate(label) in ("none", "normal")
        # The result: download and fullscreen.
        assert other.locator("#result button[aria-label*='ownload'], #result a[download]").count() >= 1
        assert other.locator("#result button[aria-label*='ullscreen']").count() >= 1
    finally:
        other.close()
