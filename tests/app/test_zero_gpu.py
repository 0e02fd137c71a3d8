"""ZeroGPU with the real `spaces` package: the order of imports, the device, the GPU time asked for.

The app starts as on a ZeroGPU Space (SPACES_ZERO_GPU=true and the device API's address set, no GPU).
Two stand-ins, both outside the studio: tests/support/zero_gpu_shim.py gives the CPU build of torch the three
attributes of a CUDA build without a GPU that `spaces` reads, and `FakeDeviceApi` answers the Hugging
Face device API that `spaces` calls (start-up report; scheduling, which answers "quota exceeded" so
that no GPU worker is forked: there is no GPU to attach). What runs on a real GPU is not tried here.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import pickle
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest

from support import SUPPORT, running_app
from studio.families import FAMILIES
from studio.hosting import GPU_OVERHEAD_S, MODEL_LOAD_S, GpuBudget
from studio.outputs import OutputFolder
from studio.service import Service, SessionJobs, build_requests
from studio.web.sdapi.calls import SdApi

CAP_S = 90
QUOTA_LEFT_S = 7
BASE = dict(prompt="a lighthouse", model="tiny", steps=4, width=64, height=64, seed=7)


class FakeDeviceApi:
    """The device API of a ZeroGPU Space, as `spaces` calls it: it records every call and refuses
    every GPU with a quota answer (HTTP 429, seconds left and the wait)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urlparse(self.path)
                api.calls.append((url.path, {k: v[0] for k, v in parse_qs(url.query).items()}))
                if url.path == "/schedule":
                    body = json.dumps({"left": QUOTA_LEFT_S, "wait": 120}).encode()
                    self.send_response(429)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Authenticated", "regular")
                else:
                    body = b"{}"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def scheduled(self) -> list[int]:
        return [int(query["durationSeconds"]) for path, query in self.calls if path == "/schedule"]


def visitor_token() -> str:
    """An X-IP-Token as Spaces' proxy sends it for a signed-in visitor (spaces reads its payload)."""
    payload = base64.urlsafe_b64encode(json.dumps({"user": "visitor"}).encode()).decode().rstrip("=")
    return f"header.{payload}.signature"


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    pytest.importorskip("spaces", reason="the ZeroGPU start-up tests need the `spaces` package (requirements-test.txt)")
    api = FakeDeviceApi()
    order = tmp_path_factory.mktemp("zero") / "order.txt"
    env = {"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api.url, "ZERO_GPU_ORDER_FILE": str(order),
           "STUDIO_DTYPE": "auto"}  # the precision a Space gets (the tests pin fp32 elsewhere)
    # the shim's own folder on the path: imported as a module of its own, before anything else
    first = f"import sys; sys.path.insert(0, {str(SUPPORT)!r}); import zero_gpu_shim"
    with running_app(tmp_path_factory, "--gpu-duration", str(CAP_S), env=env, first=first) as app:
        yield SimpleNamespace(url=app.url, log=app.log, api=api, order=order)
    api.server.shutdown()


def test_spaces_is_imported_before_torch_and_the_start_model_loads_on_cuda_in_the_main_thread(space):
    assert space.order.read_text().split() == ["spaces", "torch"]
    log = space.log.read_text()
    assert "Studio on cuda (fp16)" in log, log
    assert "Loaded tiny (sd15) on cuda (fp16)" in log and "Starting model tiny loaded (thread: MainThread)" in log, log
    # spaces reports at launch once a GPU function exists: the generation is one
    assert [path for path, _ in space.api.calls][:1] == ["/startup-report"]


def expected_seconds(**settings) -> int:
    return GpuBudget(CAP_S, "tiny").seconds(build_requests({**BASE, **settings}))


@pytest.mark.parametrize("settings", [{}, {"steps": 100, "width": 512, "height": 512, "batch_size": 4}, {"model": "tiny-xl"},
                                      {"steps": 150, "width": 512, "height": 512, "batch_count": 8}])
def test_each_generate_asks_for_the_gpu_time_its_request_needs_and_shows_the_quota_message(space, settings):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(space.url, headers={"X-IP-Token": visitor_token()}, verbose=False)
    before = len(space.api.scheduled())
    with pytest.raises(AppError) as raised:
        client.predict(**{**BASE, **settings}, api_name="/generate")
    asked = space.api.scheduled()[before:]
    want = expected_seconds(**settings)
    assert asked == [want], (asked, want)
    assert want <= CAP_S
    message = str(raised.value)
    # the message `spaces` raises reaches the caller as it is
    assert "exceeded your free ZeroGPU quota" in message and f"({want}s requested vs. {QUOTA_LEFT_S}s left)" in message


def test_the_budget_grows_with_the_work_and_stops_at_the_cap():
    small, medium, large = (expected_seconds(), expected_seconds(steps=100, width=512, height=512, batch_size=4),
                            expected_seconds(steps=150, width=512, height=512, batch_count=8))
    assert small < medium < large == CAP_S
    # another model loads inside the GPU call: its load is asked for too
    xl = build_requests({**BASE, "model": "tiny-xl"})[0]
    assert expected_seconds(model="tiny-xl") == math.ceil(GPU_OVERHEAD_S + MODEL_LOAD_S + xl.cost() * FAMILIES["sdxl"].gpu_s_per_mp_step)


