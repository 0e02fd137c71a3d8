"""The app as a user starts it (`python app.py --model tiny`), driven through gradio_client."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import running_app

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    with running_app(tmp_path_factory) as app:
        c = Client(app.url, verbose=False)
        c.outputs_root = app.outputs
        c.app_url = app.url
        c.log = app.log
        yield c


def image_of(gallery) -> np.ndarray:
    path = gallery[0]["image"]
    return np.asarray(Image.open(path).convert("RGB"))


def generate(client, **params):
    base = dict(prompt="a lighthouse", model="tiny", steps=4, width=64, height=64, seed=7)
    return client.predict(**{**base, **params}, api_name="/generate")


def test_generate_with_an_old_a1111_sampler_name_is_reproducible(client):
    images, infotext, seed, status, _ = generate(client, sampler="DPM++ 2M Karras")
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in infotext and "Seed: 7," in infotext
    assert seed == 7 and "noise" in status
    again = generate(client, sampler="DPM++ 2M Karras")
    assert np.array_equal(image_of(images), image_of(again[0]))
    other = generate(client, sampler="DPM++ 2M Karras", seed=8)
    assert not np.array_equal(image_of(images), image_of(other[0]))
    assert Path(images[0]["image"]).suffix == ".png"


def test_random_seed_is_reported_back(client):
    images, infotext, seed, _, _ = generate(client, seed=-1, batch_size=2)
    assert len(images) == 2 and seed >= 0 and f"Seed: {seed}," in infotext


def test_a_call_that_names_no_model_uses_the_model_the_studio_runs(client):
    """As A1111's API uses the loaded checkpoint: this server started on tiny (sd15 is not here)."""
    images, infotext, seed, status, _ = client.predict(prompt="no model named", steps=2, width=64, height=64,
                                                       seed=3, api_name="/generate")
    assert "Model: tiny" in infotext and seed == 3 and len(images) == 1


def test_stream_reports_steps(client):
    job = client.submit(prompt="a lighthouse", model="tiny", steps=5, width=64, height=64, seed=1,
                        sampler="Euler a", preview="latent2rgb", api_name="/generate")
    statuses = [update[3] for update in job]
    assert any("Step 5/5" in s for s in statuses)
    final = job.outputs()[-1]
    assert final[2] == 1
    # The last update carries the run's last live preview as a JPEG, not a page update.
    assert Image.open(final[4]).format == "JPEG"
    assert generate(client, preview="none")[4] is None


def test_bad_values_come_back_as_clear_errors_and_the_app_keeps_serving(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="sampler: 'Euler z' is not valid; allowed: one of DPM\\+\\+ 2M"):
        generate(client, sampler="Euler z")
    # Ranges are the request's, not a slider's: every message names the field, the value and the range.
    with pytest.raises(AppError, match="steps: 500 is not valid; allowed: an integer from 1 to 150"):
        generate(client, steps=500)
    with pytest.raises(AppError, match="steps: -5 is not valid; allowed: an integer from 1 to 150"):
        generate(client, steps=-5)
    with pytest.raises(AppError, match="width: 60 is not valid; allowed: a multiple of 8 from 32 to 512 for model tiny"):
        generate(client, width=60)
    assert generate(client)[2] == 7


def test_the_api_is_typed_by_the_settings_not_by_the_page(client):
    from gradio_client.exceptions import AppError

    api = {p["parameter_name"]: p for p in client.view_api(print_info=False, return_format="dict")
           ["named_endpoints"]["/generate"]["parameters"]}
    for name in ("steps", "width", "height", "batch_size", "batch_count", "clip_skip", "seed", "hires_steps",
                 "mask_blur", "masked_padding"):
        assert "int" in api[name]["python_type"]["type"] and "float" not in api[name]["python_type"]["type"], name
    # Free text (presets, hub ids, folders, files); None: the model this studio runs.
    assert api["model"]["python_type"]["type"] == "None | str" and api["model"]["parameter_default"] is None
    assert api["steps"]["parameter_default"] is None  # None: the requested model's own default
    # The range of the requested model applies, not the starting model's slider: sd15 takes 1024 px
    # (and then cannot be loaded offline, which is what the error says).
    with pytest.raises(AppError, match="sd15|stable-diffusion") as err:
        generate(client, model="sd15", width=1024, height=1024)
    assert "width" not in str(err.value)
    # Defaults follow the requested model: tiny-xl's CFG is 6, tiny's 7.
    _, infotext, *_ = client.predict(prompt="defaults", model="tiny-xl", steps=2, seed=1, api_name="/generate")
    assert "CFG scale: 6," in infotext and "Size: 64x64" in infotext and "Sampler: Euler a" in infotext


