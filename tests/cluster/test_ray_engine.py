"""The Ray Serve engine in Serve's local testing mode (one in-process replica, no cluster): the same
events and images as the local engine, cancel, errors, prompt counts, and the replica's own rules
(a job's slot is freed only once the job has ended; a caller that died cancels its job).
tests/cluster/test_ray_cluster.py runs a real two-replica cluster behind the page."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray.serve", reason="the Ray engine is an optional extra: pip install -r requirements-ray.txt")

from support import ROOT, pixels, tiny_request  # noqa: E402
from studio import StudioConfig  # noqa: E402
from studio.engine.cluster import (ClusterOptions, RemoteStudio, deployment_options, failure,  # noqa: E402
                                   start_cluster)
from studio.engine import joining  # noqa: E402
from studio.engine.replica import Hello, ReplicaState, StudioReplica  # noqa: E402
from studio.errors import InvalidValue, ModelLoadError, StudioError  # noqa: E402
from studio.events import Cancelled, Preview, Progress, Result  # noqa: E402

CONFIG = StudioConfig(device="cpu", cache_size=2)


@pytest.fixture(scope="module")
def remote() -> RemoteStudio:
    return start_cluster(CONFIG, ClusterOptions(replicas=2), warm_model="tiny", local_testing=True)


def test_a_job_on_a_replica_yields_the_local_engines_events_and_image(remote, studio):
    events = list(remote.generate(tiny_request(steps=6, preview="latent2rgb", seed=7)))
    assert not any(isinstance(e, (Hello, ReplicaState)) for e in events)  # the framing stays in the front door
    assert isinstance(events[-1], Result) and sum(isinstance(e, Result) for e in events) == 1
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == sorted(steps) and steps[-1] == 6
    assert any(isinstance(e, Preview) for e in events)
    local = studio.run(tiny_request(steps=6, preview="latent2rgb", seed=7))
    assert (pixels(events[-1].images[0]) == pixels(local.images[0])).all()  # same seed and settings = same image
    assert events[-1].infotexts == local.infotexts


def test_an_upscale_runs_on_a_replica_without_its_model(remote):
    """The Upscale task crosses like any request: its picture pickled there, enlarged, its infotext back."""
    from PIL import Image

    from studio import GenerationRequest

    picture = Image.new("RGB", (40, 30), (9, 99, 199))
    result = remote.generate(GenerationRequest(upscale_image=picture, upscaler="Lanczos", upscale_by=2)).result()
    assert result.images[0].size == (80, 60) and result.images[0].getpixel((40, 30)) == (9, 99, 199)
    assert result.infotexts[0] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"


def test_cancel_reaches_the_replica_and_the_caller_gets_the_step_reached(remote):
    job = remote.generate(tiny_request(steps=150, preview="none"))
    seen = []
    started = time.monotonic()
    for event in job:
        seen.append(event)
        if isinstance(event, Progress) and event.step == 3:
            job.cancel()
    assert isinstance(seen[-1], Cancelled), seen[-3:]
    assert 3 <= seen[-1].step < 150 and seen[-1].total == 150
    assert time.monotonic() - started < 60  # 150 steps were not run
    assert remote.generate(tiny_request()).result().images  # the replica serves the next one


def test_a_replicas_errors_reach_the_caller_as_the_engines_own(remote, studio):
    with pytest.raises(ModelLoadError) as on_replica:  # raised by the replica's loader
        remote.generate(tiny_request(model="no/such-model")).result()
    with pytest.raises(ModelLoadError) as here:
        studio.generate(tiny_request(model="no/such-model")).result()
    assert str(on_replica.value) == str(here.value) and "no/such-model" in str(here.value)
    assert remote.run(tiny_request()).images  # and the next request runs


def test_prompts_are_counted_in_the_front_door_once_a_replica_sent_the_tokenizers(remote, studio):
    remote.load("tiny")  # the page's warm-up: the replica answers with what it holds
    assert remote.is_loaded("tiny") and remote.loaded_models()
    studio.load("tiny")
    text = "a (red:1.3) cube, " * 30
    assert remote.describe_prompt(text, "tiny") == studio.describe_prompt(text, "tiny")
    assert remote.describe_prompt(text, "tiny").chunk_tokens  # counted, not None
    assert remote.describe_prompt("a cat", "tiny-sdxl").chunk_tokens is None  # no replica sent that one yet
    assert remote.describe_prompt("a cat", "C:\\half typed").fragments  # a bad name still parses


def test_the_replica_count_becomes_the_pages_gpu_concurrency(remote):
    from studio.web import Warmup, build_ui

    demo = build_ui(remote, Warmup(remote, "tiny", model="tiny"))
    limits = {fn.api_name: fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == "gpu"}
    assert limits == {"page_generate": 2, "generate": 2}


def test_the_page_names_the_replicas_device(remote):
    (card,) = remote.devices()  # Serve's local testing mode: one replica, in this process
    assert card.replica and card.device == "cpu (fp32)" and card.pid == os.getpid()


# -- the replica itself (no Serve) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def replica() -> StudioReplica:
    return StudioReplica(CONFIG, warm_model="tiny", name="r1")


def test_a_replica_frees_its_slot_only_once_the_job_has_stopped(replica):
    async def scenario() -> list:
        stream = replica.generate(tiny_request(steps=150, preview="none"))
        seen = []
        async for item in stream:
            seen.append(item)
            if isinstance(item, Progress) and item.step == 2:
                break
        assert replica.studio.busy  # the step still runs
        await stream.aclose()  # what Serve does when the caller cancels
        return seen

    seen = asyncio.run(scenario())
    assert isinstance(seen[0], Hello) and seen[0].replica == "r1"
    assert not replica.studio.busy  # back only after the job ended: the next request gets a free device


def test_a_job_whose_caller_died_is_cancelled_by_the_replica(replica):
    cards = []

    class GoneLease:  # a Lease actor whose owner died: hold() fails
        class check_in:
            remote = cards.append

        class hold:
            @staticmethod
            def remote():
                async def fail():
                    await asyncio.sleep(0.3)
                    raise RuntimeError("the owner of this actor died")
                return fail()

    async def scenario() -> list:
        return [item async for item in replica.generate(tiny_request(steps=150, preview="none"), True, GoneLease())]

    items = asyncio.run(scenario())
    assert isinstance(items[-2], Cancelled) and items[-2].step < 150
    assert isinstance(items[-1], ReplicaState) and items[-1].reader is not None  # the tokenizers, as asked
    assert [(card.replica, card.device) for card in cards] == [("r1", "cpu (fp32)")]  # the job's check-in


# -- settings and failures, pure ----------------------------------------------------------------------

def test_replicas_default_to_one_per_gpu_and_cpu_clusters_get_one():
    gpu, slots = deployment_options(ClusterOptions(), {"CPU": 32, "GPU": 4})
    assert gpu["num_replicas"] == 4 == slots and gpu["ray_actor_options"]["num_gpus"] == 1
    assert gpu["max_ongoing_requests"] == 1
    assert gpu["ray_actor_options"]["num_cpus"] == 1  # a core to feed each GPU
    cpu, slots = deployment_options(ClusterOptions(), {"CPU": 2})
    assert cpu["num_replicas"] == 1 == slots and cpu["ray_actor_options"]["num_gpus"] == 0
    assert cpu["ray_actor_options"]["num_cpus"] == 2  # a CPU replica gets the cores (its torch threads)
    shared, _ = deployment_options(ClusterOptions(replicas=3), {"CPU": 16})
    assert shared["ray_actor_options"]["num_cpus"] == 5
    chosen, _ = deployment_options(ClusterOptions(replicas=2, cpus_per_replica=4), {"CPU": 16, "GPU": 2})
    assert chosen["ray_actor_options"]["num_cpus"] == 4
    half, slots = deployment_options(ClusterOptions(gpus_per_replica=0.5), {"GPU": 2})
    assert slots == 4
    scaling, slots = deployment_options(ClusterOptions(replicas=2, max_replicas=5), {"GPU": 8})
    assert scaling["autoscaling_config"]["min_replicas"] == 2 and scaling["autoscaling_config"]["max_replicas"] == 5
    assert slots == 5 and "num_replicas" not in scaling
    with pytest.raises(InvalidValue, match="max_replicas: 1 is not valid; allowed: at least --replicas"):
        deployment_options(ClusterOptions(replicas=2, max_replicas=1), {})


def test_an_address_nobody_answers_at_fails_fast_and_ray_client_is_refused_with_the_reason():
    with pytest.raises(InvalidValue, match="ray_address: 'no-port'"):
        joining.check_address("no-port")
    with pytest.raises(InvalidValue, match="ray://.*cannot carry the studio's streams.*--ray-address HOST:6379"):
        joining.check_address("ray://head:10001")
    started = time.monotonic()
    assert not joining.answers("127.0.0.1", 9, timeout_s=5)
    assert time.monotonic() - started < 10
    with pytest.raises(StudioError, match="nothing answers at 127.0.0.1:9"):
        joining.join("127.0.0.1:9", 1, {}, {})


def test_a_token_cluster_is_joined_with_the_token_at_hand_or_says_where_the_token_goes(monkeypatch, tmp_path):
    """Ray 2.60 joins a token cluster only with RAY_AUTH_MODE=token set (a token file alone is not
    used), and its own failure is a bare "Failed to connect" after 20 s."""
    accepted = {"token"}  # what the fake GCS takes: the mode turned on, with a token at hand
    monkeypatch.setattr(joining, "gcs_refuses", lambda address: os.environ.get("RAY_AUTH_MODE") not in accepted)
    monkeypatch.setattr(joining, "use_token_mode", lambda: monkeypatch.setenv("RAY_AUTH_MODE", "token"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    with pytest.raises(StudioError, match="uses token authentication and this machine has no token: copy"):
        joining.authenticate("head:6379")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("0" * 64)
    joining.authenticate("head:6379")  # the token file is used: token mode turned on
    assert os.environ["RAY_AUTH_MODE"] == "token"
    accepted.clear()  # a token that is not the cluster's
    with pytest.raises(StudioError, match="refused the token in .*auth_token: it is not this cluster's"):
        joining.authenticate("head:6379")


def test_a_lost_replica_is_a_clear_error_and_a_replicas_exception_its_own():
    from ray import exceptions as ray_errors

    lost = failure(ray_errors.ActorDiedError(), Hello("gpu-2:1234", 1234, "gpu-2"))
    assert isinstance(lost, StudioError) and "replica gpu-2:1234" in str(lost) and "Generate again" in str(lost)
    own = InvalidValue("steps", 0, "1..150")
    assert failure(ray_errors.RayTaskError("generate", "tb", own), None) is own


def test_ray_flags_need_the_ray_engine_and_an_unreachable_cluster_is_named():
    run = [sys.executable, "app.py", "--model", "tiny", "--port", "1"]
    out = subprocess.run(run + ["--replicas", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--replicas: 2 is not valid; allowed: used with --engine ray only" in out.stderr
    out = subprocess.run(run + ["--engine", "ray", "--ray-address", "127.0.0.1:9"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "Could not reach a Ray cluster at --ray-address 127.0.0.1:9" in out.stderr.splitlines()[-1]


def test_the_default_install_needs_no_ray():
    code = ("import sys, app, studio, studio.web, studio.engine; "
            "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules), 'ray imported'")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
