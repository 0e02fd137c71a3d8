"""Other tools' PNGs and the form's model: what an import reads, what it says it left out, and the
one step that fits settings to a model (a restore and a model switch share it). Pure: no engine."""

from __future__ import annotations

from PIL import Image, PngImagePlugin

from studio import models
from studio.infotext import format_infotext, parse_infotext, unused_params
from studio.metadata import read_png
from studio.pnginfo import infotext_settings, recall
from studio.request import GenerationRequest
from studio.sizes import snap
from studio.web import handlers, restore

A1111_TEXT = ("a cat from elsewhere\nNegative prompt: dog\nSteps: 5, Sampler: DPM++ 2M, Schedule type: Karras, "
              "CFG scale: 6, Seed: 9, Size: 512x768, Model hash: {hash}, Model: {model}, "
              "Variation seed: 123, Variation seed strength: 0.3, ENSD: 31337, RNG: NV, Emphasis: Original, "
              "TI hashes: \"easyneg: 1a2b3c4d5e\", Lora hashes: \"detail: 0123456789ab\", Version: v1.9.4")


def a1111_png(tmp_path, model="someone-elses-mix", model_hash="0123abcdef", text=A1111_TEXT) -> str:
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", text.format(model=model, hash=model_hash))
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=chunks)
    return str(path)


def test_well_known_a1111_checkpoints_are_the_presets_of_that_model(tmp_path):
    assert models.find_checkpoint("v1-5-pruned-emaonly", "6ce0161689", None) == "sd15"
    assert models.find_checkpoint("renamed", "6ce0161689", None) == "sd15"  # by hash alone
    assert models.find_checkpoint("v1-5-pruned", "a9263745", None) == "sd15"
    assert models.find_checkpoint("sd_xl_base_1.0", "31e35c80fc", None) == "sdxl"
    assert models.find_checkpoint("someone-elses-mix", "0123abcdef", None) is None
    recalled = recall(read_png(a1111_png(tmp_path, "v1-5-pruned-emaonly", "6ce0161689")))
    assert recalled.fields["model"] == "sd15"
    assert any("v1-5-pruned-emaonly" in n and "sd15 preset" in n for n in recalled.notes), recalled.notes
    assert recalled.fields["width"] == 512 and recalled.fields["height"] == 768  # in SD 1.5's range


def test_every_key_the_studio_does_not_use_is_named_in_the_import_note(tmp_path):
    recalled = recall(read_png(a1111_png(tmp_path)))
    unused = next(n for n in recalled.notes if n.startswith("Not used by the studio"))
    for key in ("ENSD: 31337", "Emphasis: Original"):
        assert key in unused, (key, unused)
    assert "Variation seed" not in unused  # read: variation seeds run here (studio/variation_fields.py)
    assert (recalled.fields["subseed"], recalled.fields["subseed_strength"]) == (123, 0.3)
    assert "Steps" not in unused and "Model hash" not in unused and "Version" not in unused
    assert "TI hashes" not in unused  # read: PNG Info says whether the embeddings folder has them
    assert any("Embedding easyneg (hash 1a2b3c4d5e)" in n and "--embeddings-dir" in n for n in recalled.notes)
    assert any(n.startswith("RNG NV") for n in recalled.notes)
    assert any("LoRA detail (hash 0123456789ab)" in n and "--loras" in n for n in recalled.notes)
    assert any("someone-elses-mix" in n and "current model" in n for n in recalled.notes)


def test_our_own_infotext_leaves_no_key_unused():
    request = GenerationRequest(model="tiny", prompt="a", seed=3, batch_size=2, clip_skip=2, hires=True)
    params = parse_infotext(format_infotext(request, 1, extras={"Model hash": "abc"})).params
    assert unused_params(params) == {}


def test_forges_simple_schedule_reads_as_automatic_with_a_note():
    found, notes = infotext_settings({"Steps": "20", "Sampler": "Euler", "Schedule type": "Simple"})
    assert found["schedule"] == "Automatic"
    assert any("Schedule type Simple" in n and "Automatic" in n for n in notes)


def test_a_distilled_guidance_model_writes_cfg_as_forge_does_and_reads_it_back():
    request = GenerationRequest(model="tiny-flux", prompt="a", seed=1, cfg_scale=3.5)
    text = format_infotext(request, extras={"Distilled CFG Scale": "3.5"})
    assert "CFG scale: 1, Distilled CFG Scale: 3.5" in text
    found, _ = infotext_settings(parse_infotext(text).params)
    assert found["cfg_scale"] == 3.5
    real = GenerationRequest(model="tiny-flux", prompt="a", seed=1, cfg_scale=3.5, true_cfg_scale=4.0)
    assert "CFG scale: 4, Distilled CFG Scale: 3.5" in format_infotext(real, extras={"Distilled CFG Scale": "3.5"})
    sd = GenerationRequest(model="tiny", prompt="a", seed=1, cfg_scale=7.0)
    assert "CFG scale: 7," in format_infotext(sd, extras={})


