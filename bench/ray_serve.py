"""Benchmark: what serving through Ray Serve replicas costs, and what a second replica buys.

On a local Ray cluster started here (CPU replicas of the tiny model, one torch thread each, as the
in-process engine gets here), side by side in one run:

- overhead per request: the same small request on the in-process engine and on one replica
  (interleaved rounds), the difference per request;
- overhead per event: a long request with a preview on every step, the difference divided by its
  events (Progress and Preview, each crossing from the replica to the front door);
- throughput under 4 concurrent clients: requests a second on 1 replica and on 2 (redeployed on the
  same cluster), the ratio, twice: with one core per replica (`--cpus-per-replica 1`: a second replica
  brings a second core, as a second GPU brings a second device) and with the machine's cores shared
  out (the default for CPU replicas: one replica gets every core, two get half each), which is what a
  second replica buys on a fixed CPU machine.

What the ratio depends on: free cores per replica (a second replica only helps when it has a core,
or a GPU, of its own; on a machine where other processes take cores it drops), the load (4 clients
keep both replicas busy; 1 client gets nothing from a second replica) and the request size (small
requests spend more of their time crossing to the replica).

    python3 bench/ray_serve.py                   # 5 rounds
    python3 bench/ray_serve.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # a Ray replica with num_cpus=1 gets one thread: the same here
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from studio import GenerationRequest, Studio, StudioConfig  # noqa: E402
from studio.engine.cluster import ClusterOptions, deploy, start_cluster  # noqa: E402

torch.set_num_threads(1)
CONFIG = StudioConfig(device="cpu", dtype="fp32")


def request(steps: int, preview: str = "none", seed: int = 1) -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse", model="tiny", steps=steps, width=64, height=64, seed=seed,
                             preview=preview, sampler="Euler")


def timed(engine, req) -> tuple[float, int]:
    started = time.perf_counter()
    events = sum(1 for _ in engine.generate(req))
    return time.perf_counter() - started, events


def throughput(engine, clients: int, per_client: int, steps: int) -> float:
    """Requests a second with `clients` threads each sending `per_client` requests back to back."""
    def client(n: int) -> None:
        for k in range(per_client):
            engine.run(request(steps, seed=n * 100 + k))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return clients * per_client / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "ray-serve.json"))
    args = parser.parse_args()

    local = Studio(CONFIG)
    local.load("tiny")
    started = time.perf_counter()
    remote = start_cluster(CONFIG, ClusterOptions(replicas=1), warm_model="tiny")
    start_s = time.perf_counter() - started
    for engine in (local, remote):  # warm: first-call costs (compiles, router) are not the steady state
        timed(engine, request(4, "latent2rgb"))

    small, long_ = {"local": [], "ray": []}, {"local": [], "ray": []}
    events = 0
    for _ in range(args.rounds):
        for name, engine in (("local", local), ("ray", remote)):
            small[name].append(timed(engine, request(4))[0])
            seconds, events = timed(engine, request(60, "latent2rgb"))
            long_[name].append(seconds)
    per_request = statistics.median(small["ray"]) - statistics.median(small["local"])
    per_event = (statistics.median(long_["ray"]) - statistics.median(long_["local"])) / events

    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(2):  # interleaved: a noisy moment hits every count
        for cores, cpus in (("one core each", 1), ("cores shared out", None)):
            for replicas in (1, 2):
                remote = deploy(CONFIG, ClusterOptions(replicas=replicas, cpus_per_replica=cpus), "tiny", remote.lease)
                throughput(remote, 2, 1, 4)  # warm the new replicas' routes
                rates.setdefault((cores, replicas), []).append(throughput(remote, 4, 3, 16))
    median = {key: statistics.median(values) for key, values in rates.items()}

    table = {
        "cluster_start_s": round(start_s, 1),
        "small_request_s": {k: round(statistics.median(v), 4) for k, v in small.items()},
        "overhead_per_request_ms": round(per_request * 1000, 1),
        "long_request_s": {k: round(statistics.median(v), 3) for k, v in long_.items()},
        "events_in_long_request": events,
        "overhead_per_event_ms": round(per_event * 1000, 2),
        "throughput_req_per_s": {f"{cores}, {n} replica{'s' if n > 1 else ''}": round(rate, 2)
                                 for (cores, n), rate in median.items()},
        "two_vs_one_replica": {cores: round(median[(cores, 2)] / median[(cores, 1)], 2)
                               for cores in ("one core each", "cores shared out")},
    }
    for key, value in table.items():
        print(f"{key:28s} {value}")
    Path(args.out).write_text(json.dumps({
        "settings": f"tiny model, 64 px, Euler; small: 4 steps; long: 60 steps with a latent2rgb preview every step; "
                    f"throughput: 4 clients x 3 requests of 16 steps, 2 interleaved rounds, CPU replicas with one core "
                    f"each or the cores shared out; {args.rounds} interleaved rounds for the overheads; "
                    f"{os.cpu_count()} cores",
        "results": table}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
