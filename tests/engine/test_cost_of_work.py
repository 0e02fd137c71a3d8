"""Stop lands during the work before the steps (issue 28): between a long prompt's chunks and between
ControlNet units; a prompt past the chunk bound is refused by the encoder too (a request run straight
through the engine, without the service's plan)."""

from __future__ import annotations

import pytest

from support import picture, tiny_request
from studio import Cancelled, Progress, Result
from studio.errors import InvalidValue
from studio.prompts import MAX_PROMPT_CHUNKS


def test_a_cancel_during_encoding_ends_the_job_before_its_first_step(studio, monkeypatch):
    text_encoder = studio.load("tiny").pipe.text_encoder
    original = text_encoder.forward
    calls = []
    jobs = []

    def forward(*args, **kwargs):  # the first chunk through the encoder presses Stop
        calls.append(1)
        jobs[0].cancel()
        return original(*args, **kwargs)

    monkeypatch.setattr(text_encoder, "forward", forward)
    prompt = " BREAK ".join(f"a cube number {i}" for i in range(MAX_PROMPT_CHUNKS))  # a prompt never encoded yet
    job = studio.generate(tiny_request(prompt=prompt, steps=4))
    jobs.append(job)
    seen = list(job)
    assert isinstance(seen[-1], Cancelled)
    assert not any(isinstance(e, (Progress, Result)) for e in seen)
    assert len(calls) < MAX_PROMPT_CHUNKS  # the rest of the chunks were never encoded


def test_the_encoder_refuses_a_prompt_past_the_chunk_bound_by_its_field(studio):
    flood = "BREAK " * (MAX_PROMPT_CHUNKS + 5)
    with pytest.raises(InvalidValue) as refused:
        studio.run(tiny_request(negative_prompt=flood, steps=1))
    assert refused.value.field == "negative_prompt"


def test_a_cancel_between_controlnet_units_ends_the_job_before_the_next_unit_and_any_step(studio, monkeypatch):
    from studio.control import steer

    original = steer.preprocess
    calls = []
    jobs = []

    def preprocess(*args, **kwargs):  # the first unit's preprocessing presses Stop
        calls.append(1)
        jobs[0].cancel()
        return original(*args, **kwargs)

    monkeypatch.setattr(steer, "preprocess", preprocess)
    unit = {"image": picture(), "module": "canny", "model": "builtin:controlnet/sd15"}
    job = studio.generate(tiny_request(steps=4, controlnets=[unit, dict(unit), dict(unit)]))
    jobs.append(job)
    seen = list(job)
    assert isinstance(seen[-1], Cancelled)
    assert not any(isinstance(e, (Progress, Result)) for e in seen)
    assert len(calls) == 1  # the second and third units were never preprocessed
