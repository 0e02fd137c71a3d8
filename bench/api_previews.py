"""Benchmark: what live previews cost through the whole `/generate` path (engine, preview thread,
JPEG files, Gradio's streaming) when steps are fast, as on a GPU.

Starts `python3 app.py --model tiny` (random weights, steps of a few milliseconds at 128 px: the
speed a GPU gives a real model), then times `/generate` calls through gradio_client with previews
off and with each preview method, in interleaved rounds; ratios are taken round by round against
the no-preview call of the same round. Two clients take turns: one downloads every file it is sent
(each preview JPEG as it streams, as gradio_client does by default) and one downloads none
(`download_files=False`: what the server's side costs, without a client sharing its cores). Prints
a table and writes JSON.

    python3 bench/api_previews.py                       # 7 rounds, 40 steps, 128 px
    python3 bench/api_previews.py --rounds 3 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "api-previews.json"))
    args = parser.parse_args()

    from gradio_client import Client

    port = free_port()
    outputs = tempfile.mkdtemp(prefix="studio-bench-outputs-")
    log = open(Path(outputs) / "app.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([sys.executable, "app.py", "--model", args.model, "--port", str(port), "--outputs",
                            outputs], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "gradio_api/info", timeout=5)
                break
            except Exception:
                if time.monotonic() > deadline or app.poll() is not None:
                    raise SystemExit("the app did not start: see " + log.name)
                time.sleep(0.5)
        clients = {"downloads": Client(url, verbose=False), "no-downloads": Client(url, verbose=False,
                                                                                    download_files=False)}
        methods = ["none", "latent2rgb", "taesd"]
        runs = [(c, m) for c in clients for m in methods]

        def call(run: tuple[str, str]) -> float:
            client, preview = clients[run[0]], run[1]
            start = time.perf_counter()
            client.predict(prompt="a lighthouse at dusk", model=args.model, steps=args.steps, width=args.size,
                           height=args.size, seed=7, preview=preview, api_name="/generate")
            return time.perf_counter() - start

        for run in runs:  # warm-up: model build, TAESD, first encodes
            call(run)
        walls: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
        for r in range(args.rounds):
            for run in (runs if r % 2 == 0 else runs[::-1]):
                walls[run].append(call(run))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{c}/{m} {walls[c, m][-1]:.3f}s" for c, m in runs),
                  flush=True)
    finally:
        app.terminate()
        app.wait(timeout=30)

    def ratio(client: str, method: str) -> float:
        return statistics.median(a / b for a, b in zip(walls[client, method], walls[client, "none"]))

    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "settings": {"model": args.model, "rounds": args.rounds, "steps": args.steps, "size": args.size},
        "median_wall_s": {c: {m: round(statistics.median(walls[c, m]), 4) for m in methods} for c in clients},
        "ms_per_step_without_previews": round(1000 * statistics.median(walls["downloads", "none"]) / args.steps, 2),
        "previews_over_none": {c: {m: round(ratio(c, m), 4) for m in methods if m != "none"} for c in clients},
    }
    print(json.dumps(result, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
