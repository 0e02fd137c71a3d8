"""The page's form helpers: model switching that keeps what fits and says what it changed, sizes from
a dropped picture or an aspect preset, the Hires and LoRA labels, the queue's wait text, the form of
the fallback model."""

from __future__ import annotations

from PIL import Image

from studio.web import FALLBACK_MODEL, handlers


def test_switching_model_keeps_what_fits_and_says_what_it_changed():
    current = {"sampler": "Euler a", "schedule": "Automatic", "steps": 13, "cfg_scale": 5.0, "width": 512,
               "height": 512}
    updates, note, differs = handlers.model_switch("tiny-flux", current)
    assert "value" not in updates["cfg_scale"]  # the CFG scale is kept (its label follows the model)
    assert updates["cfg_scale"]["label"] == "Distilled CFG scale"
    assert updates["width"]["value"] == 512 and updates["height"]["value"] == 512  # fits FLUX's 256-2048 / 16
    assert "Euler a" in updates["sampler"]["choices"]  # a flow sampler of that name exists: kept
    assert differs and "Recommended for tiny-flux:" in note and "Changed" not in note

    updates, note, _ = handlers.model_switch("tiny-flux", {**current, "width": 100, "sampler": "DPM2"})
    assert updates["width"]["value"] != 100 and updates["height"]["value"] == 512
    assert "width 100 →" in note and "sampler DPM2 →" in note and updates["sampler"]["value"] != "DPM2"


def test_the_recommended_settings_are_not_offered_when_the_form_already_has_them():
    rec = vars(handlers.models.resolve_model("tiny").defaults)
    _, note, differs = handlers.model_switch("tiny", {name: rec[name] for name in handlers.MODEL_DEFAULTS})
    assert not differs and note == ""


def test_a_dropped_picture_sets_the_size_rounded_to_the_models_multiple_and_range():
    width, height = handlers.image_size(Image.new("RGB", (301, 197)), "tiny")  # tiny: multiples of 8, 32-512
    assert (width["value"], height["value"]) == (304, 200)
    width, height = handlers.image_size(Image.new("RGB", (4000, 10)), "tiny")
    assert (width["value"], height["value"]) == (512, 32)


def test_swap_names_the_aspect_of_the_new_size():
    assert handlers.aspect_name(88, 48) == "16:9" and handlers.aspect_name(48, 88) == "9:16"
    assert handlers.aspect_name(100, 37) is None and handlers.aspect_name(0, 10) is None


def test_hires_and_lora_labels_say_what_is_on_and_where_loras_come_from(tmp_path):
    assert handlers.hires_label(True, 2.0, "Latent").label == "Hires fix · on (2x, Latent)"
    assert handlers.hires_label(False, 2.0, "Latent").label == "Hires fix"
    assert "--loras" in handlers.lora_hint(None)
    assert f"put .safetensors files in {tmp_path}" in handlers.lora_hint(tmp_path)


def test_the_wait_text_counts_whoever_is_ahead():
    assert handlers.waiting_text(2, 40.4) == "Waiting: 2 ahead, about 40 s"
    assert handlers.waiting_text(1, None) == "Waiting: 1 ahead"
    assert handlers.waiting_text(0, 3.0) == "Waiting: next, about 3 s"


def test_an_aspect_preset_gives_sizes_the_model_takes():
    width, height = handlers.aspect_size("16:9", "tiny-flux")  # FLUX: multiples of 16
    assert width["value"] % 16 == 0 and height["value"] % 16 == 0 and width["value"] > height["value"]


def test_fallback_switches_the_form_to_the_fallback_models_defaults():
    from studio.web.handlers import model_form_updates

    updates = model_form_updates(FALLBACK_MODEL)
    assert updates["model"]["value"] == "tiny" and updates["sampler"]["value"] == "Euler a"
    assert updates["steps"]["value"] == 8
    assert (updates["width"]["value"], updates["width"]["minimum"], updates["width"]["maximum"]) == (64, 32, 512)


def test_an_edit_only_model_opens_the_edit_tab_at_start_and_when_picked():
    from studio.models import resolve_model
    from studio.web import handlers

    assert handlers.own_task(resolve_model("tiny-qwen-edit")) == "edit"
    assert handlers.own_task(resolve_model("tiny-klein")) is None  # it also generates from text
    updates, _, _ = handlers.model_switch("tiny-qwen-edit", {})
    assert updates["task"] == "edit"
