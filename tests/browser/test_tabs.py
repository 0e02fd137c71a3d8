"""Several tabs of one browser, as an artist keeps them: each has its own history across a reload,
and the queue position and Stop land at once however many tabs wait (a browser opens at most six connections to a plain
http:// host, all tabs together: studio/web/connections.py)."""

from __future__ import annotations

import json
import re

import pytest

from support.browser import infotext, needs_chromium, set_number, studio_page, wait_for

pytestmark = needs_chromium
TABS = 6


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with studio_page(tmp_path_factory) as page:
        yield page


def status(tab) -> str:
    return tab.locator("#status").inner_text()


def open_tab(page, width: int = 1280, height: int = 1000):
    tab = page.context.new_page()
    tab.set_viewport_size({"width": width, "height": height})
    tab.goto(page.app.url)
    tab.wait_for_selector("#prompt textarea", timeout=60_000)
    return tab


def test_place_and_stop_land_at_once_with_six_tabs_waiting_and_their_requests_never_run(page):
    tabs = [page] + [open_tab(page) for _ in range(TABS - 1)]
    try:
        page.fill("#prompt textarea", "the long run in the first tab")
        set_number(page, "Steps", 150)
        set_number(page, "Width", 256)
        set_number(page, "Height", 256)
        page.click("#generate")
        wait_for(lambda: "Step" in status(page), timeout=120)
        for n, tab in enumerate(tabs[1:], 1):
            tab.fill("#prompt textarea", f"tab {n} waits")
            set_number(tab, "Steps", 2)
            tab.click("#generate")
        last, middle = tabs[-1], tabs[2]
        # Every connection the browser allows is held by the tabs' pending Generates now; each waiting
        # tab still says its place (over its WebSocket), the last one behind everyone.
        for tab in tabs[1:]:
            wait_for(lambda: re.search(r"Waiting: \d+ ahead", status(tab)), timeout=30)
        assert "Waiting: 5 ahead" in status(last)
        last.click("#stop")
        wait_for(lambda: "Removed from the queue" in status(last), timeout=15)
        middle.click("#stop")
        wait_for(lambda: "Removed from the queue" in status(middle), timeout=15)
        page.click("#stop")
        wait_for(lambda: "Stopped at step" in status(page), timeout=30)
        for n, tab in enumerate(tabs[1:], 1):  # the others run, one after another
            if tab not in (last, middle):
                wait_for(lambda: f"tab {n} waits" in infotext(tab), timeout=180)
        assert "waits" not in infotext(last) and "waits" not in infotext(middle)  # stopped before starting
        assert "Removed from the queue" in status(last)
    finally:
        for tab in tabs[1:]:
            tab.close()


def test_the_result_area_describes_one_image_during_a_run_and_after_a_batch(page):
    page.fill("#prompt textarea", "first picture")
    set_number(page, "Steps", 2)
    page.click("#generate")
    wait_for(lambda: "first picture" in infotext(page), timeout=120)
    page.fill("#prompt textarea", "second picture")
    set_number(page, "Steps", 150)
    page.click("#generate")
    wait_for(lambda: "Step" in status(page), timeout=120)
    page.click("#generate")  # a second click while this tab's run goes on: said, not silently dropped
    wait_for(lambda: "Already generating in this tab" in (page.locator("#send-note").inner_text()
                                                          if page.locator("#send-note").count() else ""))
    assert page.locator("#generate").get_attribute("aria-busy") == "true"
    assert infotext(page) == "" and page.locator("#seed_used input, #seed_used textarea").first.input_value() == ""
    page.click("#stop")
    wait_for(lambda: "Stopped at step" in status(page), timeout=30)
    assert "first picture" not in infotext(page)  # no old image's settings under the new preview
    set_number(page, "Steps", 2)
    set_number(page, "Batch count", 2)
    page.click("#generate")
    wait_for(lambda: "Batch 2/2 done" in status(page), timeout=180)
    shown = page.locator("#seed_used input, #seed_used textarea").first.input_value()
    assert re.search(rf"shown: seed {shown}\b", status(page)) and f"Seed: {shown}," in infotext(page)
    set_number(page, "Batch count", 1)


def test_each_tab_keeps_its_own_history_across_a_reload(page):
    a, b = open_tab(page), open_tab(page)
    try:
        for tab, prompt in ((a, "only in tab a"), (b, "only in tab b")):
            tab.fill("#prompt textarea", prompt)
            set_number(tab, "Steps", 2)
            tab.click("#generate")
            wait_for(lambda: prompt in infotext(tab), timeout=120)
            wait_for(lambda: ".png" in (tab.evaluate("sessionStorage.getItem('studio-history')") or ""))
        a.reload()
        a.wait_for_selector("#prompt textarea", timeout=60_000)
        a.click("#history button") if a.locator("#history button").count() else a.click("text=History")
        wait_for(lambda: a.locator("#history-gallery img").count() == 1)
        a.locator("#history-gallery img").first.click()
        wait_for(lambda: "only in tab a" in a.locator("#history-text textarea").input_value())
        assert b.evaluate("sessionStorage.getItem('studio-history')") != a.evaluate(
            "sessionStorage.getItem('studio-history')")
        # Tab a's entries copied into tab b's storage open nothing there: they were signed for tab a.
        copied = a.evaluate("sessionStorage.getItem('studio-history')")
        b.evaluate("(entries) => sessionStorage.setItem('studio-history', entries)", copied)
        b.reload()
        b.wait_for_selector("#prompt textarea", timeout=60_000)
        a_path = json.loads(copied)[0].partition(":")[2]
        b.fill("#prompt textarea", "tab b after the copy")
        b.click("#generate")
        wait_for(lambda: "tab b after the copy" in infotext(b), timeout=120)
        wait_for(lambda: a_path not in (b.evaluate("sessionStorage.getItem('studio-history')") or a_path))
        b.click("#history button") if b.locator("#history button").count() else b.click("text=History")
        wait_for(lambda: b.locator("#history-gallery img").count() >= 1)
        assert b.locator("#history-gallery img").count() == 1  # b's new image only
    finally:
        a.close()
        b.close()
