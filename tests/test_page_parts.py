"""The page's pure parts: aspect sizes, batch-count seeds, Stop's session registry, the token
counter, the models folder, form restores and the ZeroGPU switch."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import tiny_request
from studio import hosting
from studio.ui import handlers, prompt_view
from studio.errors import InvalidValue, UnknownName
from studio.models import local_models
from studio.request import MAX_SEED
from studio.ui.sessions import Run, SessionJobs
from studio.sizes import ASPECT_RATIOS, size_for_aspect


@pytest.mark.parametrize("ratio", list(ASPECT_RATIOS))
@pytest.mark.parametrize("area, low, high", [(512 * 512, 64, 2048), (1024 * 1024, 512, 2048), (64 * 64, 64, 256)])
def test_aspect_sizes_keep_the_area_and_the_ratio(ratio, area, low, high):
    width, height = size_for_aspect(ratio, area, low, high)
    w, h = ASPECT_RATIOS[ratio]
    assert width % 8 == 0 and height % 8 == 0 and low <= width <= high and low <= height <= high
    if low < width < high and low < height < high:  # not clamped
        assert abs(width * height / area - 1) < 0.1
        assert abs((width / height) / (w / h) - 1) < 0.08
    assert (width >= height) == (w >= h) or width == height


def test_aspect_examples_and_errors():
    assert size_for_aspect("1:1", 512 * 512, 64, 2048) == (512, 512)
    assert size_for_aspect("16:9", 1024 * 1024, 512, 2048) == (1368, 768)
    assert size_for_aspect("9:16", 1024 * 1024, 512, 2048) == (768, 1368)
    with pytest.raises(UnknownName, match="'5:4'.*1:1, 4:3"):
        size_for_aspect("5:4", 512 * 512, 64, 2048)


def test_batch_count_gives_every_image_its_own_seed_as_a1111():
    plan = tiny_request(seed=10, batch_size=3).batches(2)
    assert [r.seeds() for r in plan] == [[10, 11, 12], [13, 14, 15]]
    drawn = tiny_request(seed=-1, batch_size=2).batches(3)
    assert drawn[0].seed != -1 and [r.seed for r in drawn] == [drawn[0].seed + 2 * n for n in range(3)]
    assert tiny_request(seed=MAX_SEED).batches(2)[1].seed == 0  # wraps, stays a valid seed
    for bad in (0, 33, 1.5, "2"):
        with pytest.raises(InvalidValue, match="batch_count"):
            tiny_request().batches(bad)


class FakeJob:
    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


def run_in_thread(jobs, session, run, until_cancelled=True, step=None):
    """A handler's run: registered while it works, ending soon after it is cancelled."""
    started = threading.Event()

    def work():
        with jobs.running(session, run):
            job = FakeJob()
            run.start(job)
            started.set()
            while until_cancelled and not job.cancelled:
                time.sleep(0.005)
            if step:
                run.stopped_at = step

    thread = threading.Thread(target=work)
    thread.start()
    started.wait(5)
    return thread


def test_stop_stops_only_the_callers_own_run_and_says_where():
    jobs = SessionJobs()
    mine, theirs = Run(), Run()
    t1 = run_in_thread(jobs, "me", mine, step=(3, 20))
    t2 = run_in_thread(jobs, "you", theirs)
    assert jobs.stop("me") == "Stopped at step 3/20."
    assert mine.cancelled and not theirs.cancelled and jobs.running_count("you") == 1
    assert jobs.stop("nobody") == "Nothing to stop."
    assert jobs.stop("you") == "Stopped."
    t1.join(), t2.join()
    assert jobs.running_count("me") == jobs.running_count("you") == 0  # finished runs are forgotten


def test_a_run_closed_by_gradio_is_reported_to_a_late_stop():
    """Gradio's own cancel may close the stream before the Stop handler runs: Stop still says so."""
    jobs = SessionJobs()

    def handler():
        run = Run()
        with jobs.running("me", run):
            yield 1
            yield 2

    stream = handler()
    next(stream)
    stream.close()  # what Gradio does to a cancelled event's generator
    assert jobs.running_count("me") == 0
    assert jobs.stop("me") == "Stopped."
    assert jobs.stop("other") == "Nothing to stop."


def test_a_run_cancels_the_job_now_and_the_ones_to_come():
    run, first, second = Run(), FakeJob(), FakeJob()
    run.start(first)
    run.cancel()
    assert first.cancelled and run.cancelled
    run.start(second)  # a batch that starts after Stop is cancelled at once
    assert second.cancelled


def test_session_registry_is_thread_safe():
    jobs = SessionJobs()

    def churn(name):
        for _ in range(200):
            run = Run()
            with jobs.running(name, run):
                run.start(FakeJob())
            jobs.stop(name, wait_s=0)

    threads = [threading.Thread(target=churn, args=(f"s{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(jobs.running_count(f"s{i}") == 0 for i in range(8))


@pytest.mark.parametrize(
    "view, expected",
    [
        (None, "Tokens: counted when the model has loaded"),
        ({"chunk_tokens": [7], "warnings": []}, "Tokens: 7/75"),
        ({"chunk_tokens": [75, 12], "warnings": ["x"]}, "Tokens: 75/75 · 12/75 (2 chunks) · ⚠ 1 warning"),
        ({"chunk_tokens": [], "warnings": ["a", "b"]}, "Tokens: 0/75 · ⚠ 2 warnings"),
    ],
)
def test_token_counter(view, expected):
    assert prompt_view.token_counter(view) == expected


def test_token_counter_counts_a1111_chunks(studio):
    studio.load("tiny")
    view = prompt_view.make_parse_prompt(studio)("word " * 80, "A1111", "tiny")
    counts = view["chunk_tokens"]  # the generated tokenizer splits words into several tokens
    assert len(counts) > 1 and set(counts[:-1]) == {75} and 0 < counts[-1] <= 75
    assert prompt_view.token_counter(view).startswith("Tokens: 75/75 · 75/75") and f"({len(counts)} chunks)" in \
        prompt_view.token_counter(view)


def test_the_models_folder_lists_checkpoints_and_diffusers_folders(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.safetensors").write_bytes(b"x")
    (tmp_path / "old.ckpt").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    labels = [label for label, _ in local_models(tmp_path)]
    assert labels == ["a.safetensors", "pipe", "sub/b.safetensors"]
    assert "old.ckpt" in [label for label, _ in local_models(tmp_path, allow_pickle=True)]
    assert local_models(tmp_path / "missing") == [] and local_models(None) == []


def test_model_choices_mark_loaded_models(studio, tmp_path):
    studio.load("tiny")
    (tmp_path / "mine.safetensors").write_bytes(b"x")
    choices = dict((value, label) for label, value in handlers.model_choices(studio, tmp_path, False))
    assert choices["tiny"] == "tiny ● loaded" and choices["sd15"] == "sd15"
    assert choices[str((tmp_path / "mine.safetensors").resolve())] == "mine.safetensors (models folder)"


def test_zero_gpu_is_a_no_op_off_spaces(monkeypatch):
    def fn():
        return 1

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert hosting.on_gpu(fn) is fn and not hosting.zero_gpu_active()
