"""Shared fixtures: one CPU Studio for the session, tiny requests, offline Hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np
import pytest

from studio import GenerationRequest, Studio


@pytest.fixture(scope="session")
def studio() -> Studio:
    return Studio(device="cpu", cache_size=4)


def tiny_request(**fields) -> GenerationRequest:
    base = dict(prompt="a red cube", model="tiny", steps=4, width=64, height=64, seed=1, sampler="Euler")
    return GenerationRequest(**{**base, **fields})


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))
