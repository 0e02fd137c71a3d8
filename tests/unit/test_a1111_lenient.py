"""The A1111 door is as lenient as A1111 1.10 and Forge (issue 27): what real clients send and A1111
accepts runs here too, each replacement said in `notes`; what is not a value at all still names the
key the caller sent, and the field table behind the door stays strict."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from studio import models, samplers
from studio.errors import InvalidValue
from studio.fields import TABLE
from studio.request import GenerationRequest, family_sampler_names
from studio.web.sdapi import lenient, translate, units

# A1111 1.10's /schedulers names, and the samplers its dropdown, Forge and old clients name.
A1111_SCHEDULES = ("automatic", "uniform", "karras", "exponential", "polyexponential", "sgm_uniform", "kl_optimal",
                   "align_your_steps", "simple", "normal", "ddim", "beta")
A1111_SAMPLERS = ("DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
                  "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart", "DDIM",
                  "DDIM CFG++", "PLMS", "UniPC", "LCM", "LMS Karras", "DPM++ 2M Karras", "Euler a CFG++")


def settings_for(payload: dict, task: str = "txt2img", model: str = "tiny", lora_names=()) -> tuple[dict, dict, list]:
    return translate.to_settings(payload, task, model, None, source_of=models.resolve_model,
                                 lora_names=set(lora_names))


def request(settings: dict) -> GenerationRequest:
    """The request the core makes of the settings: it accepts them (its checks are the strict ones)."""
    return GenerationRequest.from_settings(settings)


def picture() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_numbers_sent_as_text_are_read_as_numbers_and_said():
    settings, _, notes = settings_for({"prompt": "x", "cfg_scale": "7.0", "seed": "42", "steps": "20.0",
                                       "width": "64", "batch_size": " 2 ", "n_iter": "1",
                                       "override_settings": {"CLIP_stop_at_last_layers": "2"}})
    made = request(settings)
    assert (made.cfg_scale, made.seed, made.steps, made.width) == (7.0, 42, 20, 64)
    assert (made.batch_size, made.clip_skip) == (2, 2)
    assert settings["batch_count"] == 1
    assert any("cfg_scale '7.0'" in n and "seed '42'" in n and "CLIP_stop_at_last_layers" in n for n in notes)


@pytest.mark.parametrize("key, value", [("steps", "many"), ("steps", "7.5"), ("cfg_scale", "seven"), ("seed", "nan"),
                                        ("hr_resize_x", "big"), ("distilled_cfg_scale", "inf")])
def test_text_that_is_no_number_names_the_key_sent(key, value):
    with pytest.raises(InvalidValue) as exc:
        settings_for({"prompt": "x", "enable_hr": True, key: value})
    assert exc.value.field == key


def test_the_field_table_itself_stays_strict():
    with pytest.raises(InvalidValue):
        GenerationRequest(model="tiny", steps="20")
    with pytest.raises(InvalidValue):
        GenerationRequest(model="tiny", width=100)
    with pytest.raises(InvalidValue):  # a cap is a cap: leniency reads values, it widens nothing
        request(settings_for({"prompt": "x", "steps": "500"})[0])


def test_sizes_run_as_the_nearest_the_model_takes():
    settings, _, notes = settings_for({"prompt": "x", "width": 100, "height": 5000})
    assert (settings["width"], settings["height"]) == (104, 512)  # tiny: multiples of 8 from 32 to 512
    assert any("width 100 ran as 104" in n for n in notes) and any("height 5000 ran as 512" in n for n in notes)
    assert request(settings).width == 104
    flux, _, notes = settings_for({"prompt": "x", "width": 100, "height": 64}, model="tiny-flux")
    assert flux["width"] == 96 and "multiples of 16" in notes[0]  # FLUX's step
    assert settings_for({"prompt": "x", "width": 64}, model="tiny")[2] == []  # a size it takes: nothing said


def test_unknown_styles_are_left_out_and_known_ones_kept():
    settings, _, notes = settings_for({"prompt": "x", "styles": ["None", "Cinematic", "nope"]})
    assert settings["styles"] == ["Cinematic"] and request(settings).styles == ("cinematic",)
    assert notes == ["style 'None' not found: ran without it", "style 'nope' not found: ran without it"]


def test_a_lora_tag_the_folder_lacks_is_left_out_of_both_prompts():
    settings, _, notes = settings_for({"prompt": "a cat <lora:gone:0.8>, <lora:here:0.5>",
                                       "negative_prompt": "<lora:gone> blur"}, lora_names={"here"})
    assert settings["prompt"] == "a cat , <lora:here:0.5>" and settings["negative_prompt"] == " blur"
    assert notes == ["LoRA 'gone' not found: ran without it"]
    # A path or a hub id is the studio's to check (its path rule): never probed or dropped here.
    kept, _, _ = settings_for({"prompt": "<lora:owner/repo:1> <lora:/tmp/x.safetensors:1> <lora:a.safetensors>"})
    assert kept["prompt"] == "<lora:owner/repo:1> <lora:/tmp/x.safetensors:1> <lora:a.safetensors>"


def test_open_webuis_euler_a_with_karras_runs_as_euler_a():
    settings, _, notes = settings_for({"prompt": "x", "sampler_name": "Euler a", "scheduler": "Karras"})
    made = request(settings)
    assert (made.sampler, made.schedule) == ("Euler a", "Automatic")
    assert notes == ["schedule Karras ran as Automatic (sampler Euler a cannot take it; Automatic is its own)"]


@pytest.mark.parametrize("model", ["tiny", "tiny-flux", "tiny-zimage"])
def test_every_sampler_and_schedule_a1111_names_runs_on_every_kind(model):
    served = [s["name"] for s in translate.sampler_items()] + list(A1111_SAMPLERS)
    schedules = [s["name"] for s in translate.schedule_items()] + list(A1111_SCHEDULES) + [None]
    for name in served:
        for schedule in schedules:
            settings, _, _ = settings_for({"prompt": "x", "sampler_name": name, "scheduler": schedule}, model=model)
            made = request(settings)  # the core's strict checks accept what the door made of it
            assert made.sampler in family_sampler_names(made.source.family), (name, schedule)


def test_a1111s_own_names_the_studio_lacks_run_as_the_nearest_and_are_said():
    for name, ours in (("Restart", "Heun"), ("DPM fast", "DPM++ 2M"), ("DPM adaptive", "DPM++ 2M"),
                       ("DDIM CFG++", "DDIM"), ("PLMS", "PLMS"), ("UniPC", "UniPC")):
        settings, _, notes = settings_for({"prompt": "x", "sampler_name": name})
        assert settings["sampler"] == ours and (name == ours) == (notes == []), (name, notes)
    combined, _, notes = settings_for({"prompt": "x", "sampler_name": "LMS Karras"})
    assert (combined["sampler"], combined["schedule"], notes) == ("LMS", "Karras", [])
    for schedule, ours in (("polyexponential", "Exponential"), ("KL Optimal", "Karras"), ("align_your_steps", "Karras"),
                           ("ddim", "Uniform"), ("something_new", "Automatic")):
        settings, _, notes = settings_for({"prompt": "x", "sampler_name": "DPM++ 2M", "scheduler": schedule})
        assert settings["schedule"] == ours and f"scheduler {schedule!r} ran as {ours}" in notes[0]


def test_a_flow_model_runs_a1111s_names_as_its_nearest_flow_sampler():
    settings, _, notes = settings_for({"prompt": "x", "sampler_name": "DPM++ 2M", "scheduler": "karras"},
                                      model="tiny-flux")
    assert (settings["sampler"], settings["schedule"]) == ("DPM++ 2M", "Automatic") and "Karras" in notes[0]
    settings, _, notes = settings_for({"prompt": "x", "sampler_name": "DPM++ SDE Karras"}, model="tiny-flux")
    assert settings["sampler"] == "DPM++ 2M SDE" and "nearest sampler for a flow model" in notes[0]
    assert request(settings).sampler == "DPM++ 2M SDE"
    settings, _, notes = settings_for({"prompt": "x", "sampler_name": "DPM++ 2M"}, model="tiny-zimage")
    assert settings["sampler"] == "Euler" and "zimage family runs" in notes[0]  # the family's own narrower set


def test_every_diffusion_sampler_has_a_flow_counterpart():
    flow = set(samplers.sampler_names("flow"))
    for name in samplers.sampler_names():
        assert name in flow or lenient.FLOW_NEAREST.get(name) in flow, name
    assert all(ours in samplers.sampler_names() for ours in lenient.NEAREST_SAMPLERS.values())
    assert set(lenient.NEAREST_SCHEDULES.values()) <= set(samplers.schedule_names())


def test_a_name_neither_known_nor_mapped_is_still_the_cores_422():
    settings, _, notes = settings_for({"prompt": "x", "sampler_name": "Nope"})
    with pytest.raises(InvalidValue) as exc:
        request(settings)
    assert exc.value.field == "sampler" and units.a1111_field("sampler", {}) == "sampler_name"
    assert "Euler a" in exc.value.allowed and notes == []


@pytest.mark.parametrize("name, ours", [
    ("R-ESRGAN 4x+", "Lanczos"), ("R-ESRGAN 4x+ Anime6B", "Lanczos"), ("ESRGAN_4x", "Lanczos"),
    ("4x-UltraSharp", "Lanczos"), ("SwinIR_4x", "Lanczos"), ("LDSR", "Lanczos"), ("ScuNET", "Lanczos"),
    ("None", "Lanczos"), ("Nearest", "Nearest"), ("Latent", "Latent"), ("Latent (antialiased)", "Latent"),
    ("Latent (nearest)", "Latent (nearest-exact)"), ("Latent (bicubic antialiased)", "Latent (bicubic)"),
    ("Latent (something new)", "Latent")])
def test_upscalers_the_studio_lacks_run_as_the_nearest(name, ours):
    settings, _, notes = settings_for({"prompt": "x", "enable_hr": True, "hr_upscaler": name})
    assert settings["hires_upscaler"] == ours and ours in TABLE["hires_upscaler"].choice_list()
    assert bool(notes) == (name != ours)


def test_a_hires_target_size_wins_over_hr_scale_and_one_side_keeps_the_aspect():
    base = {"prompt": "x", "enable_hr": True, "width": 64, "height": 96, "hr_scale": 3}
    settings, _, notes = settings_for({**base, "hr_resize_x": 128})
    assert settings["hires_scale"] == 2 and request(settings).hires_size == (128, 192)
    assert "target size wins over hr_scale" in notes[0]
    settings, _, _ = settings_for({**base, "hr_resize_x": 0, "hr_resize_y": 144})
    assert request(settings).hires_size == (96, 144)
    assert settings_for({**base, "hr_resize_x": 0, "hr_resize_y": 0})[0]["hires_scale"] == 3  # 0: not given
    with pytest.raises(InvalidValue) as exc:  # the scale's range holds: named by the key sent
        settings_for({**base, "hr_resize_x": 4096})
    assert exc.value.field == "hr_resize_x"


def test_forges_distilled_cfg_scale_is_a_distilled_models_guidance():
    settings, ignored, notes = settings_for({"prompt": "x", "negative_prompt": "y", "cfg_scale": 4,
                                             "distilled_cfg_scale": "3"}, model="tiny-flux")
    made = request(settings)
    assert (made.cfg_scale, made.true_cfg_scale) == (3.0, 4.0) and "distilled_cfg_scale" not in ignored
    assert "distilled guidance" in notes[-1]
    settings, _, _ = settings_for({"prompt": "x", "cfg_scale": 1, "distilled_cfg_scale": 3.5}, model="tiny-flux")
    assert request(settings).true_cfg_scale == 1.0  # Forge's CFG 1: no real CFG
    settings, ignored, _ = settings_for({"prompt": "x", "cfg_scale": 6, "distilled_cfg_scale": 2.5})
    assert settings["cfg_scale"] == 6 and ignored == {"distilled_cfg_scale": 2.5}  # SD: it changes nothing
    assert settings_for({"prompt": "x", "distilled_cfg_scale": 3.5})[1] == {}  # Forge's default: nothing asked


def test_a_controlnet_unit_without_image_takes_the_init_image_on_img2img_only():
    unit = {"module": "canny", "model": "builtin:controlnet/sd15", "image": ""}
    body = {"prompt": "x", "init_images": [picture()], "alwayson_scripts": {"controlnet": {"args": [unit]}}}
    settings, _, notes = settings_for(body, task="img2img")
    assert settings["controlnets"][0]["image"] is settings["init_image"] and "init image" in notes[0]
    with pytest.raises(InvalidValue) as exc:
        settings_for({**body, "init_images": None}, task="txt2img")
    assert exc.value.field == "alwayson_scripts.controlnet.args[0].image"
    with pytest.raises(InvalidValue) as exc:
        settings_for({**body, "alwayson_scripts": {"controlnet": {"args": [{**unit, "image": None}]}}})
    assert exc.value.field == "alwayson_scripts.controlnet.args[0].image"
