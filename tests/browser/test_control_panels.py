"""The control panels in a real browser, on the tiny model: the ControlNet and Image prompts boxes start
with a model made for it and list no other family's until "Show all" is ticked; an image prompt with a
picture and the untouched default generates; the inpaint brush's strokes let the picture show through."""

from __future__ import annotations

import io

import pytest

from support.browser import (infotext, load_into_editor, needs_chromium, pick, set_number, shot,
                             studio_page, wait_for, wait_stable)

pytestmark = needs_chromium

FOREIGN = ("sdxl", "flux", "sd3", "sd-3", "xl-")  # other families' names, as the known ones spell them


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with studio_page(tmp_path_factory) as page:
        yield page


def open_panel(page, elem_id: str, inside: str) -> None:
    """Open the accordion unless `inside` (an element in it) shows already."""
    if not page.locator(f"#{inside}").is_visible():
        page.click(f"#{elem_id} > button, #{elem_id} .label-wrap")
    page.locator(f"#{inside}").wait_for(state="visible")


def listed(page, elem_id: str) -> list[str]:
    """The options a model box lists (opened, read, closed again)."""
    wait_for(lambda: page.locator("li[role=option]").count() == 0)  # no other box's list still open
    page.click(f"#{elem_id} input")
    options = page.locator("li[role=option]")
    wait_for(lambda: options.count() > 0)
    names = [options.nth(i).get_attribute("aria-label") for i in range(options.count())]
    page.click("#title")  # closed: the next click opens it again
    wait_for(lambda: page.locator("li[role=option]").count() == 0)
    return names


@pytest.mark.parametrize("panel, box, show_all, default, other", [
    ("controlnet", "cn-model-0", "cn-show-all", "builtin:controlnet/sd15", "builtin:controlnet/sdxl"),
    ("image-prompts", "ip-model-0", "ip-show-all", "builtin:ip-adapter/sd15", "builtin:ip-adapter/flux"),
])
def test_the_model_boxes_start_with_a_fitting_default_and_show_all_lists_every_family(
        page, panel, box, show_all, default, other):
    open_panel(page, panel, box)
    model = page.locator(f"#{box} input")
    model.wait_for(state="visible")
    assert model.input_value() == default
    fitting = listed(page, box)
    try:
        assert default in fitting and not [name for name in fitting if any(f in name.lower() for f in FOREIGN)]
        page.locator(f"#{show_all} input").check()
        wait_for(lambda: other in listed(page, box), timeout=30)
        shot(page, f"{panel}-show-all.png", full_page=True)
        every = listed(page, box)
        assert every[0] == default and len(every) > len(fitting)
        assert model.input_value() == default  # the choice stays
    finally:
        page.locator(f"#{show_all} input").uncheck()
    wait_for(lambda: other not in listed(page, box), timeout=30)


def test_the_boxes_follow_the_model(page):
    """Another family's model: the boxes take its defaults; back on tiny, tiny's again."""
    open_panel(page, "controlnet", "cn-model-0")
    open_panel(page, "image-prompts", "ip-model-0")
    def switch(name: str, family: str) -> None:
        pick(page, "model", f"{name} ● loaded", name)
        wait_for(lambda: page.locator("#cn-model-0 input").input_value() == f"builtin:controlnet/{family}"
                 and page.locator("#ip-model-0 input").input_value() == f"builtin:ip-adapter/{family}", timeout=30)

    try:
        switch("tiny-xl", "sdxl")
        assert listed(page, "cn-model-0") == ["builtin:controlnet/sdxl", "builtin:controlnet/sdxl-union"]
    finally:
        switch("tiny", "sd15")
    assert listed(page, "ip-model-0") == ["builtin:ip-adapter/sd15"]


def test_an_image_prompt_with_a_picture_and_the_untouched_model_generates(page, tmp_path):
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (80, 64), (30, 30, 30))
    ImageDraw.Draw(picture).rectangle((10, 10, 60, 50), fill=(40, 200, 90))
    picture.save(tmp_path / "reference.png")
    open_panel(page, "image-prompts", "ip-model-0")
    page.locator("#ip-image-0 input[type=file]").set_input_files(str(tmp_path / "reference.png"))
    wait_for(lambda: page.locator("#ip-image-0 img").count() > 0, timeout=60)
    set_number(page, "Width", 64)
    set_number(page, "Height", 64)
    set_number(page, "Steps", 3)
    page.fill("#prompt textarea", "a green box, from its picture")
    page.click("#generate")
    try:
        wait_for(lambda: "a green box" in infotext(page) or "⚠" in page.locator("#status").inner_text(), timeout=120)
    finally:
        shot(page, "image-prompt-default.png", full_page=True)
    assert "⚠" not in page.locator("#status").inner_text()
    assert "Model: builtin:ip-adapter/sd15, Weight: 1.0" in infotext(page)
    page.hover("#ip-image-0 img")  # its buttons show on hover
    page.click("#ip-image-0 button[aria-label='Remove Image']")  # off again
    wait_for(lambda: page.locator("#ip-image-0 img").count() == 0, timeout=30)


def test_the_inpaint_brush_lets_the_picture_show_through(page, tmp_path):
    import numpy as np
    from PIL import Image

    init = Image.new("RGB", (64, 64), (200, 40, 40))  # red on the left, blue on the right
    init.paste((40, 40, 200), (32, 0, 64, 64))
    init.save(tmp_path / "two-tone.png")
    page.get_by_role("tab", name="Inpaint").click()
    editor = page.locator("#inpaint-editor")
    load_into_editor(page, tmp_path / "two-tone.png")
    editor.scroll_into_view_if_needed()
    canvas = page.locator("#inpaint-editor canvas").first
    box = wait_stable(lambda: canvas.bounding_box())
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    area = {"x": cx - 30, "y": cy - 4, "width": 60, "height": 8}  # across the middle: red, then blue

    def pixels() -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=area))).convert("RGB")).astype(int)

    before = np.asarray(wait_stable(lambda: pixels().tolist()))
    page.mouse.move(cx - 40, cy)
    page.mouse.down()
    for i in range(9):
        page.mouse.move(cx - 40 + i * 10, cy)
    page.mouse.up()
    page.mouse.move(5, 5)  # the brush's cursor away from the stroke

    def painted() -> list | None:
        now = pixels()
        return now.tolist() if (np.abs(now - before) > 30).any() else None

    after = np.asarray(wait_stable(painted))
    shot(page, "inpaint-see-through.png", full_page=True)
    height, width = after.shape[:2]
    left, right = (height // 2, width // 6), (height // 2, width - width // 6)
    for spot in (left, right):
        painted, picture = after[spot], before[spot]
        assert np.abs(painted - picture).max() > 30, "the stroke shows"
        assert painted.min() < 235, "not opaque white: the picture shows through"
        assert np.abs(painted - (picture + 255) / 2).max() < 40, (painted, picture)  # about half the picture
    assert after[left][0] > after[left][2] + 40 and after[right][2] > after[right][0] + 40  # red, then blue
