"""The finishing tabs as an artist uses them, on the tiny model with tiny upscalers of real
architectures: generate, send the result to Upscale, pick a model from the folder, Generate (larger, its
infotext keeps the generation's own with A1111's Postprocess keys); hires fix and SD upscale with a
folder model; send a result to Outpaint and extend it. On a phone the Upscale tab fits, and Generate
without a picture is refused by name; the page keeps serving."""

from __future__ import annotations

import pytest
from PIL import Image

from support.browser import (infotext, needs_chromium, open_task_tab, phone_tab, pick, set_number, shot, studio_page,
                             wait_for)
from studio.upscalers.library import available

pytestmark = [needs_chromium, pytest.mark.skipif(not available(), reason="spandrel is not installed")]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from studio.upscalers.tiny import write

    folder = write(tmp_path_factory.mktemp("upscalers"))
    with studio_page(tmp_path_factory, "--model", "tiny", "--upscalers-dir", str(folder)) as page:
        yield page


def status(page) -> str:
    return page.locator("#status").inner_text()


def finished(page) -> str:
    return wait_for(lambda: ((s := status(page)).startswith("Done") or "⚠" in s) and s, timeout=180)


def shown_size(page) -> tuple[int, int]:
    return page.evaluate("() => { const i = document.querySelector('#result img'); "
                         "return [i.naturalWidth, i.naturalHeight]; }")


def test_send_a_result_to_upscale_and_upscale_it_with_a_model_of_the_folder(page):
    page.fill("#prompt textarea", "a lighthouse")
    page.click("#generate")
    assert finished(page).startswith("Done")
    made = infotext(page)
    page.click("#send-upscale")
    wait_for(lambda: page.locator("#upscale_image img").count() > 0)
    assert page.locator("#tasks button[aria-selected='true']").inner_text() == "Upscale"
    assert "model upscaler(s) from the upscalers folder" in page.locator("#upscale-hint").inner_text()
    pick(page, "upscaler", "tiny-esrgan-x4")
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    text = infotext(page)
    assert text.startswith(made.split("\n")[0]) and "Postprocess upscaler: tiny-esrgan-x4" in text
    width, height = (int(v) for v in made.split("Size: ")[1].split(",")[0].split("x"))
    wait_for(lambda: shown_size(page) == [2 * width, 2 * height])  # scale by 2, the default
    shot(page, "upscale-tab-laptop.png")


def test_hires_fix_lists_and_runs_the_folders_models(page):
    page.get_by_role("tab", name="Text to image").click()
    page.click("#hires-panel")
    page.locator("#hires input[type=checkbox]").check()
    pick(page, "hires_upscaler", "tiny-compact-x2")
    page.fill("#prompt textarea", "a red cube")
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    assert "Hires upscaler: tiny-compact-x2" in infotext(page)
    page.locator("#hires input[type=checkbox]").uncheck()


def test_on_a_phone_the_tab_fits_and_generate_without_a_picture_is_named(page, tmp_path):
    with phone_tab(page) as phone:
        open_task_tab(phone, "Upscale")  # on a phone, behind Gradio's "More tabs" (…) button
        phone.click("#generate")
        said = finished(phone)
        assert "⚠ upscale_image" in said and "Upscale tab" in said
        box = phone.locator("#upscale_image").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1
        path = tmp_path / "small.png"
        Image.new("RGB", (60, 40), (200, 30, 30)).save(path)
        phone.locator("#upscale_image input[type=file]").set_input_files(str(path))
        wait_for(lambda: phone.locator("#upscale_image img").count() > 0)
        phone.click("#generate")
        wait_for(lambda: "⚠" not in status(phone))  # the refusal's line is replaced by this run's
        assert finished(phone).startswith("Done"), status(phone)
        assert "Postprocess upscale by: 2, Postprocess upscaler: Lanczos" in infotext(phone)
        wait_for(lambda: shown_size(phone) == [120, 80])
        phone.locator("#upscale_image").scroll_into_view_if_needed()
        shot(phone, "upscale-tab-phone.png")


def test_sd_upscale_on_image_to_image_repaints_the_enlarged_picture_in_tiles(page, tmp_path):
    open_task_tab(page, "Image to image")
    path = tmp_path / "start.png"
    Image.new("RGB", (96, 64), (30, 120, 200)).save(path)
    page.locator("#init_image input[type=file]").set_input_files(str(path))
    wait_for(lambda: page.locator("#init_image img").count() > 0)
    page.click("#sd-upscale-panel")
    page.locator("#sd_upscale input[type=checkbox]").check()
    pick(page, "sd_upscale_upscaler", "tiny-esrgan-x4")
    set_number(page, "Tile overlap", 16)
    page.fill("#prompt textarea", "a blue wall")
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    text = infotext(page)
    assert "SD upscale upscaler: tiny-esrgan-x4" in text and "SD upscale overlap: 16" in text
    wait_for(lambda: shown_size(page) == [192, 128])
    shot(page, "sd-upscale-laptop.png")
    page.locator("#sd_upscale input[type=checkbox]").uncheck()


def test_send_a_result_to_outpaint_and_extend_it_to_the_right(page):
    open_task_tab(page, "Text to image")
    page.fill("#prompt textarea", "a beach")
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    made = infotext(page)
    width, height = (int(v) for v in made.split("Size: ")[1].split(",")[0].split("x"))
    page.click("#send-outpaint")
    wait_for(lambda: page.locator("#outpaint_image img").count() > 0)
    assert page.locator("#tasks button[aria-selected='true']").inner_text() == "Outpaint"
    set_number(page, "Extend right, pixels", 32)
    wait_for(lambda: f"{width + 32}" in page.locator("#outpaint-canvas").inner_text())
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    assert "Outpaint right: 32" in infotext(page)
    wait_for(lambda: shown_size(page) == [width + 32, height])
    shot(page, "outpaint-tab-laptop.png")


def test_the_detailer_finds_regions_with_the_tiny_detector_and_repaints_them(page):
    open_task_tab(page, "Text to image")
    page.click("#detailer-panel")
    page.locator("#detailer input[type=checkbox]").check()
    pick(page, "detailer_model", "builtin:owlv2")
    set_number(page, "Detection confidence", 0.5)  # the tiny detector's boxes score 0.5..1
    page.fill("#prompt textarea", "a portrait")
    page.click("#generate")
    assert finished(page).startswith("Done"), status(page)
    text = infotext(page)
    assert 'ADetailer model: "builtin:owlv2"' in text and "ADetailer confidence: 0.5" in text
    assert "Detailer" in page.locator("#detailer-panel").inner_text()
    shot(page, "detailer-laptop.png")
    page.locator("#detailer input[type=checkbox]").uncheck()
