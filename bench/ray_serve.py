"""Benchmark: what serving through Ray Serve replicas costs, and what a second replica buys.

On a local Ray cluster started here (CPU replicas of the tiny model, one torch thread each, as the
in-process engine gets here), side by side in one run:

- overhead per request: the same small request on the in-process engine and on one replica
  (interleaved rounds), the difference per request;
- overhead per event: a long request with a preview on every step, the difference divided by its
  events (Progress and Preview, each crossing from the replica to the front door);
- throughput under 4 concurrent clients: requests a second on 1 replica and on 2 (redeployed on the
  same cluster), the ratio.

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

    rates = {}
    for replicas in (1, 2, 1, 2):  # interleaved: a noisy moment hits both counts
        remote = deploy(CONFIG, ClusterOptions(replicas=replicas), "tiny", remote.lease)
        throughput(remote, 2, 1, 4)  # warm the new replicas' routes
        rates.setdefault(replicas, []).append(throughput(remote, 4, 3, 16))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])

    table = {
        "cluster_start_s": round(start_s, 1),
        "small_request_s": {k: round(statistics.median(v), 4) for k, v in small.items()},
        "overhead_per_request_ms": round(per_request * 1000, 1),
        "long_request_s": {k: round(statistics.median(v), 3) for k, v in long_.items()},
        "events_in_long_request": events,
        "overhead_per_event_ms": round(per_event * 1000, 2),
        "throughput_req_per_s": {"1 replica": round(one, 2), "2 replicas": round(two, 2)},
        "two_vs_one_replica": round(two / one, 2),
    }
    for key, value in table.items():
        print(f"{key:28s} {value}")
    Path(args.out).write_text(json.dumps({
        "settings": f"tiny model, 64 px, Euler; small: 4 steps; long: 60 steps with a latent2rgb preview every step; "
                    f"throughput: 4 clients x 3 requests of 16 steps; {args.rounds} interleaved rounds; CPU replicas "
                    f"with 1 thread each, {os.cpu_count()} cores",
        "results": table}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
