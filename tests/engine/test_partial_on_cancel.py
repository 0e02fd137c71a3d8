"""A run interrupted through A1111's API hands back what its denoising had reached, as A1111 does: the
x0 at the step it stopped, decoded once by the model's VAE, never saved. Only where asked: the page's
Stop gets a bare Cancelled and decodes nothing."""

from __future__ import annotations

import pytest
from PIL import Image

from support import pixels, tiny_request
from studio import Cancelled, Progress, Result
from studio.engine import Interrupted
from studio.outputs import OutputFolder
from studio.service import Service


@pytest.fixture
def decodes(studio, monkeypatch):
    """How many times the tiny model's VAE decodes (live previews off, so only a partial would)."""
    vae = studio.load("tiny").pipe.vae
    calls = []
    original = vae.decode

    def decode(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(vae, "decode", decode)
    return calls


def _cancelled_after_step_2(studio, partial: bool):
    """A 20-step run on the tiny model, cancelled once step 2 is reported; every event seen."""
    job = studio.generate(tiny_request(steps=20, width=96, height=64, batch_size=2, seed=5, preview="none"),
                          partial=partial)
    seen = []
    for event in job:
        seen.append(event)
        if isinstance(event, Progress) and event.step == 2:
            job.cancel()
    return seen


def test_an_interrupt_with_partial_asked_ends_with_the_images_reached_decoded_once(studio, decodes):
    seen = _cancelled_after_step_2(studio, partial=True)
    final = seen[-1]
    assert isinstance(final, Interrupted) and isinstance(final, Cancelled)  # a cancel to every reader
    assert not any(isinstance(e, Result) for e in seen)
    assert 2 <= final.step < final.total == 20  # the step its x0 came from: the one under way, at most one more
    assert [image.size for image in final.images] == [(96, 64), (96, 64)]
    assert all(isinstance(image, Image.Image) for image in final.images)
    assert final.seeds == (5, 6)
    assert all(text.endswith(f", Interrupted: step {final.step}/20") and "Seed: " in text for text in final.infotexts)
    assert len(decodes) == 1  # one VAE call for the whole batch


def test_a_plain_cancel_ends_with_no_image_and_decodes_nothing(studio, decodes):
    final = _cancelled_after_step_2(studio, partial=False)[-1]
    assert type(final) is Cancelled and final.step < 20
    assert decodes == []


def test_the_service_hands_an_interrupted_calls_partial_out_without_saving_it(studio, tmp_path):
    service = Service(studio, OutputFolder(tmp_path))
    plan = service.plan({"model": "tiny", "prompt": "a red cube", "steps": 20, "width": 64, "height": 64,
                         "seed": 3, "sampler": "Euler", "batch_count": 2, "preview": "none"})
    for view in service.execute("caller", plan, partial=True):
        if view.step >= 2:
            service.jobs.cancel("caller")
    assert view.saved == [] and view.status.startswith("Stopped at step")
    assert view.partial is not None and [image.size for image in view.partial.images] == [(64, 64)]
    assert view.partial.seeds == (3,) and view.status == f"Stopped at step {view.partial.step}/20."
    assert not list(tmp_path.rglob("*.png"))  # a partial is never an output


def test_without_asking_or_on_a_skip_the_view_has_no_partial(studio, tmp_path):
    service = Service(studio, OutputFolder(tmp_path))
    settings = {"model": "tiny", "prompt": "a red cube", "steps": 20, "width": 64, "height": 64, "seed": 3,
                "sampler": "Euler", "preview": "none"}
    for view in service.execute("caller", service.plan(settings)):
        if view.step >= 2:
            service.jobs.cancel("caller")
    assert view.partial is None and view.saved == []
    skipped = False
    for view in service.execute("caller", service.plan({**settings, "batch_count": 2}), partial=True):
        if view.step >= 2 and not skipped:
            service.jobs.skip("caller")  # A1111's skip: the next batch runs; only an interrupt hands one out
            skipped = True
    assert view.partial is None and [image.seed for image in view.saved] == [4]


def test_a_partial_is_decoded_as_the_finished_image_is(studio):
    """Cancelled in the last step's callback, Euler's x0 is the final latent: the partial is the image."""
    from studio.engine import Job, generation

    request = tiny_request(steps=6, seed=9, preview="none")

    def work(emit, cancel):
        def emit_then_cancel(event):  # on the device thread: the cancel lands in the very next callback
            emit(event)
            if isinstance(event, Progress) and event.step == 5:
                cancel.set()

        generation.run(studio, request, emit_then_cancel, cancel, partial=True)

    final = Job(request, work).result()
    assert isinstance(final, Interrupted) and final.step == final.total == 6
    difference = pixels(final.images[0]).astype(int) - pixels(studio.run(request).images[0]).astype(int)
    assert abs(difference).max() <= 1
