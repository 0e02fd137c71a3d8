"""The service layer every front door uses: a plan checks settings, paths and the cost before anything
runs; execute runs the batches for a caller, saves them, and reports views; Stop and A1111's skip act on
the caller's own run; anything unexpected is a StudioError naming it; the engines are `Engine`s; a
replica re-checks a request it receives as its own."""

from __future__ import annotations

import pytest
from PIL import Image

from studio import GenerationRequest, StudioConfig
from studio.engine.admit import admit
from studio.engine.cluster import RemoteStudio
from studio.engine.interface import Engine
from studio.errors import InvalidValue, StudioError
from studio.outputs import OutputFolder
from studio.service import Plan, Service

BASE = {"model": "tiny", "prompt": "a red cube", "steps": 4, "width": 64, "height": 64, "seed": 11, "sampler": "Euler"}


@pytest.fixture
def service(studio, tmp_path):
    return Service(studio, OutputFolder(tmp_path))


def test_a_plan_holds_one_checked_request_per_batch_and_their_cost(service):
    plan = service.plan({**BASE, "batch_count": 3})
    assert isinstance(plan, Plan) and len(plan) == 3
    assert [r.seed for r in plan] == [11, 12, 13]
    assert plan.cost == pytest.approx(3 * plan[0].cost())


def test_a_plan_refuses_a_bad_field_a_path_outside_the_folders_and_a_cost_over_the_cap(studio, tmp_path):
    capped = Service(type(studio).__new__(type(studio)), OutputFolder(tmp_path))
    capped.engine.config = StudioConfig(max_cost=1.0, allowed_roots=[tmp_path])
    with pytest.raises(InvalidValue, match="steps"):
        capped.plan({**BASE, "steps": 0})
    with pytest.raises(InvalidValue, match="model"):
        capped.plan({**BASE, "model": "/etc/passwd.safetensors"})
    with pytest.raises(InvalidValue, match="cost.*at most 1 per Generate"):
        capped.plan({**BASE, "width": 512, "height": 512, "steps": 20})


def test_execute_saves_every_batch_with_its_seeds_and_reports_each_step(service):
    statuses = []  # the view is one object, updated as the run goes
    for last in service.execute("caller", service.plan({**BASE, "batch_count": 2, "batch_size": 2})):
        statuses.append(last.status)
    assert [image.seed for image in last.saved] == [11, 12, 13, 14]
    assert all(Image.open(image.path).size == (64, 64) for image in last.saved)
    assert last.images == [image.path for image in last.saved] and last.model_name == "tiny"
    assert any(status.startswith("Batch 1/2 · Step") for status in statuses)
    assert last.status.startswith("Batch 2/2 done") and last.batch == 1 and last.step == last.total == 4


def _stepping(service: Service, settings: dict, act) -> list:
    """Run a plan for "caller", call `act(jobs)` once its first step is reported; the statuses seen and
    the last view."""
    statuses, acted = [], False
    for view in service.execute("caller", service.plan(settings)):
        statuses.append(view.status)
        if not acted and view.step >= 1:
            act(service.jobs)
            acted = True
    return statuses, view


def test_a_skip_ends_the_current_batch_only_and_the_next_one_runs(service):
    statuses, last = _stepping(service, {**BASE, "steps": 60, "batch_count": 2},
                               lambda jobs: jobs.skip("caller"))
    assert last.notes and last.notes[0].startswith("batch 1 stopped at step")
    assert [image.seed for image in last.saved] == [12]  # the second batch's only
    assert any("skipped" in status for status in statuses)


def test_a_cancel_ends_the_run_and_its_batches_to_come(service):
    _, last = _stepping(service, {**BASE, "steps": 60, "batch_count": 3},
                        lambda jobs: jobs.cancel("caller"))
    assert last.saved == [] and last.status.startswith("Stopped at step")
    assert service.jobs.running_count("caller") == 0


def test_another_callers_stop_touches_nothing(service):
    _, last = _stepping(service, {**BASE, "batch_count": 2}, lambda jobs: jobs.cancel("someone else"))
    assert len(last.saved) == 2


class Broken:
    """An engine whose job fails in a way the studio did not foresee."""

    def __init__(self, engine):
        self.config, self.device, self.engine = engine.config, engine.device, engine

    def generate(self, request):
        job = self.engine.generate(request)

        def events(idle_s=None):
            raise RuntimeError("the GPU caught fire")
            yield  # pragma: no cover

        job.events = events
        return job


def test_an_unexpected_failure_is_a_studio_error_naming_it(studio, tmp_path):
    service = Service(Broken(studio), OutputFolder(tmp_path))
    with pytest.raises(StudioError, match="Generation failed: RuntimeError: the GPU caught fire"):
        list(service.execute("caller", service.plan(BASE)))
    assert service.jobs.running_count("caller") == 0


def test_the_local_and_the_ray_engine_are_engines(studio):
    assert isinstance(studio, Engine)
    remote = RemoteStudio(handle=None, config=studio.config, slots=2, device=studio.device)
    assert isinstance(remote, Engine) and remote.slots == 2


def test_a_replica_rebuilds_a_request_it_receives_as_its_own_and_checks_it(studio, tmp_path):
    picture = Image.new("RGB", (64, 64), (200, 30, 30))
    requests = [
        GenerationRequest(**BASE),
        GenerationRequest(**BASE, init_image=picture, denoising_strength=0.5),
        GenerationRequest(**BASE, init_image=picture, mask=Image.new("L", (64, 64), 255)),
        GenerationRequest(**{**BASE, "prompt": "a <lora:nothing:0.5> cube"}, hires=True, hires_scale=1.5),
        GenerationRequest(**BASE, controlnets=[{"image": picture, "module": "canny", "model": "builtin:controlnet/sd15",
                                               "weight": 0.7}]),
        GenerationRequest(**BASE, image_prompts=[{"image": picture, "model": "builtin:ip-adapter/sd15"}]),
        GenerationRequest(**{**BASE, "model": "tiny-klein"}, references=[{"image": picture}, {"image": picture}]),
    ]
    config = StudioConfig()
    for request in requests:
        again = admit(request, config)
        assert again == request and again is not request
    with pytest.raises(InvalidValue, match="request"):
        admit({"prompt": "a dict is no request"}, config)
    with pytest.raises(InvalidValue, match="cost"):
        admit(requests[0], StudioConfig(max_cost=1e-6))
    with pytest.raises(InvalidValue, match="model"):
        admit(_with_model(str(tmp_path.parent / "elsewhere.safetensors")), StudioConfig(allowed_roots=[tmp_path]))


def _with_model(model: str):
    """A request as a forged pickle could carry it: a model path nobody checked."""
    forged = GenerationRequest(**BASE)
    object.__setattr__(forged, "model", model)
    return forged
