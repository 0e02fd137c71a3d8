"""What a process runs on: its device, named as a person knows it, and its memory in A1111's shape.

The page's "Runs on" line and `/sdapi/v1/memory` read these. On a Ray cluster every replica makes
its own card and checks it in with the front door's lease (studio/lease.py), which is why this module
imports no torch until a function runs: the lease's process unpickles cards without loading torch.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DeviceCard:
    """One engine's device as the page shows it. `replica` is empty for the page's own engine."""

    device: str  # DeviceChoice.describe(): "cuda:0 (fp16)", "cpu (bf16)"
    hardware: str  # "NVIDIA H100 80GB HBM3", "AMD EPYC 9R14, 2 threads"
    host: str
    pid: int
    replica: str = ""
    actor: str = ""  # the Ray actor's name (the front door checks that it still lives)
    memory: dict[str, Any] = field(default_factory=dict, compare=False)  # memory() when the card was made
    at: float = field(default=0.0, compare=False)  # time.time() when the card was made

    def line(self) -> str:
        return f"{self.replica}: {self.device}, {self.hardware}" if self.replica else f"{self.device}, {self.hardware}"


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name, read once (a replica makes a card with every job)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "CPU"


def hardware_name(device: str) -> str:
    """The chip behind a torch device string, as its maker names it; for a CPU, with torch's threads."""
    import torch

    kind = device.split(":")[0]
    if kind == "cuda":  # not visible in a ZeroGPU Space's page process: a GPU is lent per call there
        return torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else "a CUDA GPU"
    if kind == "mps":
        return f"Apple GPU ({platform.machine()})"
    return f"{cpu_name()}, {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}"


def memory() -> dict[str, Any]:
    """This process's memory as A1111's /sdapi/v1/memory answers it: RAM, and CUDA when there is one."""
    import torch

    ram: dict[str, Any]
    try:
        meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines() if ":" in line)
        total = int(meminfo["MemTotal"].split()[0]) * 1024
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        used = int(status["VmRSS"].split()[0]) * 1024
        ram = {"free": float(total - used), "used": used, "total": float(total)}
    except (OSError, KeyError, ValueError) as exc:
        ram = {"error": str(exc)}
    if not torch.cuda.is_available():
        return {"ram": ram, "cuda": {"error": "unavailable"}}
    free, total = torch.cuda.mem_get_info()
    stats = torch.cuda.memory_stats()

    def pair(key: str) -> dict[str, int]:
        return {"current": stats.get(f"{key}.all.current", 0), "peak": stats.get(f"{key}.all.peak", 0)}

    return {"ram": ram, "cuda": {"system": {"free": free, "used": total - free, "total": total},
                                 "active": pair("active_bytes"), "allocated": pair("allocated_bytes"),
                                 "reserved": pair("reserved_bytes"), "inactive": pair("inactive_split_bytes"),
                                 "events": {"retries": stats.get("num_alloc_retries", 0),
                                            "oom": stats.get("num_ooms", 0)}}}


def card(device: str, replica: str = "", actor: str = "") -> DeviceCard:
    """This process's card for an engine on `device` (DeviceChoice.describe())."""
    return DeviceCard(device, hardware_name(device.split(" ")[0]), socket.gethostname(), os.getpid(),
                      replica, actor, memory(), time.time())
