"""Progress across passes: the elapsed time runs on through the hires pass, the ETA weighs each pass by
its pixels, a hires request knows each pass's share of the work."""

from __future__ import annotations

import pytest

from studio import GenerationRequest, Studio
from studio.events import Progress


def test_elapsed_time_runs_on_through_the_hires_pass():
    studio = Studio(device="cpu", cache_size=1)
    request = GenerationRequest(prompt="a castle", model="tiny", steps=4, width=64, height=64, seed=1, hires=True,
                                hires_scale=1.5, preview="none")
    progress = [e for e in studio.generate(request) if isinstance(e, Progress)]
    assert progress[-1].step == progress[-1].total > 4  # both passes counted
    elapsed = [e.elapsed_s for e in progress]
    assert elapsed == sorted(elapsed)  # never restarts at the second pass


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
