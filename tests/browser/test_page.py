"""The page in a real browser: headless Chromium (Debian's) driven by Playwright, as an artist uses it.

Type a prompt, Generate, watch distinct live previews arrive, get the final image and its infotext;
press Stop mid-run and see it stop; load a PNG in PNG Info and send it to the form. A screenshot of
the finished page is saved to test-artifacts/.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request

import pytest

from support.browser import (ARTIFACTS, checked, in_view, infotext, load_into_editor, needs_chromium, number, pick,
                             preview_src,
                             set_number, studio_page, wait_for, wait_stable)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with studio_page(tmp_path_factory, "--preview-fps", "30") as page:
        yield page


@pytest.fixture(autouse=True)
def back_to_text_to_image(request):
    """Each test starts on the Text to image tab, whatever the one before left."""
    page = request.getfixturevalue("page")
    tab = page.get_by_role("tab", name="Text to image")
    if tab.count() and tab.get_attribute("aria-selected") != "true":
        tab.click()
    yield


def generate(page, prompt: str, shot: str) -> str:
    """Type the prompt, click Generate, wait for its infotext (a screenshot of the page either way)."""
    page.fill("#prompt textarea", prompt)
    page.click("#generate")
    try:
        return wait_for(lambda: prompt in infotext(page) and infotext(page))
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)


def test_generate_shows_live_previews_then_the_image_and_infotext(page):
    page.fill("#prompt textarea", "a lighthouse at dusk")
    set_number(page, "Steps", 40)
    set_number(page, "Width", 128)
    set_number(page, "Height", 128)
    page.click("#generate")
    seen = set()
    deadline = time.monotonic() + 120
    while "a lighthouse at dusk" not in infotext(page) and time.monotonic() < deadline:
        src = preview_src(page)
        if src and ".png" not in src:  # live previews (JPEG); the final image is the PNG
            seen.add(src)
        time.sleep(0.03)
    assert "Steps: 40" in infotext(page) and "Size: 128x128" in infotext(page)
    assert len(seen) >= 3, f"only {len(seen)} distinct previews"
    assert not page.locator("#gallery").is_visible()  # one image: the result area shows it, no gallery
    # The preview turned into the final image (the PNG, not a JPEG preview), at its own size.
    wait_for(lambda: (src := preview_src(page)) and ".png" in src)
    box = page.locator("#result img").first.bounding_box()
    assert box["width"] <= 128 + 1 and box["height"] <= 128 + 1  # never blown up
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "studio-page.png"), full_page=True)


def test_stop_stops_the_run_and_the_next_generate_works(page):
    page.fill("#prompt textarea", "a very long run")
    set_number(page, "Steps", 150)
    set_number(page, "Width", 256)
    set_number(page, "Height", 256)
    page.click("#generate")
    wait_for(lambda: "Step" in page.locator("#status").inner_text(), timeout=120)
    page.click("#stop")
    wait_for(lambda: "Stopped at step" in page.locator("#status").inner_text(), timeout=60)
    assert infotext(page) == ""  # no result from the stopped run, and no older image's under its preview
    page.fill("#prompt textarea", "a short run after stop")
    set_number(page, "Steps", 2)
    set_number(page, "Width", 64)
    set_number(page, "Height", 64)
    page.click("#generate")
    # Minutes of work remained in the stopped run: if it still held the device, this would time out.
    wait_for(lambda: "a short run after stop" in infotext(page), timeout=60)


def test_png_info_reads_a_png_and_sends_it_to_the_form(page):
    saved = sorted(page.app.outputs.glob("*/*.png"))
    assert saved, "the earlier runs saved PNGs"
    page.click("#png-info button") if page.locator("#png-info button").count() else page.click("text=PNG Info")
    page.locator("#png-file input[type=file]").set_input_files(str(saved[0]))
    wait_for(lambda: "Seed:" in page.locator("#png-text textarea").input_value())
    page.fill("#prompt textarea", "something else")
    page.click("#send-to-form")
    wait_for(lambda: page.locator("#prompt textarea").input_value() == "a lighthouse at dusk")


def test_form_helpers_token_counter_aspect_swap_and_seed_buttons(page):
    page.fill("#prompt textarea", "word " * 80)
    wait_for(lambda: "chunks" in page.locator("#token-count").inner_text())
    assert page.locator("#token-count").inner_text().startswith("Tokens: 75/75")
    page.fill("#prompt textarea", "a (small:1.3) cat")
    wait_for(lambda: "chunks" not in page.locator("#token-count").inner_text())

    pick(page, "aspect", "16:9")  # tiny's pixel count (64x64) in 16:9
    wait_for(lambda: (number(page, "Width"), number(page, "Height")) == (88, 48))
    page.click("#swap-size")
    wait_for(lambda: (number(page, "Width"), number(page, "Height")) == (48, 88))
    wait_for(lambda: page.locator("#aspect input").input_value() == "9:16")  # the aspect follows the swap

    used = page.locator("#seed_used textarea, #seed_used input").first.input_value()
    page.click("#reuse-seed")
    wait_for(lambda: page.locator("#seed input").input_value() == used)
    page.click("#random-seed")
    wait_for(lambda: page.locator("#seed input").input_value() == "-1")


def test_ctrl_enter_generates_and_history_restores_settings(page):
    config = json.loads(urllib.request.urlopen(page.app.url + "config", timeout=30).read())
    generate_fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "page_generate")
    joins = []  # every Generate the page sends
    listener = lambda r: joins.append(r) if "/queue/join" in r.url and r.post_data and \
        json.loads(r.post_data).get("fn_index") == generate_fn else None  # noqa: E731
    page.on("request", listener)
    page.fill("#prompt textarea", "remember this one")
    set_number(page, "Steps", 3)
    page.locator("#prompt textarea").press("Shift+Enter")  # A1111: only Ctrl+Enter generates
    page.locator("#prompt textarea").press("Control+Enter")
    wait_for(lambda: "remember this one" in infotext(page))
    page.remove_listener("request", listener)
    assert len(joins) == 1  # Ctrl+Enter's; Shift+Enter, pressed first, sent none
    page.fill("#prompt textarea", "something different")
    page.click("#history button") if page.locator("#history button").count() else page.click("text=History")
    wait_for(lambda: page.locator("#history-gallery img").count() >= 3)  # every run of this session, newest first
    page.locator("#history-gallery img").first.click()
    wait_for(lambda: "remember this one" in page.locator("#history-text textarea").input_value())
    page.click("#restore")
    wait_for(lambda: page.locator("#prompt textarea").input_value() == "remember this one")
    assert number(page, "Steps") == 3


def test_errors_show_in_the_page_and_the_next_generate_works(page):
    page.fill("#model input", "no-such-model")
    page.locator("#model input").press("Enter")
    page.fill("#prompt textarea", "after an error")
    page.click("#generate")
    toast = page.locator(".toast-body")
    wait_for(lambda: toast.count() and "no-such-model" in toast.first.inner_text())
    assert "tiny" in toast.first.inner_text()  # the message lists the valid choices
    # ... and the status line says it too, where the result is (the toast sits below the buttons).
    wait_for(lambda: "⚠" in page.locator("#status").inner_text())
    assert "no-such-model" in page.locator("#status").inner_text()
    toast_box, generate_box = toast.first.bounding_box(), page.locator("#generate").bounding_box()
    assert toast_box["y"] > generate_box["y"] + generate_box["height"]
    pick(page, "model", "tiny", "tiny ● loaded")
    page.click("#generate")
    wait_for(lambda: "after an error" in infotext(page))


def step_of(page) -> int:
    text = page.locator("#status").inner_text()
    return int(text.split("Step ")[1].split("/")[0]) if "Step " in text else 0


def test_a_second_user_sees_the_queue_position_and_stops_only_their_own_request(page):
    sessions = []  # the first user's Gradio session id, as it goes over the wire
    page.on("request", lambda r: sessions.append(json.loads(r.post_data)["session_hash"])
            if "/queue/join" in r.url and r.post_data else None)
    other = page.context.browser.new_page(viewport={"width": 1280, "height": 1000})  # another user
    other.goto(page.app.url)
    other.wait_for_selector("#prompt textarea", timeout=60_000)
    page.fill("#prompt textarea", "the first user's long run")
    set_number(page, "Steps", 150)
    set_number(page, "Width", 256)
    set_number(page, "Height", 256)
    page.click("#generate")
    wait_for(lambda: step_of(page) >= 1, timeout=120)
    other.fill("#prompt textarea", "the second user's run")
    other.click("#generate")
    # The waiting user's place and estimate, in their status line (the running run is ahead).
    wait_for(lambda: "Waiting: 1 ahead" in other.locator("#status").inner_text())
    assert "Waiting" not in page.locator("#status").inner_text()
    other.click("#stop")
    wait_for(lambda: "Removed from the queue" in other.locator("#status").inner_text())
    step = step_of(page)
    wait_for(lambda: step_of(page) > step + 1, timeout=60)  # the first user's run goes on

    # Someone replaying the first user's session id (it travels in URLs) without the tab's key stops
    # nothing: Stop needs the key the page made in the browser.
    config = json.loads(urllib.request.urlopen(page.app.url + "config", timeout=30).read())
    stop_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "stop")
    forged = json.dumps({"data": [""], "fn_index": stop_index, "session_hash": sessions[0]}).encode()
    urllib.request.urlopen(urllib.request.Request(page.app.url + "gradio_api/queue/join", data=forged,
                                                  headers={"content-type": "application/json"}), timeout=30)
    step = step_of(page)
    wait_for(lambda: step_of(page) > step + 1, timeout=60)
    page.click("#stop")
    wait_for(lambda: "Stopped at step" in page.locator("#status").inner_text())
    assert "the second user's run" not in infotext(other)  # its request left the queue
    other.close()


def test_draw_a_mask_inpaint_and_see_the_result(page, tmp_path):
    import numpy as np
    from PIL import Image

    from studio.metadata import read_png

    init = tmp_path / "init.png"
    Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype("uint8")).save(init)
    # The editor's layers come with the request: the page never calls the editor's blob server function
    # (BoundedImageEditor.accept_blobs, deliberately not served: a stranger's call is a 404).
    blob_calls = []
    page.on("response", lambda r: blob_calls.append(r.status) if "component_server" in r.url else None)
    page.get_by_role("tab", name="Inpaint").click()
    editor = page.locator("#inpaint-editor")
    try:
        load_into_editor(page, init)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "inpaint-upload.png"), full_page=True)
    editor.scroll_into_view_if_needed()  # the tab's content starts below a laptop's first screen
    canvas = page.locator("#inpaint-editor canvas").first
    box = wait_stable(lambda: canvas.bounding_box())  # the canvas fits the picture to its size after it arrives
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 40, cy)
    page.mouse.down()
    for i in range(9):  # a short zig-zag stroke through the middle of the picture
        page.mouse.move(cx - 40 + i * 10, cy + (i % 2) * 10)
    page.mouse.up()
    page.fill("#prompt textarea", "repaint the middle")
    set_number(page, "Steps", 4)
    set_number(page, "Width", 64)
    set_number(page, "Height", 64)
    set_number(page, "Mask blur", 0)
    before = set(page.app.outputs.glob("*/*.png"))
    page.click("#generate")
    try:
        wait_for(lambda: "repaint the middle" in infotext(page))
    finally:
        page.screenshot(path=str(ARTIFACTS / "inpaint.png"), full_page=True)
    assert "Mask blur: 0" in infotext(page) and "Denoising strength: 0.75" in infotext(page)
    (saved,) = set(page.app.outputs.glob("*/*.png")) - before
    out = np.asarray(Image.open(saved).convert("RGB")).astype(int)
    original = np.asarray(Image.open(init)).astype(int)
    assert np.array_equal(out[:4, :4], original[:4, :4])  # a corner the stroke missed: the exact pixels
    assert np.abs(out - original)[28:36, 28:36].mean() > 5  # under the stroke: repainted
    assert read_png(saved).request["mask"] == {"width": 64, "height": 64, "stored": False}
    assert blob_calls == [], blob_calls


def test_send_a_result_to_image_to_image_and_generate_from_it(page):
    page.fill("#prompt textarea", "a first picture")
    set_number(page, "Steps", 3)
    page.click("#generate")
    wait_for(lambda: "a first picture" in infotext(page))
    page.click("#send-img2img")
    wait_for(lambda: page.locator("#init_image img").count() > 0)
    assert page.get_by_role("tab", name="Image to image").get_attribute("aria-selected") == "true"
    page.fill("#prompt textarea", "the picture, repainted")
    page.click("#generate")
    wait_for(lambda: "the picture, repainted" in infotext(page))
    assert "Denoising strength: 0.75" in infotext(page) and "Mask blur" not in infotext(page)


def test_restore_brings_back_every_setting_and_with_nothing_picked_changes_nothing(page):
    page.reload()  # a new session: no image picked in its history
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.fill("#prompt textarea", "untouched")
    page.click("#history button") if page.locator("#history button").count() else page.click("text=History")
    page.click("#restore")
    wait_for(lambda: "Pick an image in the history first" in page.locator("#history-note").inner_text())
    assert page.locator("#prompt textarea").input_value() == "untouched"
    assert page.locator(".toast-body").count() == 0 and page.get_by_text("Error").count() == 0

    # A hires image with a style and a schedule: all of it comes back, not just the base settings.
    page.fill("#prompt textarea", "a hires castle")
    set_number(page, "Steps", 3)
    page.click("#hires-panel button") if page.locator("#hires-panel button").count() else page.click("text=Hires fix")
    page.locator("#hires input[type=checkbox]").check()
    set_number(page, "Upscale by", 1.5)
    if not page.get_by_label("watercolor").is_visible():  # styles live in a panel under the prompts
        page.locator("#styles-panel").get_by_text("Styles").first.click()
    page.get_by_label("watercolor").check()
    wait_for(lambda: "Styles: watercolor" in page.locator("#styles-panel").inner_text())  # the closed panel says so
    page.click("#generate")
    wait_for(lambda: "Hires upscale: 1.5" in infotext(page), timeout=120)
    page.locator("#hires input[type=checkbox]").uncheck()
    page.get_by_label("watercolor").uncheck()
    set_number(page, "Steps", 9)
    page.fill("#prompt textarea", "something else")
    wait_for(lambda: page.locator("#history-gallery img").count() >= 1)
    page.locator("#history-gallery img").first.click()
    wait_for(lambda: "Hires upscale: 1.5" in page.locator("#history-text textarea").input_value())
    page.click("#restore")
    wait_for(lambda: page.locator("#prompt textarea").input_value() == "a hires castle")
    wait_for(lambda: checked(page, "hires") and number(page, "Steps") == 3 and number(page, "Upscale by") == 1.5)
    assert page.get_by_label("watercolor").is_checked()


def test_an_a1111_png_of_a_checkpoint_we_lack_keeps_the_model_and_says_so(page, tmp_path):
    from PIL import Image, PngImagePlugin

    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", "a cat from elsewhere\nNegative prompt: dog\nSteps: 5, Sampler: DPM++ 2M, "
                                  "Schedule type: Karras, CFG scale: 6, Seed: 9, Size: 64x64, Model hash: 0123abcdef, "
                                  "Model: someone-elses-mix, Version: v1.9.4")
    png = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=chunks)
    page.click("#png-info button") if page.locator("#png-info button").count() else page.click("text=PNG Info")
    page.locator("#png-file input[type=file]").set_input_files(str(png))
    wait_for(lambda: "a cat from elsewhere" in page.locator("#png-text textarea").input_value())
    model_before = page.locator("#model input").input_value()
    page.click("#send-to-form")
    wait_for(lambda: page.locator("#prompt textarea").input_value() == "a cat from elsewhere")
    wait_for(lambda: "someone-elses-mix" in page.locator("#png-note").inner_text())
    assert page.locator("#model input").input_value() == model_before
    page.click("#generate")  # the next Generate works on the model the form kept
    wait_for(lambda: "a cat from elsewhere" in infotext(page), timeout=120)
    assert "Seed: 9," in infotext(page) and "Schedule type: Karras" in infotext(page)


@pytest.mark.parametrize("width, height", [(1920, 1080), (1400, 1000), (1024, 768), (420, 900)])
def test_at_every_screen_size_the_status_and_result_are_in_view_after_generate(page, width, height):
    other = page.context.browser.new_page(viewport={"width": width, "height": height})
    try:
        other.goto(page.app.url)
        other.wait_for_selector("#prompt textarea", timeout=60_000)
        # Text to image shows none of the other tabs' controls.
        assert not other.locator("#denoising_strength").is_visible() and not other.locator("#resize_mode").is_visible()
        assert not other.locator("#inpaint-editor").is_visible() and not other.locator("#init_image").is_visible()
        # The model is loaded: the counter counts from the start, with no prompt typed yet.
        wait_for(lambda: other.locator("#token-count").inner_text().startswith("Tokens: 0/75"))
        if width >= 1400:  # a laptop: the common settings without scrolling
            for control in ("#model", "#sampler", "#schedule", "#steps", "#cfg_scale", "#width", "#height",
                            "#seed", "#batch_count", "#batch_size"):
                assert in_view(other, control), control
        other.fill("#prompt textarea", f"seen at {width} px")
        set_number(other, "Steps", 20)
        set_number(other, "Width", 128)
        set_number(other, "Height", 128)
        other.click("#generate")
        wait_for(lambda: "Step" in other.locator("#status").inner_text(), timeout=120)
        assert in_view(other, "#status") and in_view(other, "#result") and in_view(other, "#stop")
        wait_for(lambda: f"seen at {width} px" in other.locator("#infotext textarea").input_value(), timeout=120)
        assert in_view(other, "#status") and in_view(other, "#result")
        ARTIFACTS.mkdir(exist_ok=True)
        other.screenshot(path=str(ARTIFACTS / f"studio-{width}x{height}.png"))
    finally:
        other.close()


def test_task_controls_follow_the_tab_and_hires_says_when_it_is_on(page):
    assert not page.locator("#denoising_strength").is_visible()
    page.get_by_role("tab", name="Image to image").click()
    wait_for(lambda: page.locator("#denoising_strength").is_visible())
    page.get_by_role("tab", name="Text to image").click()
    wait_for(lambda: not page.locator("#denoising_strength").is_visible())
    panel = page.locator("#hires-panel")
    if not page.locator("#hires input[type=checkbox]").is_visible():
        panel.get_by_text("Hires fix").first.click()
    page.locator("#hires input[type=checkbox]").uncheck()
    page.locator("#hires input[type=checkbox]").check()
    wait_for(lambda: "Hires fix · on (2x, Latent)" in panel.inner_text())
    page.locator("#hires input[type=checkbox]").uncheck()
    wait_for(lambda: "· on" not in panel.inner_text())


def test_switching_model_keeps_the_settings_that_fit_and_offers_the_recommended_ones(page):
    set_number(page, "Steps", 13)
    pick(page, "model", "tiny-xl", "tiny-xl ● loaded")
    note = page.locator("#model-note")
    wait_for(lambda: "Recommended for tiny-xl" in note.inner_text())
    assert number(page, "Steps") == 13  # kept: it fits the new model
    page.click("#use-recommended")
    wait_for(lambda: number(page, "Steps") != 13)
    pick(page, "model", "tiny", "tiny ● loaded")
    page.click("#use-recommended") if page.locator("#use-recommended").is_visible() else None


def test_reuse_does_nothing_on_a_fresh_page_and_history_survives_a_reload(page):
    fresh = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})  # a new visitor
    try:
        fresh.goto(page.app.url)
        fresh.wait_for_selector("#prompt textarea", timeout=60_000)
        fresh.locator("#seed input").fill("1234")
        fresh.locator("#seed input").press("Enter")
        fresh.click("#reuse-seed")
        time.sleep(0.5)  # a click that must change nothing: give it time to (not) happen
        assert fresh.locator("#seed input").input_value() == "1234"
        fresh.fill("#prompt textarea", "kept across a reload")
        set_number(fresh, "Steps", 2)
        fresh.click("#generate")
        wait_for(lambda: "kept across a reload" in fresh.locator("#infotext textarea").input_value())
        # The browser keeps the tab's history (signed paths) once the run's events are done.
        wait_for(lambda: ".png" in (fresh.evaluate("sessionStorage.getItem('studio-history')") or ""))
        fresh.reload()
        fresh.wait_for_selector("#prompt textarea", timeout=60_000)
        fresh.click("#history button") if fresh.locator("#history button").count() else fresh.click("text=History")
        wait_for(lambda: fresh.locator("#history-gallery img").count() >= 1)
    finally:
        fresh.close()


def test_a_batch_shows_its_gallery_and_reuse_takes_the_clicked_images_seed(page):
    page.fill("#prompt textarea", "a pair of pictures")
    set_number(page, "Steps", 2)
    set_number(page, "Width", 64)
    set_number(page, "Height", 64)
    set_number(page, "Batch size", 2)
    try:
        page.click("#generate")
        wait_for(lambda: "a pair of pictures" in infotext(page))
        wait_for(lambda: page.locator("#gallery").is_visible() and page.locator("#gallery img").count() == 2)
        first = int(page.locator("#seed_used textarea, #seed_used input").first.input_value())
        page.locator("#gallery img").nth(1).click()
        seed_box = page.locator("#seed_used textarea, #seed_used input").first
        wait_for(lambda: seed_box.input_value() == str(first + 1))  # item i of a batch is seed + i
        page.click("#reuse-seed")
        wait_for(lambda: page.locator("#seed input").input_value() == str(first + 1))
    finally:
        set_number(page, "Batch size", 1)
        page.click("#random-seed")


def test_draw_a_scribble_see_its_map_and_generate_with_it(page):
    """ControlNet from the page: draw on unit 1's canvas, pick scribble and the tiny ControlNet, see
    the control map (white strokes on black), generate: the infotext carries the unit."""
    import numpy as np
    from PIL import Image

    page.click("#controlnet > button, #controlnet .label-wrap")
    editor = page.locator("#cn-image-0")
    editor.wait_for(state="visible")
    wait_for(lambda: re.search(r"\d+%", editor.inner_text()), timeout=60)  # the canvas is ready
    editor.locator("button[aria-label='Brush']").click()  # a blank canvas asks for the draw tool first
    canvas = page.locator("#cn-image-0 canvas").first
    box = wait_stable(lambda: canvas.bounding_box())
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 60, cy - 20)
    page.mouse.down()
    for i in range(13):  # a zig-zag scribble across the middle
        page.mouse.move(cx - 60 + i * 10, cy - 20 + (i % 2) * 40)
    page.mouse.up()
    pick(page, "cn-module-0", "scribble")
    model = page.locator("#cn-model-0 input")
    model.fill("builtin:controlnet/sd15")
    model.press("Enter")
    page.locator("#cn-enabled-0 input").check()
    set_number(page, "Width", 64)
    set_number(page, "Height", 64)
    page.click("#cn-show-0")
    wait_for(lambda: page.locator("#cn-map-0 img").count() > 0)
    src = page.locator("#cn-map-0 img").first.get_attribute("src")
    with urllib.request.urlopen(src if src.startswith("http") else page.app.url + src.lstrip("/"), timeout=30) as r:
        control = np.asarray(Image.open(io.BytesIO(r.read())).convert("L"))
    assert control.shape == (64, 64) and control.max() == 255 and (control == 0).mean() > 0.5  # strokes on black
    set_number(page, "Steps", 4)
    text = generate(page, "a scribbled lighthouse", "controlnet-scribble.png")
    assert 'ControlNet 0: "Module: scribble, Model: builtin:controlnet/sd15, Weight: 1.0' in text
    page.locator("#cn-enabled-0 input").uncheck()
    # The result as unit 2's picture: its canvas takes it, and generating with it (no Preview map
    # pressed) shows the map it used beside it
    page.get_by_role("tab", name="Unit 2").click()
    second = page.locator("#cn-image-1")
    wait_for(lambda: re.search(r"\d+%", second.inner_text()), timeout=60)
    page.click("#cn-use-result-1")
    wait_for(lambda: "Upload an image" not in second.inner_text(), timeout=60)
    page.locator("#cn-enabled-1 input").check()
    model = page.locator("#cn-model-1 input")
    model.fill("builtin:controlnet/sd15")
    model.press("Enter")
    assert page.locator("#cn-map-1 img").count() == 0
    generate(page, "a lighthouse from its own result", "controlnet-map-used.png")
    wait_for(lambda: page.locator("#cn-map-1 img").count() > 0)
    page.locator("#cn-enabled-1 input").uncheck()


def test_an_image_prompt_from_the_page(page, tmp_path):
    """IP-Adapter from the page: a reference picture in slot 1 with the tiny adapter steers the
    generation (the infotext carries it); "Use the result" puts the result in slot 2."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (96, 72), (20, 20, 20))
    ImageDraw.Draw(picture).ellipse((10, 10, 86, 62), fill=(220, 50, 40))
    picture.save(tmp_path / "reference.png")
    page.click("#image-prompts > button, #image-prompts .label-wrap")
    page.locator("#ip-image-0 input[type=file]").set_input_files(str(tmp_path / "reference.png"))
    wait_for(lambda: page.locator("#ip-image-0 img").count() > 0, timeout=60)
    model = page.locator("#ip-model-0 input")
    model.fill("builtin:ip-adapter/sd15")
    model.press("Enter")
    set_number(page, "Width", 64)
    set_number(page, "Height", 64)
    text = generate(page, "a red ball, from a picture", "image-prompt.png")
    assert 'ControlNet 0: "Module: ip-adapter-auto, Model: builtin:ip-adapter/sd15, Weight: 1.0' in text
    page.get_by_role("tab", name="Image 2").click()
    page.click("#ip-use-result-1")
    wait_for(lambda: page.locator("#ip-image-1 img").count() > 0, timeout=60)
    page.click("#ip-image-1 button[aria-label='Remove Image']")  # both off again for the tests after this one
    page.get_by_role("tab", name="Image 1").click()
    page.click("#ip-image-0 button[aria-label='Remove Image']")
    wait_for(lambda: page.locator("#ip-image-0 img, #ip-image-1 img").count() == 0, timeout=30)
