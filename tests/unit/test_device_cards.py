"""Where the work runs, as the page's "Runs on" line and /sdapi/v1/memory say it: one card for a
studio on this machine, one per live replica on a Ray cluster (their lease keeps the roster)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace

from fastapi import FastAPI
from fastapi.testclient import TestClient

from studio import hardware
from studio.config import StudioConfig
from studio.outputs import OutputFolder
from studio.service import Service
from studio.lease import ROSTER_KEPT, Lease
from studio.web import handlers
from studio.web.sdapi.calls import SdApi
from studio.web.sdapi.routes import build_router


def test_a_card_names_this_machines_device_and_memory_in_a1111s_shape():
    card = hardware.card("cpu (fp32)")
    assert (card.host, card.pid, card.replica) == (socket.gethostname(), os.getpid(), "")
    assert card.hardware.endswith("threads") or card.hardware.endswith("thread")
    assert card.line() == f"cpu (fp32), {card.hardware}"
    assert card.memory["ram"]["total"] > 0 and "cuda" in card.memory
    assert hardware.memory()["cuda"] == {"error": "unavailable"}  # no GPU here; A1111 answers the same


def test_the_roster_keeps_each_replicas_newest_card_and_a_bounded_number():
    lease = Lease()
    first = replace(hardware.card("cpu (fp32)"), replica="a")
    lease.check_in(first)
    lease.check_in(replace(first, device="cuda:0 (fp16)"))
    lease.check_in(replace(first, replica="b"))
    assert [(c.replica, c.device) for c in lease.roster()] == [("a", "cuda:0 (fp16)"), ("b", "cpu (fp32)")]
    for n in range(ROSTER_KEPT + 10):
        lease.check_in(replace(first, replica=f"r{n}"))
    assert len(lease.roster()) == ROSTER_KEPT and lease.roster()[-1].replica == f"r{ROSTER_KEPT + 9}"


def test_the_lease_module_loads_no_torch_to_read_cards():
    # The lease's own process unpickles the cards: studio.hardware must not import torch to be read.
    code = "import sys, studio.lease, studio.hardware; assert 'torch' not in sys.modules, 'torch loaded'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


class Cards:
    """An engine as the page's line and the memory route read it: only its devices."""

    def __init__(self, cards):
        self.cards = cards

    def devices(self):
        return self.cards


def replica(name, device, gpu):
    return hardware.DeviceCard(device, gpu, "node-1", 42, replica=name, actor="SERVE_REPLICA::x",
                               memory={"ram": {"total": 1.0}, "cuda": {"system": {"free": 7, "used": 1, "total": 8}}},
                               at=123.0)


def test_the_page_says_the_device_or_every_replicas():
    assert handlers.runs_on(Cards([hardware.card("cpu (fp32)")])).startswith("Runs on cpu (fp32), ")
    line = handlers.runs_on(Cards([replica("node-1:41", "cuda:0 (fp16)", "NVIDIA H100"),
                                   replica("node-2:77", "cuda:0 (fp16)", "NVIDIA L4")]))
    assert line.splitlines() == ["Runs on 2 replicas:", "- node-1:41: cuda:0 (fp16), NVIDIA H100",
                                 "- node-2:77: cuda:0 (fp16), NVIDIA L4"]
    assert "did not answer" in handlers.runs_on(Cards([]))
    assert "&lt;b&gt;" in handlers.runs_on(Cards([replica("<b>", "cpu (fp32)", "x")]))  # names are text


def memory_answer(engine, folder):
    engine.config = StudioConfig()
    app = FastAPI()
    app.include_router(build_router(SdApi(Service(engine, OutputFolder(folder)), lambda: "tiny"), None))
    return TestClient(app).get("/sdapi/v1/memory").json()


def test_a1111s_memory_route_answers_for_the_replicas_of_a_cluster(tmp_path):
    here = memory_answer(Cards([hardware.card("cpu (fp32)")]), tmp_path)
    assert set(here) == {"ram", "cuda"} and here["ram"]["total"] > 0
    cluster = memory_answer(Cards([replica("node-1:41", "cuda:0 (fp16)", "NVIDIA H100")]), tmp_path)
    assert "replicas" in cluster["cuda"]["error"]  # not this machine's "unavailable", which misleads
    (one,) = cluster["replicas"]
    assert one["replica"] == "node-1:41" and one["hardware"] == "NVIDIA H100" and one["reported_at"] == 123.0
    assert one["cuda"]["system"]["total"] == 8 and one["ram"]["total"] == 1.0
