"""The page on a studio others can reach (`--host 0.0.0.0`), as two people behind one address use it:
each browser gets its own visitor cookie, generates, stops and keeps its history across a reload on a
laptop and on a phone, and neither can read or stop the other's work with the other's session id
(studio/web/visitors.py, studio/web/queue_guard.py)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from support.browser import ARTIFACTS, CHROMIUM, FLAGS, infotext, needs_chromium, set_number, wait_for
from support import running_app

pytestmark = needs_chromium
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browsers(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with running_app(tmp_path_factory, "--host", "0.0.0.0") as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        # Two people: two browser contexts (their own cookies and storage), one on a laptop, one on a phone.
        people = []
        for viewport in (LAPTOP, PHONE):
            page = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE).new_page()
            page.sessions = watch_sessions(page)
            page.goto(app.url)
            page.wait_for_selector("#prompt textarea", timeout=60_000)
            people.append(page)
        try:
            yield app, people
        finally:
            browser.close()


def watch_sessions(page) -> list[str]:
    """The page's Gradio session ids as they go over the wire (in queue joins)."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(json.loads(r.post_data)["session_hash"])
            if "/queue/join" in r.url and r.post_data else None)
    return seen


def visitor_cookie(page) -> str:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "studio-visitor"), "")


def test_two_people_at_one_address_each_generate_stop_and_keep_their_history(browsers):
    app, (laptop, phone) = browsers
    # Each browser got its own cookie, which the page's scripts cannot read (HttpOnly).
    assert visitor_cookie(laptop) and visitor_cookie(phone) and visitor_cookie(laptop) != visitor_cookie(phone)
    assert "studio-visitor" not in laptop.evaluate("document.cookie")
    for page, prompt in ((laptop, "the laptop's fox"), (phone, "the phone's owl")):
        page.fill("#prompt textarea", prompt)
        set_number(page, "Steps", 2)
        page.locator("#generate").scroll_into_view_if_needed()
        page.click("#generate")
        wait_for(lambda: prompt in infotext(page), timeout=180)
    ARTIFACTS.mkdir(exist_ok=True)
    laptop.screenshot(path=str(ARTIFACTS / "shared-laptop.png"), full_page=False)
    phone.screenshot(path=str(ARTIFACTS / "shared-phone.png"), full_page=False)
    # Stop on the phone ends the phone's long run; the laptop's page is untouched.
    set_number(phone, "Steps", 150)
    phone.click("#generate")
    wait_for(lambda: "Step" in phone.locator("#status").inner_text(), timeout=120)
    phone.click("#stop")
    wait_for(lambda: "Stopped at step" in phone.locator("#status").inner_text(), timeout=60)
    assert "the laptop's fox" in infotext(laptop)
    # A reload keeps each one's history (the phone's entries are signed for the phone's tab).
    phone.reload()
    phone.wait_for_selector("#prompt textarea", timeout=60_000)
    phone.click("#history button") if phone.locator("#history button").count() else phone.click("text=History")
    wait_for(lambda: phone.locator("#history-gallery img").count() == 1, timeout=60)


def test_the_neighbour_with_a_session_id_reads_nothing_and_stops_nothing(browsers):
    """The laptop's session id, read off a URL, opened by the phone's browser (same address, other
    cookie): refused, and the laptop's next Generate still runs to its image."""
    app, (laptop, phone) = browsers
    stolen = laptop.sessions[-1]
    answer = phone.evaluate("""async (url) => {
        const r = await fetch(url); return [r.status, await r.text()];
    }""", f"{app.url}gradio_api/queue/data?session_hash={stolen}")
    assert answer[0] == 403 and "another visitor" in json.loads(answer[1])["detail"]
    # Without any cookie (a plain HTTP client at the same address): refused as well.
    try:
        urllib.request.urlopen(f"{app.url}gradio_api/queue/data?session_hash={stolen}", timeout=30)
        raise AssertionError("the stream opened without the visitor's cookie")
    except urllib.error.HTTPError as refused:
        assert refused.code == 403
    laptop.fill("#prompt textarea", "the laptop again")
    laptop.click("#generate")
    wait_for(lambda: "the laptop again" in infotext(laptop), timeout=180)