def test_view_api_describes_every_parameter_types_choices_as_enums_and_names_the_outputs(client):
    """What a script writer reads in `Client.view_api()`: each parameter described from its field, a
    choice among names an enum, the streamed values named, `/stop` explained."""
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    generate_api = endpoints["/generate"]
    api = {p["parameter_name"]: p for p in generate_api["parameters"]}
    assert all(p["python_type"]["description"] for p in api.values()), [n for n, p in api.items()
                                                                          if not p["python_type"]["description"]]
    assert api["steps"]["python_type"]["description"].startswith("Steps; an integer from 1 to 150")
    assert "'DPM++ 2M Karras' work too" in api["sampler"]["python_type"]["description"]
    sampler = api["sampler"]["type"]["oneOf"][1]  # None: the model's default
    assert "Euler a" in sampler["enum"] and "DPM++ 2M" in sampler["enum"]
    assert "Literal[" in api["sampler"]["python_type"]["type"] and "'Euler a'" in api["sampler"]["python_type"]["type"]
    assert api["resize_mode"]["type"]["enum"] == ["Just resize", "Crop and resize", "Resize and fill"]
    assert "Lanczos" in api["hires_upscaler"]["type"]["enum"] and "Karras" in api["schedule"]["type"]["oneOf"][1]["enum"]
    assert api["model"]["python_type"]["type"] == "None | str"  # free text stays free text
    returns = generate_api["returns"]
    assert [r["label"] for r in returns] == ["images", "infotext", "seed", "status", "preview"]
    assert all(r["python_type"]["description"] for r in returns)
    assert generate_api["description"].startswith("Generate images")

    stop = endpoints["/stop"]
    (key,) = stop["parameters"]
    assert key["parameter_name"] == "key" and key["parameter_default"] == ""
    assert "tab key" in key["python_type"]["description"] and '""' in key["python_type"]["description"]
    (status,) = stop["returns"]
    assert status["label"] == "status" and status["python_type"]["type"] == "str"
    assert "Nothing to stop." in status["python_type"]["description"] and stop["description"].startswith("Stop your")
    printed = client.view_api(print_info=False, return_format="str")
    assert "-> (images, infotext, seed, status, preview)" in printed and 'api_name="/stop") -> status' in printed


def test_documented_api_reads_the_docstring_and_refuses_one_that_does_not_name_the_outputs():
    """The helper wraps Gradio's private detail (an Api component's label and schema): checked on a
    small Blocks, without a server."""
    import gradio as gr

    from studio.web.generate_api import documented_api

    def add(a: int, b: int = 2) -> tuple[int, str]:
        """Add two numbers.

        Parameters:
            a: the first
            b: the second
        Returns:
            total: their sum
            words: the sum in words
        """
        return a + b, str(a + b)

    def bare(a: int) -> int:
        """No sections."""
        return a

    with gr.Blocks() as demo:
        documented_api(add, api_name="add")
        with pytest.raises(ValueError, match="bare: its docstring's Returns: needs one 'name: text' line"):
            documented_api(bare, api_name="bare")
    info = demo.get_api_info()["named_endpoints"]["/add"]
    assert [(p["parameter_name"], p["python_type"]["description"]) for p in info["parameters"]] == [
        ("a", "the first"), ("b", "the second")]
    assert [(r["label"], r["python_type"]["type"], r["python_type"]["description"]) for r in info["returns"]] == [
        ("total", "int", "their sum"), ("words", "str", "the sum in words")]


def test_cancel_stops_the_job_and_frees_the_device(client):
    job = client.submit(prompt="slow", model="tiny", steps=150, width=256, height=256, seed=1,
                        api_name="/generate")
    deadline = time.monotonic() + 60
    while not any("Step" in str(update[3]) for update in job.outputs()) and time.monotonic() < deadline:
        time.sleep(0.1)
    job.cancel()
    # The server stops the job within a step (its log says where), and the device is free for the next.
    wait_for(lambda: "Cancelled at step" in client.log.read_text(), timeout=120)
    stopped = int(client.log.read_text().split("Cancelled at step ")[-1].split("/")[0])
    assert stopped < 150
    assert generate(client, steps=2)[2] == 7


