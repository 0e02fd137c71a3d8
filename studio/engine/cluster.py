"""The studio on a Ray cluster: Serve replicas do the work, one front door serves the page.

    studio = start_cluster(StudioConfig(), ClusterOptions(replicas=2), warm_model="tiny")
    job = studio.generate(request)     # the same Job and events as Studio.generate
    job.cancel()                       # reaches the replica: it stops within one step

`RemoteStudio` has the interface the page and the A1111 API use (generate, describe_prompt,
is_loaded, load, config, device, slots), so `build_ui` runs on it unchanged; its `slots` (one per
replica) becomes the page's GPU concurrency. One front door per cluster: the page's queue and each
session's Stop live in its memory, so it is never replicated; only the engine is.

Ray is an optional extra (requirements-ray.txt): this module imports it inside functions, so the
rest of the studio never needs it. Not ray.serve.gradio_integrations: it serves Gradio 6 pages
badly (500s) and has no session stickiness; the page stays a plain Gradio app here.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import prompts
from ..cache import LRUCache
from ..config import StudioConfig
from ..devices import DeviceChoice
from ..errors import InvalidValue, StudioError
from ..events import Cancelled, Event, Progress, PromptView
from ..hardware import DeviceCard
from ..lease import Lease
from ..models import resolve_model
from ..request import GenerationRequest, RequestBase
from .jobs import Job
from .replica import Hello, ReplicaState, StudioReplica
from .studio import PromptReader, Studio, describe_prompt, model_key, peek_named

log = logging.getLogger("studio")
APP = "studio"  # the Serve application's name (`serve status` shows it; `serve delete studio` removes it)
DEPLOYMENT = "StudioReplica"
READERS_KEPT = 16  # prompt readers (tokenizers) the front door keeps, by model
ROSTER_WAIT_S = 5.0  # the longest the page's "Runs on" waits for the lease's roster


@dataclass(frozen=True)
class ClusterOptions:
    """Where the replicas run, how many and what each takes (app.py's --ray-address, --replicas,
    --max-replicas, --gpus-per-replica, --cpus-per-replica)."""

    address: str | None = None  # an existing cluster ("host:6379", "auto"); None: the one running here, or a new one
    replicas: int | None = None  # None: one per GPU of the cluster, 1 on a cluster without GPUs
    max_replicas: int | None = None  # autoscaling from `replicas` up to this many; None: a fixed count
    gpus_per_replica: float | None = None  # None: 1 on a cluster with GPUs, else 0 (CPU replicas)
    cpus_per_replica: int | None = None  # None: 1 with GPUs; CPU replicas share the cluster's cores


def deployment_options(options: ClusterOptions, resources: Mapping[str, float]) -> tuple[dict, int]:
    """Serve's options for the replicas on a cluster with these resources, and how many requests run
    at once (the page's GPU concurrency: one per replica, the most replicas when autoscaling)."""
    gpus = options.gpus_per_replica
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    count = options.replicas or max(1, int(resources.get("GPU", 0) // gpus) if gpus else 1)
    if options.max_replicas is not None and options.max_replicas < count:
        raise InvalidValue("max_replicas", options.max_replicas, f"at least --replicas ({count})")
    scaling: dict[str, Any] = {"num_replicas": count}
    if options.max_replicas is not None:  # a cold replica needs its imports and its model: keep `count` warm
        scaling = {"autoscaling_config": {"min_replicas": count, "initial_replicas": count,
                                          "max_replicas": options.max_replicas, "target_ongoing_requests": 1}}
    # A GPU replica needs one core to feed its GPU; CPU replicas do the work on their cores, so the
    # cluster's are shared out (Ray sets OMP_NUM_THREADS, torch's threads, from num_cpus).
    cpus = options.cpus_per_replica or (1 if gpus else max(1, int(resources.get("CPU", 1)) // count))
    # max_ongoing_requests=1: a replica is one device running one job; the rest wait in Serve's router.
    # Ray sets CUDA_VISIBLE_DEVICES from num_gpus, so the replica's device "auto" finds its own GPU.
    return {"name": DEPLOYMENT, "max_ongoing_requests": 1, "graceful_shutdown_timeout_s": 30,
            "ray_actor_options": {"num_gpus": gpus, "num_cpus": cpus}, **scaling}, options.max_replicas or count


def replica_class(cache_size: int) -> type:
    """StudioReplica with Serve's model multiplexing: the router sends a request to a replica that
    reports its model, when one is free (a preference: a busy replica spills over to another). The
    bound matches the replica's own model cache, whose LRU does the loading and unloading."""
    from ray import serve

    class Replica(StudioReplica):
        def __init__(self, config: StudioConfig, warm_model: str | None = None, lease: Any = None):
            # torch's threads are the cores Ray gave this replica (--cpus-per-replica), whatever
            # OMP_NUM_THREADS the raylet's environment passed down.
            import ray
            import torch

            cores, actor = 0, ""
            if ray.is_initialized():  # Serve's local testing mode is not (asking would start or join one)
                try:
                    context = ray.get_runtime_context()
                    cores, actor = context.get_assigned_resources().get("CPU", 0), context.get_actor_name() or ""
                except Exception:  # not a Ray worker: this process's threads stand
                    cores = 0
            if cores >= 1:
                torch.set_num_threads(int(cores))
            super().__init__(config, warm_model, lease=lease, actor=actor)

        @serve.multiplexed(max_num_models_per_replica=cache_size)
        async def model_slot(self, model_id: str) -> str:
            return model_id  # the weights live in the Studio's cache; this tells the router they are here

        async def place(self, model: str | None) -> None:
            from ray.serve.context import _get_internal_replica_context

            # Serve's local testing mode (one in-process replica) has no router to tell.
            if model and _get_internal_replica_context() is not None:
                await self.model_slot(model)

    Replica.__name__ = Replica.__qualname__ = DEPLOYMENT
    return Replica


def build_app(config: StudioConfig, options: ClusterOptions, resources: Mapping[str, float],
              warm_model: str | None, lease: Any = None) -> tuple[Any, int]:
    """The Serve application (bound deployment) and its slot count. `lease`: the front door's, which
    each replica checks in with (studio/lease.py)."""
    from ray import serve

    settings, slots = deployment_options(options, resources)
    return serve.deployment(replica_class(config.cache_size), **settings).bind(config, warm_model, lease), slots


def start_cluster(config: StudioConfig, options: ClusterOptions, warm_model: str | None = None,
                  local_testing: bool = False) -> "RemoteStudio":
    """Join the cluster at `options.address` (or start one on this machine), deploy the replicas and
    wait until they are up with `warm_model` loaded. `local_testing`: Serve's in-process mode (tests)."""
    from ray import serve

    from . import joining

    if local_testing:
        app, slots = build_app(config, options, {}, warm_model)
        return RemoteStudio(serve.run(app, name=APP, route_prefix=None, _local_testing_mode=True), config, slots)
    config = for_replicas(config)
    # A cluster started here: replicas import this checkout from its path. A joined one may put them on
    # other machines: they get this checkout's `studio` package through Ray (py_modules).
    joining.join(options.address, cluster_cpus(options), here={"env_vars": replica_env()},
                 joined={"py_modules": [str(PACKAGE)], "env_vars": forwarded_env()})
    serve.start(proxy_location="Disabled")  # no Serve HTTP: the page is the only door
    lease = start_lease()
    return deploy(config, options, warm_model, lease)


PACKAGE = Path(__file__).resolve().parents[1]  # the `studio` package the replicas import
# The front door's environment that a replica needs to load what the front door would: the Hub's token,
# cache and offline switches. (A runtime_env's variables show in Ray's dashboard: keep it private.)
FORWARDED_ENV = ("HF_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT",
                 "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE", "TORCH_HOME")


def forwarded_env() -> dict[str, str]:
    return {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}


def replica_env() -> dict[str, str]:
    """A local cluster's replicas: this checkout's code on their path, and the forwarded environment."""
    path = os.pathsep.join(p for p in (str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **forwarded_env()}


def for_replicas(config: StudioConfig) -> StudioConfig:
    """The config as a replica must read it: folders as absolute paths (a replica's working directory
    is Ray's, not the front door's). On other machines the same paths must exist (docs/ray.md)."""
    from dataclasses import replace

    folders = {name: getattr(config, name).resolve() for name in ("models_dir", "loras_dir", "controlnets_dir",
                                                                             "upscalers_dir", "embeddings_dir")
               if getattr(config, name) is not None}
    return replace(config, **folders) if folders else config


def cluster_cpus(options: ClusterOptions) -> int:
    """CPUs a cluster started here offers: every core, and at least one per replica."""
    return max(os.cpu_count() or 1, options.replicas or 1, options.max_replicas or 1)


def start_lease() -> Any:
    """This front door's Lease actor (studio/lease.py): restarted by Ray if its process dies while the
    front door lives, its `hold` calls retried there; ended with the front door."""
    import ray

    lease = ray.remote(Lease).options(num_cpus=0, max_concurrency=10_000, max_restarts=-1,
                                      max_task_retries=-1).remote()
    pid, torch_loaded = ray.get(lease.describe.remote())
    log.info("lease actor pid %d (torch loaded: %s)", pid, torch_loaded)
    return lease


def deploy(config: StudioConfig, options: ClusterOptions, warm_model: str | None, lease: Any) -> "RemoteStudio":
    """(Re)deploy the replicas on the connected cluster and wait until they are up."""
    import ray
    from ray import serve

    app, slots = build_app(config, options, ray.cluster_resources(), warm_model, lease)
    # A deployed `studio` (an earlier front door's, or this one's before a redeploy) is removed first:
    # Serve's rolling update starts new replicas before it stops old ones, which never happens on a
    # cluster whose cores or GPUs the old ones hold (seen: a redeploy waiting forever). One front door
    # per cluster.
    if APP in serve.status().applications:
        log.info("Replacing the studio application already deployed on this cluster")
        serve.delete(APP)
    log.info("Deploying %d studio replica(s) on %s", slots, options.address or "a local Ray cluster")
    try:
        handle = serve.run(app, name=APP, route_prefix=None)
    except Exception as exc:
        raise StudioError(f"The studio's replicas did not start: {type(exc).__name__}: {exc}") from None
    return RemoteStudio(handle, config, slots, lease=lease)


def alive(actor: str) -> bool:
    """Whether a replica's Ray actor still lives (Serve names its replicas in the "serve" namespace)."""
    import ray

    if not actor:  # a replica that is not a Ray actor (never on a real cluster)
        return True
    try:
        ray.get_actor(actor, namespace="serve")
    except ValueError:  # no such actor: it died (its replacement checks in under its own name)
        return False
    return True


def failure(exc: BaseException, hello: Hello | None) -> BaseException:
    """What a stream's exception means for the caller: the engine's own error when a replica raised
    one; a clear StudioError when the replica itself went away (killed, out of memory)."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray_errors.RayTaskError) and isinstance(cause, BaseException):
        return cause  # the replica's own exception, as a local engine raises it
    lost = (ray_errors.RayActorError, ray_errors.ActorUnavailableError, serve_errors.ReplicaUnavailableError,
            serve_errors.DeploymentUnavailableError)
    if isinstance(exc, lost):
        where = f"replica {hello.replica}" if hello else "replica"
        return StudioError(f"The {where} running this generation stopped ({type(exc).__name__}); nothing "
                           "else was lost. Generate again: another replica takes it while Serve restarts this one.")
    return exc


class RemoteStudio:
    """The engine the page uses when Serve replicas do the work. Holds no model: what it knows of
    them (which models are loaded, their tokenizers for counting prompts) comes with each job."""

    def __init__(self, handle: Any, config: StudioConfig, slots: int, device: DeviceChoice | None = None,
                 lease: Any = None):
        self._handle = handle
        self.lease = lease  # an actor handle of Lease (None in Serve's local testing mode)
        self.config = config
        self.slots = slots
        self.device: DeviceChoice = device or handle.device.remote().result()
        self._readers: LRUCache[PromptReader] = LRUCache(READERS_KEPT)
        self._loaded: dict[str, tuple[str, ...]] = {}  # replica -> its loaded models
        self._lock = threading.Lock()

    # -- what the page asks ----------------------------------------------------------------------

    def generate(self, request: GenerationRequest, partial: bool = False) -> Job:
        """A job streaming from a replica; nothing is sent until it is iterated. `partial` is not
        honoured: a cancel ends the replica's stream, so its partial images could not come back."""
        if not isinstance(request, RequestBase):
            raise TypeError(f"generate() takes a GenerationRequest, got {type(request).__name__}")
        return Job(request, lambda emit, cancel: self._stream(request, emit, cancel))

    run = Studio.run  # generate, and the Result (or StudioError); it only calls self.generate

    def close(self) -> None:
        """Leave the cluster (app.py, at exit): a cluster this process started ends with it; on a joined
        one the Serve application stays deployed (`serve shutdown` removes it)."""
        import ray

        if ray.is_initialized():
            ray.shutdown()

    def load(self, model: str) -> ReplicaState:
        """Load a model on a replica (the front door's warm-up); raises the replica's StudioError."""
        try:
            state = self._handle.options(multiplexed_model_id=model).load.remote(model).result()
        except Exception as exc:
            raise failure(exc, None) from None
        self._note(state, model)
        return state

    def is_loaded(self, model: str) -> bool:
        """Whether some replica holds the model now (as of its last job here)."""
        ref = resolve_model(model).ref
        with self._lock:
            return any(ref in models for models in self._loaded.values())

    def loaded_models(self) -> list[str]:
        with self._lock:
            return sorted({ref for models in self._loaded.values() for ref in models})

    def devices(self) -> list[DeviceCard]:
        """Every live replica's card, from the lease's roster ([] when it does not answer in time)."""
        if self.lease is None:  # Serve's local testing mode: its one replica lives in this process
            return [self._handle.card.remote().result()]
        import ray

        try:
            cards = ray.get(self.lease.roster.remote(), timeout=ROSTER_WAIT_S)
        except Exception as exc:  # a lease restarting, a cluster in trouble: the page says so
            log.warning("the replicas' roster did not answer: %s: %s", type(exc).__name__, exc)
            return []
        return sorted((card for card in cards if alive(card.actor)), key=lambda card: card.replica)

    def describe_prompt(self, prompt: str, model: str | None = None, syntax: str = prompts.A1111,
                        steps: int = 20) -> PromptView:
        """As Studio.describe_prompt, here in the front door: token counts once a replica has sent
        the model's tokenizers (with its first job here), never a call that could wait for a GPU."""
        return describe_prompt(prompt, syntax, peek_named(self._readers, model), steps)

    # -- the stream ------------------------------------------------------------------------------

    def _note(self, state: ReplicaState, model: str) -> None:
        with self._lock:
            self._loaded[state.replica] = state.loaded
        if state.reader is not None:
            self._readers.get_or_load(model_key(model), lambda: state.reader)

    def _stream(self, request: GenerationRequest, emit: Callable[[Event], None], cancel: threading.Event) -> None:
        from ray.serve.exceptions import RequestCancelledError

        model = request.model
        want_reader = self._readers.peek(model_key(model)) is None
        stream = self._handle.options(stream=True, multiplexed_model_id=model).generate.remote(
            request, want_reader, self.lease)
        done = threading.Event()
        hello: Hello | None = None
        last = Progress(0, int(getattr(request, "steps", 0) or 0), 0.0, 0.0, 0.0)

        def watch() -> None:  # a cancel from any thread reaches the replica at once, mid-step
            cancel.wait()
            if not done.is_set():
                stream.cancel()

        threading.Thread(target=watch, name="studio-remote-cancel", daemon=True).start()
        finished = False
        try:
            for item in stream:
                if isinstance(item, Hello):
                    hello = item
                    log.info("job on replica %s (pid %d on %s)", item.replica, item.pid, item.host)
                elif isinstance(item, ReplicaState):
                    self._note(item, model)
                else:
                    last = item if isinstance(item, Progress) else last
                    emit(item)
            finished = True
        except RequestCancelledError:
            if not cancel.is_set():
                raise StudioError("The cluster cancelled this generation.") from None
            emit(Cancelled(last.step, last.total))  # the step the caller saw reached; the replica stops there
        except Exception as exc:
            raise failure(exc, hello) from None
        finally:
            done.set()
            if not finished:
                stream.cancel()  # a stream left any other way must not leave its replica running
            cancel.set()  # ends the watcher
