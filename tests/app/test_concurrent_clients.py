"""Many users at once through a running app: no cross-talk, a bounded queue that says so, and cancels
and disconnects that free the device. Memory over many generations: tests/engine/test_memory.py."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from support import DISCONNECTING_CLIENT, client_that_vanishes, record, running_app


CLIENTS = int(os.environ.get("STUDIO_CLIENTS", "8"))  # bench/reliability.py raises these


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory, "--queue-size", "32") as app:
        yield app


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def params(i: int) -> dict:
    return dict(prompt=f"client {i}", model="tiny", steps=3, width=64, height=64, seed=1000 + i,
                sampler="Euler a" if i % 2 else "DPM++ 2M Karras", api_name="/generate")


def pixels_of(result) -> np.ndarray:
    return np.asarray(Image.open(result[0][0]["image"]).convert("RGB"))


def test_eight_clients_at_once_get_exactly_what_they_would_get_alone(server):
    clients = [client(server.url) for _ in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        together = list(pool.map(lambda i: clients[i].predict(**params(i)), range(CLIENTS)))
    alone = [clients[0].predict(**params(i)) for i in range(CLIENTS)]
    for i in range(CLIENTS):
        images, infotext, seed, status, _ = together[i]
        assert seed == 1000 + i and infotext.startswith(f"client {i}\n") and f"Seed: {1000 + i}," in infotext
        assert np.array_equal(pixels_of(together[i]), pixels_of(alone[i])), f"client {i} got another image"
    record("concurrent clients, identical to alone", CLIENTS)


def test_cancels_of_some_clients_do_not_touch_the_others(server):
    clients = [client(server.url) for _ in range(CLIENTS)]
    jobs = [c.submit(**{**params(i), "steps": 30 if i < 4 else 3}) for i, c in enumerate(clients)]
    for job in jobs[:4]:
        job.cancel()
    for i, job in enumerate(jobs[4:], start=4):
        result = job.result(timeout=120)
        assert f"client {i}\n" in result[1] and result[2] == 1000 + i
        assert np.array_equal(pixels_of(result), pixels_of(clients[0].predict(**params(i))))


def test_a_full_queue_says_so_and_the_studio_keeps_serving(tmp_path_factory):
    with running_app(tmp_path_factory, "--queue-size", "1") as app:
        running = client(app.url).submit(**{**params(0), "steps": 150, "width": 256, "height": 256})
        deadline = time.monotonic() + 60
        while not any("Step" in str(u[3]) for u in running.outputs()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        waiting = client(app.url).submit(**params(1))  # takes the one waiting place
        from gradio_client.utils import Status

        while waiting.status().code != Status.IN_QUEUE:
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        with pytest.raises(Exception, match="(?i)queue is full"):
            client(app.url).predict(**params(2))
        running.cancel()
        assert waiting.result(timeout=60)[2] == 1001  # the waiting one is served
        assert client(app.url).predict(**params(3))[2] == 1003  # and new ones again


def test_a_client_that_disconnects_mid_run_has_its_job_cancelled(server, tmp_path):
    client_that_vanishes(DISCONNECTING_CLIENT, server.url, tmp_path)
    deadline = time.monotonic() + 120  # generous: a loaded machine may notice the drop later
    while "Cancelled at step" not in server.log.read_text():
        assert time.monotonic() < deadline, "the abandoned job kept running"
        time.sleep(0.2)
    stopped = int(server.log.read_text().split("Cancelled at step ")[-1].split("/")[0])
    assert stopped < 150  # it stopped early, so the device is free for the next request
    assert client(server.url).predict(**params(0))[2] == 1000
