"""The artist's daily tools in the page, as a person uses them on the tiny model: prompt editing and
alternation (the parsed view's table of which text runs at which steps, the infotext keeping the prompt
as written), an embedding of the folder added to the negative prompt with a click, a variation seed from
More settings, and a `{a|b}` choice with a wildcard resolved per image. A phone tab shows the schedule
table within its width."""

from __future__ import annotations

import pytest

from support.browser import infotext, needs_chromium, phone_tab, pick, shot, studio_page, wait_for

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from support.embedding_files import write_concept

    embeddings = tmp_path_factory.mktemp("embeddings")
    write_concept(embeddings, "badhands", count=2)
    wildcards = tmp_path_factory.mktemp("wildcards")
    (wildcards / "animal.txt").write_text("cat\ndog\nfox\n")
    with studio_page(tmp_path_factory, "--model", "tiny", "--embeddings-dir", str(embeddings),
                     "--wildcards-dir", str(wildcards)) as page:
        yield page


def finished(page) -> str:
    return wait_for(lambda: ((s := page.locator("#status").inner_text()).startswith("Done") or "⚠" in s) and s,
                    timeout=180)


def parsed_view(page) -> str:
    return page.locator("#parsed-view").inner_text()


def test_prompt_editing_shows_its_schedule_and_keeps_the_prompt_as_written(page):
    page.click("#styles-panel")  # "Styles · prompt as sent": the parsed view
    page.fill("#prompt textarea", "a [cat:dog:0.5] on a [red|blue] mat")
    text = wait_for(lambda: "Text (prompt editing)" in (t := parsed_view(page)) and t)
    assert "a cat on a red mat" in text and "a dog on a blue mat" in text and "⚠" not in text
    page.click("#generate")
    assert finished(page).startswith("Done")
    assert infotext(page).startswith("a [cat:dog:0.5] on a [red|blue] mat")
    page.locator("#parsed-view table.schedule").scroll_into_view_if_needed()
    shot(page, "prompt-editing-laptop.png")
    with phone_tab(page) as phone:
        phone.click("#styles-panel")
        phone.fill("#prompt textarea", "a [cat:dog:0.5] on a [red|blue] mat, " * 3)
        table = wait_for(lambda: phone.locator("#parsed-view table.schedule").count() and
                         phone.locator("#parsed-view table.schedule"))
        table.scroll_into_view_if_needed()
        box = table.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1  # wraps within the phone's width
        shot(phone, "prompt-editing-phone.png")


def test_an_embedding_goes_into_the_negative_prompt_with_a_click(page):
    page.fill("#prompt textarea", "a red cube")
    page.fill("#negative_prompt textarea", "blurry")
    page.click("#networks-panel")  # "LoRA · Embeddings", closed until opened
    assert "(0 + 1 in the folders)" in page.locator("#networks-panel").inner_text()
    pick(page, "embedding-name", "badhands")
    page.click("#add-negative-embedding")
    wait_for(lambda: "badhands" in page.locator("#negative_prompt textarea").input_value())
    page.click("#generate")
    assert finished(page).startswith("Done")
    assert 'TI hashes: "badhands: ' in infotext(page)


def test_a_variation_seed_from_more_settings_is_in_the_infotext(page):
    page.fill("#negative_prompt textarea", "")
    page.click("#more-settings")
    strength = page.locator("input[aria-label='number input for Variation strength']")
    seed = page.locator("#subseed input")

    def typed(box, value: str, shown) -> bool:  # typed again until the page holds it (a panel just opened)
        if shown() == value:
            return True
        box.fill(value)
        box.press("Enter")
        return False

    wait_for(lambda: typed(strength, "0.3", lambda: page.locator("#subseed_strength input[type=range]").input_value()),
             timeout=30, every=0.5)
    wait_for(lambda: typed(seed, "77", seed.input_value), timeout=30, every=0.5)
    page.click("#generate")
    assert finished(page).startswith("Done")
    text = infotext(page)
    assert "Variation seed: 77" in text and "Variation seed strength: 0.3" in text
    strength.fill("0")
    strength.press("Enter")


def test_choices_and_wildcards_resolve_per_image_and_keep_the_template(page):
    page.fill("#prompt textarea", "a {small|big} __animal__")
    page.click("#generate")
    assert finished(page).startswith("Done")
    text = infotext(page)
    first = text.split("\n")[0]
    assert first.startswith("a small ") or first.startswith("a big ")
    assert first.split()[-1] in ("cat", "dog", "fox") and "Template: a {small|big} __animal__" in text
    page.fill("#prompt textarea", "a __nothing__")
    page.click("#generate")
    said = finished(page)
    assert "⚠ prompt" in said and "nothing" in said and "animal" in said  # the folder's names


def test_an_xyz_plot_from_its_panel_makes_a_labelled_grid_and_every_cell(page):
    page.fill("#prompt textarea", "a red cube")
    page.click("#xyz-panel")
    pick(page, "x_type", "Steps")
    page.fill("#x_values textarea, #x_values input", "2, 4")
    pick(page, "y_type", "CFG Scale")
    page.fill("#y_values textarea, #y_values input", "3-7 [2]")
    wait_for(lambda: "Steps × CFG Scale" in page.locator("#xyz-panel").inner_text())
    page.click("#generate")
    said = wait_for(lambda: "grid first" in (s := page.locator("#status").inner_text()) and s, timeout=180)
    assert "Batch 4/4 done" in said and "X/Y/Z plot: 2x2 grid first" in said  # the cells run as batches
    assert page.locator("#gallery .thumbnail-item").count() == 5  # the grid, then the 4 cells
    assert "Script: X/Y/Z plot" in infotext(page) and "X Values: " in infotext(page)
    page.locator("#xyz-panel").scroll_into_view_if_needed()
    shot(page, "xyz-panel-laptop.png")
    with phone_tab(page) as phone:
        phone.click("#xyz-panel")
        pick(phone, "x_type", "Sampler")
        phone.fill("#x_values textarea, #x_values input", "Euler, Nope")
        phone.click("#generate")
        said = finished(phone)
        assert "⚠ x_values" in said and "Nope" in said  # refused by name before any work
        box = phone.locator("#xyz-panel").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1
        phone.locator("#xyz-panel").scroll_into_view_if_needed()
        shot(phone, "xyz-panel-phone.png")
    pick(page, "x_type", "Nothing")
    pick(page, "y_type", "Nothing")
