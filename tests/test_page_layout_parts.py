"""The page's helpers behind issue "A page artists want to live in": model switching that keeps
what fits, sizes from a dropped picture, the Hires and LoRA labels, the queue's wait text, the
history a browser keeps, elapsed time across passes, and a failed load that evicts nothing."""

from __future__ import annotations

import pytest
from PIL import Image

from studio import GenerationRequest, Studio
from studio.cache import LRUCache
from studio.errors import ModelUnavailable
from studio.events import Progress
from studio.metadata import MetadataError, read_png
from studio.ui import handlers
from studio.ui.sessions import HistorySigner, Run, SessionJobs


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


def test_jobs_estimate_the_running_work_and_a_typical_run():
    jobs = SessionJobs()
    assert jobs.busy() is None and jobs.typical_s() is None
    run = Run()
    with jobs.running("a/", run):
        run.eta_s = 12.5
        assert jobs.busy() == 12.5
    assert jobs.busy() is None and jobs.typical_s() is not None


def test_a_history_the_browser_kept_comes_back_only_with_the_servers_signature(tmp_path):
    kept = tmp_path / "00001-1.png"
    kept.write_bytes(b"png")
    signer = HistorySigner()
    entries = signer.sign([str(kept), str(tmp_path / "gone.png")])
    assert signer.verify(entries, 200) == (str(kept),)  # a removed file is dropped
    forged = ["0" * 32 + ":" + str(kept), "no colon", 7, f"{entries[0].split(':')[0]}:/etc/passwd"]
    assert signer.verify(forged, 200) == ()
    assert HistorySigner().verify(entries, 200) == ()  # another server process signed them
    assert signer.verify("not a list", 200) == ()


def test_elapsed_time_runs_on_through_the_hires_pass():
    studio = Studio(device="cpu", cache_size=1)
    request = GenerationRequest(prompt="a castle", model="tiny", steps=4, width=64, height=64, seed=1, hires=True,
                                hires_scale=1.5, preview="none")
    progress = [e for e in studio.generate(request) if isinstance(e, Progress)]
    assert progress[-1].step == progress[-1].total > 4  # both passes counted
    elapsed = [e.elapsed_s for e in progress]
    assert elapsed == sorted(elapsed)  # never restarts at the second pass


def test_a_model_that_cannot_be_fetched_evicts_nothing():
    studio = Studio(device="cpu", cache_size=1)
    studio.load("tiny")
    with pytest.raises(ModelUnavailable):
        studio.load("someone/not-on-this-machine")  # HF_HUB_OFFLINE: fails before loading anything
    assert studio.is_loaded("tiny") and studio.load_count == 1


def test_the_cache_keeps_its_models_when_preparing_a_load_fails():
    evicted = []
    cache = LRUCache(1, on_evict=evicted.append)
    cache.get_or_load("a", lambda: "model a")

    def fail() -> None:
        raise RuntimeError("cannot fetch")

    with pytest.raises(RuntimeError):
        cache.get_or_load("b", lambda: "model b", prepare=fail)
    assert cache.keys() == ["a"] and not evicted
    assert cache.get_or_load("b", lambda: "model b") == ("model b", True) and evicted == ["model a"]


def test_png_info_on_a_non_image_says_so_without_python_object_names():
    with pytest.raises(MetadataError) as refused:
        read_png(b"hello, not a picture")
    assert "not an image file" in str(refused.value) and "BytesIO" not in str(refused.value)


def test_the_prompt_preview_counts_both_prompts_with_styles_and_shows_warnings_first():
    from studio.ui.prompt_view import make_prompt_preview, parsed_html

    studio = Studio(device="cpu", cache_size=1)
    studio.load("tiny")
    preview = make_prompt_preview(studio)
    plain = preview("a cube", "", [], "A1111", "tiny")
    styled = preview("a cube", "", ["cinematic"], "A1111", "tiny")
    assert plain[0].startswith("Tokens: ") and styled[1].startswith("Negative tokens: ")
    assert plain[0] != styled[0] and "cinematic film still of a cube" in styled[2]  # counted with the style
    html = parsed_html({"fragments": [{"text": "<b>up</b>", "weight": 1.3}, {"text": "down", "weight": 0.8}],
                        "warnings": ["'(' never closed"]}, "Prompt")
    assert html.index("warning") < html.index("weight-up") < html.index("weight-down")
    assert "&lt;b&gt;up&lt;/b&gt;" in html and "<b>up</b>" not in html  # the prompt's text is escaped


def test_the_eta_weighs_the_hires_pass_by_its_pixels(monkeypatch):
    """First pass: 2 steps at 1 unit each; hires pass: 2 steps at 4 units (twice the size). After the
    first pass's 2 steps in 2 s, 8 units are left at 1 unit/s: 8 s, not the 2 s that counting
    steps alike would say."""
    from types import SimpleNamespace
    import threading

    from studio.engine import passes

    clock = iter([0.0, 2.0, 2.0])
    monkeypatch.setattr(passes.time, "perf_counter", lambda: next(clock))
    events = []
    pipe = SimpleNamespace(num_timesteps=2)
    reporter = passes.ProgressReporter(2, events.append, threading.Event(), total=4, work=(0.0, 1.0, 10.0))
    reporter(pipe, 1, None, {})  # the first pass's last step, 2 s in
    assert events[-1].step == 2 and events[-1].total == 4
    assert events[-1].eta_s == pytest.approx(8.0) and events[-1].elapsed_s == pytest.approx(2.0)


def test_a_hires_request_knows_each_pass_s_share_of_the_work():
    request = GenerationRequest(prompt="a castle", model="tiny", steps=4, width=64, height=64, hires=True,
                                hires_scale=2.0, hires_steps=4)
    from studio.tasks import plan_passes

    (first, second), (n1, n2) = request.pass_costs(), plan_passes(request)
    assert second / n2 == pytest.approx(4 * first / n1)  # a hires step has 4x the pixels
    assert request.cost() == pytest.approx((first + second) / 1e6)


def test_an_aspect_preset_gives_sizes_the_model_takes():
    width, height = handlers.aspect_size("16:9", "tiny-flux")  # FLUX: multiples of 16
    assert width["value"] % 16 == 0 and height["value"] % 16 == 0 and width["value"] > height["value"]
