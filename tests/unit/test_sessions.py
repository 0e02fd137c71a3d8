"""Each visitor's runs: Stop stops only the caller's own run and says where, a run closed by Gradio is
reported to a late Stop, the registry is thread safe, the jobs' estimates, a history signed by the
server, and the tab key that Stop and History need besides the session id."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from studio.errors import InvalidValue
from studio.web import handlers
from studio.web.queue_guard import QueueGuard, visitor
from studio.service import Run, SessionJobs
from studio.web.sessions import History, HistorySigner, own_history


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
    owner = "a1" * 16
    entries = signer.sign([str(kept), str(tmp_path / "gone.png")], owner)
    assert signer.verify(entries, owner, 200) == (str(kept),)  # a removed file is dropped
    forged = ["0" * 32 + ":" + str(kept), "no colon", 7, f"{entries[0].split(':')[0]}:/etc/passwd"]
    assert signer.verify(forged, owner, 200) == ()
    assert HistorySigner().verify(entries, owner, 200) == ()  # another server process signed them
    assert signer.verify("not a list", owner, 200) == ()


def test_a_history_entry_opens_only_in_the_tab_that_kept_it(tmp_path):
    """An entry copied out of one tab's storage (or from another visitor) opens nothing in another tab:
    entries are signed for the owner secret of the tab that made them."""
    kept = tmp_path / "00001-1.png"
    kept.write_bytes(b"png")
    signer = HistorySigner()
    entries = signer.sign([str(kept)], "a1" * 16)
    assert signer.verify(entries, "b2" * 16, 200) == ()
    assert signer.verify(entries, "a1" * 16, 200) == (str(kept),)
    # no owner, or a guessable one: nothing is signed, nothing opens
    assert signer.sign([str(kept)], "") == [] and signer.sign([str(kept)], "short") == []
    assert signer.verify(signer.sign([str(kept)], "x" * 16), "", 200) == ()


def test_a_history_answers_only_to_the_key_it_was_made_with():
    mine = History("tab-a", ("one.png", "two.png"))
    assert own_history(mine, "tab-a") == ("one.png", "two.png")
    assert own_history(None, "anything") == () and own_history([], "") == ()  # a fresh tab has none
    with pytest.raises(InvalidValue, match="tab key"):
        own_history(mine, "tab-b")
    with pytest.raises(InvalidValue, match="tab key"):
        handlers.history_view(mine, "")


def test_stop_with_the_session_id_but_another_tab_key_stops_nothing():
    jobs = SessionJobs()
    run = Run()
    stop = handlers.make_stop(jobs, QueueGuard("gpu", key_input=None))  # not installed: nothing queued
    request = SimpleNamespace(session_hash="s1")
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with jobs.running(visitor("s1", "tab-a"), run):
            entered.set()
            leave.wait(30)

    worker = threading.Thread(target=hold)
    worker.start()
    entered.wait(30)
    try:
        assert asyncio.run(stop("tab-b", request)) == "Nothing to stop."
        assert asyncio.run(stop("", request)) == "Nothing to stop."
        assert not run.cancelled
        leave.set()
        worker.join(30)
    finally:
        leave.set()


def test_the_cap_must_allow_one_waiting_request():
    with pytest.raises(ValueError, match="max_waiting: 0"):
        QueueGuard("gpu", key_input=None, max_waiting=0)
