"""Memory stays flat over hundreds of generations in one studio."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from support import record, tiny_request


GENERATIONS = int(os.environ.get("STUDIO_GENERATIONS", "200"))  # bench/reliability.py raises it


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_memory_stays_bounded_over_many_generations():
    from studio import Studio

    studio = Studio(device="cpu", cache_size=1)
    for i in range(30):  # warm-up: caches fill, allocator settles
        studio.run(tiny_request(prompt=f"warm {i}", seed=i, steps=1))
    gc.collect()
    start = rss_mb()
    for i in range(GENERATIONS):
        studio.run(tiny_request(prompt=f"prompt number {i}", seed=i, steps=1, preview="latent2rgb"))
    gc.collect()
    grown = rss_mb() - start
    record("sequential generations", GENERATIONS)
    record("memory growth MB", round(grown, 1))
    assert grown < 40, f"memory grew by {grown:.0f} MB over {GENERATIONS} generations"
