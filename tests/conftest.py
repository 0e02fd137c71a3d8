"""The environment every test runs in, the tier markers, and the session's studio.

Tiers are folders: unit/ (pure functions, no model runs), engine/ (the tiny models in this process),
app/ (the app in a subprocess, its HTTP APIs, the Gradio page built in process), browser/ (Chromium),
cluster/ (Ray). Each test gets its folder's marker, so `-m "not browser and not cluster"` works;
`slow` marks the heavy tests of the quick tiers (unit, engine), left out of the quick run:

    python3 -m pytest tests/unit tests/engine -m "not slow" -q     # quick, under two minutes
    python3 -m pytest -q --durations=25                             # everything, as CI

This file imports no torch: the unit tier runs without the torch settings of the tiers that run
models (support.use_cpu_torch, called by their conftest.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# One torch thread per process (this one and every app it starts): the tiny models gain nothing from
# more, and on a CI machine whose cores other processes share, OpenMP teams spin against them
# (measured: the engine tests took 39 s with 1 thread and 172 s with 2 while two busy loops ran).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The same precision on every machine: `auto` picks bf16 on CPUs with native bf16 (AMX, AVX512-BF16) and
# fp32 elsewhere, and CI machines differ. Apps started by the tests get fp32 by their flag's variable,
# this process by the detector (support.use_cpu_torch; tests/unit/test_hosting.py checks the detection).
os.environ.setdefault("STUDIO_DTYPE", "fp32")

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "engine", "app", "browser", "cluster")


def pytest_collection_modifyitems(config, items):
    """Each test is marked with its tier: the folder it lives in under tests/."""
    for item in items:
        path = Path(item.path).resolve()
        if TESTS not in path.parents:
            continue  # collected from elsewhere (a path given on the command line)
        tier = path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test file belongs in a tier's folder: one of {', '.join(TIERS)}")
        item.add_marker(tier)


@pytest.fixture(scope="session")
def studio():
    """One CPU studio for the session (four models cached at most), shared by every tier."""
    from support import use_cpu_torch
    from studio import Studio

    use_cpu_torch()  # already done by the tier's conftest.py; here for a test of another tier
    return Studio(device="cpu", cache_size=4)