def test_sizes_round_to_the_nearest_multiple_in_range():
    assert snap(200, 64, 512, 16) in (192, 208) and snap(200, 64, 512, 64) == 192
    assert snap(768, 32, 512, 8) == 512 and snap(10, 40, 512, 16) == 48


def test_a_model_switch_fits_sizes_to_the_nearest_and_cfg_to_the_new_kind_of_guidance():
    updates, note, _ = handlers.model_switch("tiny-flux", {"sampler": "Euler a", "schedule": "Automatic", "steps": 8,
                                                           "cfg_scale": 7.0, "width": 200, "height": 64})
    assert updates["width"]["value"] in (192, 208) and "width 200 →" in note
    assert updates["cfg_scale"]["value"] == 3.5 and "cfg_scale 7 → 3.5" in note
    assert updates["true_cfg_scale"]["visible"] is True
    updates, _, _ = handlers.model_switch("tiny", {"sampler": "Euler", "schedule": "Automatic", "steps": 8,
                                                   "cfg_scale": 3.5, "width": 64, "height": 64})
    assert updates["true_cfg_scale"]["visible"] is False and "value" not in updates["cfg_scale"]
    assert restore.model_notice(models.resolve_model("tiny-flux")).startswith("Running the offline **tiny-flux**")
    assert restore.model_notice(models.resolve_model("sd15")) == ""


def test_a_restore_fits_the_forms_model_as_a_switch_does():
    """A 512x768 image from a checkpoint this studio lacks, sent to a form on `tiny` (sizes to 512)."""
    changes, changed = restore.fit_to_model(models.resolve_model("tiny"), {"width": 512, "height": 768})
    assert changes["height"]["value"] == 512 and changes["height"]["maximum"] == 512
    assert changed == ["height 768 → 512 (this model takes 32-512, multiples of 8)"]
    # The image's own model: its CFG is meaningful for it, whatever the value
    changes, changed = restore.fit_to_model(models.resolve_model("tiny-flux"), {"cfg_scale": 7.0}, guidance_known=True)
    assert "value" not in changes["cfg_scale"] and changed == []


def test_png_info_shows_the_settings_by_label_with_the_notes():
    recalled = {"message": "", "fields": {"prompt": "a cat | a dog", "steps": 20, "styles": ["warm"],
                                          "loras": [["detail", 0.5]], "negative_prompt": ""},
                "notes": ["Not used by the studio: ENSD: 31337"], "batch_index": 0}
    text = restore.settings_markdown(recalled)
    assert "| Prompt | a cat \\| a dog |" in text and "| Steps | 20 |" in text and "| Styles | warm |" in text
    assert "| LoRAs | detail:0.5 |" in text and "Negative prompt" not in text  # empty values left out
    assert text.endswith("- Not used by the studio: ENSD: 31337")
    assert restore.settings_markdown({}) == ""
    txt2img = restore.settings_markdown({"fields": {"task": "txt2img", "steps": 3, "mask_blur": 4}})
    assert "| Steps | 3 |" in txt2img and "Mask blur" not in txt2img  # inpaint's settings left out


def test_the_status_line_counts_down_the_whole_call_not_one_batch():
    from studio.events import Progress
    from studio.service.execute import status_line

    event = Progress(step=5, total=10, it_per_s=2.0, eta_s=2.5, elapsed_s=2.5)
    assert status_line(event) == "Step 5/10 · 2.00 it/s · ETA 2.5s · 2.5s elapsed"
    assert status_line(event, 0, 3, eta_s=12.5, elapsed_s=2.5) == \
        "Batch 1/3 · Step 5/10 · 2.00 it/s · ETA 12.5s · 2.5s elapsed"


def test_forges_real_cfg_beside_distilled_cfg_is_read_as_true_cfg():
    from studio.fields import TABLE

    read = TABLE["true_cfg_scale"].from_infotext
    assert read({"CFG scale": "3.5", "Distilled CFG Scale": "3.5"}) == 3.5  # Forge's FLUX dev with real CFG
    assert read({"CFG scale": "1", "Distilled CFG Scale": "3.5"}) == 1.0  # Forge's FLUX dev, real CFG off
    assert read({"CFG scale": "7"}) == 1.0  # SD: its CFG is real CFG already
    assert read({"True CFG scale": "4", "CFG scale": "4", "Distilled CFG Scale": "3.5"}) == 4.0  # ours