def test_bad_input_is_refused_before_any_gpu_time_is_asked_for(space):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(space.url, verbose=False)
    before = len(space.api.scheduled())
    with pytest.raises(AppError, match="steps"):
        client.predict(**{**BASE, "steps": 0}, api_name="/generate")
    assert len(space.api.scheduled()) == before


def test_the_shim_leaves_this_process_alone():
    assert "zero_gpu_shim" not in sys.modules and "support.zero_gpu_shim" not in sys.modules


def forked(service: Service) -> SessionJobs:
    """What `spaces` makes of the GPU function, without a GPU: the batches run on a copy of the studio's
    memory (the worker's own registry of runs) and every view crosses as a pickle. The worker's
    registry is returned."""
    worker = copy.copy(service)
    worker.jobs = SessionJobs()

    def on_gpu(key, plan, history):
        for view in worker._batches(key, plan, history):
            yield pickle.loads(pickle.dumps(view))

    service.remote, service._on_gpu = True, on_gpu
    return worker.jobs


def test_stop_reaches_a_run_on_the_gpu_worker_by_closing_its_stream(studio, tmp_path):
    service = Service(studio, OutputFolder(tmp_path))
    worker_jobs = forked(service)
    stream = service.execute("visitor", service.plan({**BASE, "steps": 150, "width": 256, "height": 256}))
    statuses, stopper = [], None
    for view in stream:
        statuses.append(view.status)
        if view.status.startswith("Step") and stopper is None:
            assert worker_jobs.running_count("visitor") == 1 and service.jobs.running_count("visitor") == 1
            stopper = threading.Thread(target=service.jobs.stop, args=("visitor",))
            stopper.start()
    stopper.join(60)
    assert statuses[0] == "Waiting for a GPU" and statuses[-1] == "Stopped."
    assert not view.images and service.jobs.running_count("visitor") == 0
    deadline = time.monotonic() + 60  # the worker's job ends at its next step
    while (worker_jobs.running_count("visitor") or studio.busy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_jobs.running_count("visitor") == 0 and not studio.busy


def test_a_run_on_the_gpu_worker_brings_back_its_images_and_history(studio, tmp_path):
    service = Service(studio, OutputFolder(tmp_path))
    forked(service)
    views = list(service.execute("visitor", service.plan({**BASE, "batch_count": 2}), history=["old.png"]))
    last = views[-1]
    assert len(last.images) == 2 and last.history[-1] == "old.png" and last.seed == 7
    assert all(Path(p).is_file() for p in last.images) and last.status.startswith("Batch 2/2 done")


def test_the_a1111_api_runs_on_the_gpu_worker_through_the_same_service(studio, tmp_path):
    """A1111's txt2img on ZeroGPU: its batches run in the GPU worker as a click's do, the images come back
    with their seeds, and interrupt stops a run there."""
    service = Service(studio, OutputFolder(tmp_path))
    worker_jobs = forked(service)
    api = SdApi(service, lambda: "tiny")
    answer = api.generate("caller", {"prompt": "a lighthouse", "steps": 3, "width": 64, "height": 64, "seed": 5,
                                     "n_iter": 2}, "txt2img")
    assert len(answer["images"]) == 2 and json.loads(answer["info"])["all_seeds"] == [5, 6]
    done = {}
    runner = threading.Thread(target=lambda: done.update(api.generate(
        "caller", {"prompt": "long", "steps": 150, "width": 256, "height": 256, "n_iter": 3}, "txt2img")))
    runner.start()
    deadline = time.monotonic() + 120
    while api.progress("caller")["state"]["sampling_step"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    api.interrupt("caller")
    runner.join(120)
    assert not runner.is_alive() and done["images"] == []
    deadline = time.monotonic() + 60  # the worker's job ends at its next step
    while worker_jobs.running_count("sdapi:caller") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_jobs.running_count("sdapi:caller") == 0


def test_an_a1111_call_on_zero_gpu_asks_for_the_gpu_time_its_request_needs(space):
    """On the app as a Space runs it: A1111's txt2img asks `spaces` for its GPU time and answers with
    what `spaces` says (the fake device API refuses every GPU). An API call carries no visitor token, so
    `spaces` counts it against the Space's own quota and says so."""
    import urllib.error
    import urllib.request

    before = len(space.api.scheduled())
    body = json.dumps({"prompt": "a lighthouse", "steps": 4, "width": 64, "height": 64, "seed": 7}).encode()
    request = urllib.request.Request(space.url + "sdapi/v1/txt2img", body, {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=120)
    assert raised.value.code == 500
    assert "Space app has reached its GPU limit" in json.loads(raised.value.read())["detail"]
    assert space.api.scheduled()[before:] == [expected_seconds()]