def test_a1111_prompt_and_its_compel_spelling_give_the_same_image(client):
    a1111 = generate(client, prompt="a ((lighthouse)) at (dusk:1.3)")
    compel = generate(client, prompt="a lighthouse++ at (dusk)1.3", prompt_syntax="compel")
    plain = generate(client, prompt="a lighthouse at dusk")
    assert np.array_equal(image_of(a1111[0]), image_of(compel[0]))
    assert not np.array_equal(image_of(a1111[0]), image_of(plain[0]))
    assert "Prompt syntax: compel" in compel[1]


def test_parse_prompt_endpoint(client):
    view = client.predict(prompt="a ((cat)) (dog", prompt_syntax="A1111", model="tiny", api_name="/parse_prompt")
    assert view["fragments"][1] == {"text": "cat", "weight": 1.21}
    assert view["chunk_tokens"] and view["chunk_tokens"][0] > 0
    assert any("never closed" in w for w in view["warnings"])


def test_finished_images_are_saved_and_served_with_their_metadata(client):
    from studio.metadata import read_png

    images, infotext, seed, _, _ = generate(client, prompt="a saved lighthouse", seed=77, batch_size=2)
    served = read_png(Path(images[1]["image"]).read_bytes())
    assert served.infotext and "Seed: 78," in served.infotext
    assert (served.request["seed"], served.request["batch_size"], served.request["batch_index"]) == (77, 2, 1)
    saved = sorted(client.outputs_root.glob("*/*-78.png"))
    assert saved and read_png(saved[-1].read_bytes()).infotext == served.infotext


def test_styles_are_applied_and_the_final_prompt_is_recorded(client):
    _, infotext, _, _, _ = generate(client, prompt="a lighthouse", negative_prompt="fog", styles=["watercolor"])
    assert infotext.startswith("watercolor painting of a lighthouse")
    assert "Negative prompt: fog, anime" in infotext
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="styles: 'vaporwave' is not valid; allowed: one of .*cinematic"):
        generate(client, styles=["vaporwave"])


def test_png_info_reads_our_png_and_an_a1111_text(client, tmp_path):
    from gradio_client import handle_file
    from PIL import PngImagePlugin

    images, infotext, _, _, _ = generate(client, prompt="png info please", seed=31)
    text, found = client.predict(image=handle_file(images[0]["image"]), api_name="/png_info")
    assert text == infotext and found["fields"]["seed"] == 31 and found["fields"]["prompt"] == "png info please"

    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", "a cat\nNegative prompt: dog\nSteps: 9, Sampler: Euler a, CFG scale: 5, Seed: 3, Size: 64x64")
    a1111 = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(a1111, pnginfo=chunks)
    text, found = client.predict(image=handle_file(str(a1111)), api_name="/png_info")
    fields = found["fields"]
    assert {k: fields[k] for k in ("prompt", "negative_prompt", "steps", "sampler", "cfg_scale", "seed", "width",
                                   "height")} == {"prompt": "a cat", "negative_prompt": "dog", "steps": 9,
                                                  "sampler": "Euler a", "cfg_scale": 5.0, "seed": 3, "width": 64,
                                                  "height": 64}
    # What the text leaves out means A1111's defaults: no hires fix, no styles, clip skip 1, text to image.
    assert fields["task"] == "txt2img" and fields["hires"] is False and fields["styles"] == []
    assert fields["clip_skip"] == 1 and "model" not in fields

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not a readable image"):
        client.predict(image=handle_file(str(junk)), api_name="/png_info")


def test_batch_count_runs_batches_with_consecutive_seeds(client):
    images, infotext, seed, status, _ = generate(client, seed=10, batch_size=2, batch_count=2)
    assert len(images) == 4 and seed == 10 and "Seed: 10," in infotext and "Batch 2/2 done" in status
    from studio.metadata import read_png

    metas = [read_png(Path(item["image"]).read_bytes()) for item in images]
    assert [m.infotext.split("Seed: ")[1].split(",")[0] for m in metas] == ["10", "11", "12", "13"]
    # Each PNG stores its batch (first seed, size) and its place in it: batch 2 starts at seed 12.
    assert [(m.request["seed"], m.request.get("batch_index")) for m in metas] == [(10, 0), (10, 1), (12, 0), (12, 1)]
    # A batch with the same seeds reproduces itself exactly (a batch of 1 may differ in the last bits).
    again = generate(client, seed=12, batch_size=2)
    assert all(np.array_equal(image_of([a]), image_of([b])) for a, b in zip(images[2:], again[0]))


def wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def wait_until_stepping(job, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not any("Step" in str(update[3]) for update in job.outputs()):
        assert time.monotonic() < deadline, "the job never started stepping"
        time.sleep(0.05)


def test_sessions_are_isolated_one_stops_the_other_finishes_and_waiters_see_their_place(client):
    """Two users: A runs a long job, B queues behind it and sees its queue position; B's Stop
    removes B's waiting request and touches nothing of A's; A's Stop ends A's job only, and B's
    next request then runs."""
    from gradio_client import Client
    from gradio_client.utils import Status as ClientStatus

    a, b = Client(client.app_url, verbose=False), Client(client.app_url, verbose=False)
    long_job = a.submit(prompt="a's long run", model="tiny", steps=150, width=256, height=256, seed=1,
                        api_name="/generate")
    wait_until_stepping(long_job)
    short_job = b.submit(prompt="b's run", model="tiny", steps=3, width=64, height=64, seed=5, api_name="/generate")
    deadline = time.monotonic() + 30
    while (status := short_job.status()).code != ClientStatus.IN_QUEUE:
        assert time.monotonic() < deadline, f"b never queued: {status}"
        time.sleep(0.05)
    assert status.rank is not None and status.queue_size is not None  # what the page shows as "queue: k/n"

    # b's Stop removes b's waiting request before it starts (it never runs a step), nothing of a's.
    assert b.predict(api_name="/stop") == "Removed from the queue."
    with pytest.raises(Exception, match="Stopped before it started"):
        short_job.result(timeout=30)
    short_job = b.submit(prompt="b's run", model="tiny", steps=3, width=64, height=64, seed=5, api_name="/generate")
    steps_before = len(long_job.outputs())
    wait_for(lambda: len(long_job.outputs()) > steps_before + 1, timeout=120)  # a's job keeps going
    assert not long_job.done()

    assert a.predict(api_name="/stop").startswith("Stopped at step")
    final = short_job.result(timeout=60)
    assert "b's run" in final[1] and "Seed: 5," in final[1]
    statuses = [str(update[3]) for update in long_job.outputs()]
    assert any(s.startswith("Stopped at step") for s in statuses)
    assert not any("a's long run" in str(update[1]) for update in long_job.outputs())  # no image from a


def test_img2img_inpaint_and_hires_through_the_api(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    rng = np.random.RandomState(0)
    Image.fromarray((rng.rand(64, 64, 3) * 255).astype("uint8")).save(tmp_path / "init.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 40, 40))
    mask.save(tmp_path / "mask.png")
    (tmp_path / "not-an-image.png").write_bytes(b"plain text")
    init = handle_file(str(tmp_path / "init.png"))

    kept = generate(client, task="img2img", init_image=init, denoising_strength=0)
    assert np.array_equal(image_of(kept[0]), np.asarray(Image.open(tmp_path / "init.png").convert("RGB")))
    half = generate(client, task="img2img", init_image=init, denoising_strength=0.5)
    assert "Denoising strength: 0.5" in half[1]

    painted = generate(client, task="inpaint", init_image=init, mask=handle_file(str(tmp_path / "mask.png")),
                       mask_blur=0)
    out, original = image_of(painted[0]).astype(int), np.asarray(Image.open(tmp_path / "init.png")).astype(int)
    outside = np.asarray(mask) == 0
    assert np.abs(out - original)[outside].max() <= 1 and "Mask blur: 0" in painted[1]

    big = generate(client, hires=True, hires_scale=1.5, hires_strength=0.5)
    assert Image.open(big[0][0]["image"]).size == (96, 96) and "Hires upscale: 1.5" in big[1]

    with pytest.raises(AppError, match="init_image: None is not valid; allowed: an image: task img2img needs init_image"):
        generate(client, task="img2img")
    with pytest.raises(AppError, match="mask: None is not valid; allowed: an image: task inpaint needs init_image and mask"):
        generate(client, task="inpaint", init_image=init)
    with pytest.raises(AppError, match="init_image: .*an image file"):
        generate(client, task="img2img", init_image=handle_file(str(tmp_path / "not-an-image.png")))


def test_every_png_regenerates_exactly_through_png_info_and_generate(client, tmp_path):
    """/png_info's fields are /generate's keyword arguments: each PNG comes back as the same image
    (input images are not stored in PNGs: they are sent again)."""
    from gradio_client import handle_file

    Image.fromarray((np.random.RandomState(3).rand(64, 64, 3) * 255).astype("uint8")).save(tmp_path / "init.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 40, 40))
    mask.save(tmp_path / "mask.png")
    images = {"init_image": handle_file(str(tmp_path / "init.png")), "mask": handle_file(str(tmp_path / "mask.png"))}
    cases = [
        dict(prompt="a (castle:1.2) BREAK a moat", negative_prompt="fog", styles=["watercolor", "anime"],
             sampler="DPM++ 2M SDE", schedule="Karras", cfg_scale=5.5, clip_skip=2, batch_size=2),
        dict(prompt="hires", hires=True, hires_scale=1.5, hires_upscaler="Lanczos", hires_steps=2, hires_strength=0.4,
             batch_size=2),
        dict(prompt="compel words++", prompt_syntax="compel", rng="device", sampler="Euler a"),
        dict(prompt="img2img", task="img2img", init_image=images["init_image"], denoising_strength=0.6,
             resize_mode="Crop and resize"),
        dict(prompt="inpaint", task="inpaint", **images, mask_blur=2, masked_content="latent noise",
             inpaint_area="Only masked", masked_padding=8, batch_size=2),
    ]
    for case in cases:
        made, *_ = generate(client, **{"seed": -1, **case})
        for index, item in enumerate(made):
            _, found = client.predict(image=handle_file(item["image"]), api_name="/png_info")
            assert found["batch_index"] == index
            inputs = {name: images[name] for name in ("init_image", "mask") if case.get(name)}
            again, *_ = client.predict(**found["fields"], **inputs, api_name="/generate")
            assert np.array_equal(image_of([item]), image_of(again[index:])), case


def test_controlnet_units_through_the_api(client, tmp_path):
    """A gradio_client call with a unit: its picture uploaded with handle_file, canny, the tiny
    ControlNet; the image follows it (not the plain one), the infotext carries the unit, and a unit
    without its picture is a clear error."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from PIL import ImageDraw

    photo = Image.new("RGB", (96, 96), (90, 90, 90))
    ImageDraw.Draw(photo).rectangle((20, 20, 70, 70), fill=(240, 240, 240))
    photo.save(tmp_path / "photo.png")
    unit = {"image": handle_file(str(tmp_path / "photo.png")), "module": "canny", "model": "builtin:controlnet/sd15",
            "weight": 1.0}
    plain = image_of(generate(client, seed=11)[0])
    images, infotext, seed, status, _ = generate(client, seed=11, controlnets=[unit])
    assert 'ControlNet 0: "Module: canny, Model: builtin:controlnet/sd15, Weight: 1.0' in infotext
    assert not np.array_equal(image_of(images), plain)
    with pytest.raises(AppError, match=r"controlnets\[0\].image"):
        generate(client, controlnets=[{**unit, "image": None}])


def test_image_prompts_through_the_api(client, tmp_path):
    """A gradio_client call with two image prompts (pictures uploaded with handle_file, each its own
    weight): the image changes, the infotext carries them as A1111's IP-Adapter units, and a bad
    weight is a clear error naming the prompt."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    Image.new("RGB", (64, 48), (200, 40, 30)).save(tmp_path / "red.png")
    Image.new("RGB", (48, 64), (30, 60, 200)).save(tmp_path / "blue.png")
    prompts = [{"image": handle_file(str(tmp_path / "red.png")), "model": "builtin:ip-adapter/sd15", "weight": 0.8},
               {"image": handle_file(str(tmp_path / "blue.png")), "model": "builtin:ip-adapter/sd15", "weight": 0.4}]
    plain = image_of(generate(client, seed=12)[0])
    images, infotext, *_ = generate(client, seed=12, image_prompts=prompts)
    assert 'ControlNet 0: "Module: ip-adapter-auto, Model: builtin:ip-adapter/sd15, Weight: 0.8' in infotext
    assert 'ControlNet 1: "Module: ip-adapter-auto, Model: builtin:ip-adapter/sd15, Weight: 0.4' in infotext
    assert not np.array_equal(image_of(images), plain)
    with pytest.raises(AppError, match=r"image_prompts\[1\].weight: 7"):
        generate(client, image_prompts=[prompts[0], {**prompts[1], "weight": 7}])
