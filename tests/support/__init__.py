"""What the tests share: tiny requests and pictures, the repository's root, `python app.py` on a free
port, and the torch settings of the tiers that run models in this process.

Test files import these by name (`from support import tiny_request, running_app`); `tests` is on
pytest's pythonpath. Nothing here imports torch at import time: the unit tier and the browser tier
run without it. The model-file writers that need torch are modules of their own here
(`support.lora_files`, `support.ldm_export`, `support.gguf_export`); `support/zero_gpu_shim.py` is
imported by an app subprocess as a top-level module, never through this package.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]  # the repository: app.py, README.md, studio/
SUPPORT = Path(__file__).resolve().parent


def use_cpu_torch() -> None:
    """The same numbers on every machine, for the tiers that run models in this process: one torch
    thread (tests/conftest.py sets OMP_NUM_THREADS=1 for the reason) and fp32 on every CPU (`auto`
    picks bf16 where the CPU has it natively; apps started by the tests get fp32 by STUDIO_DTYPE)."""
    import torch

    from studio import devices

    devices.native_bf16 = lambda: False  # see STUDIO_DTYPE in tests/conftest.py
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def tiny_request(**fields):
    """A GenerationRequest on the tiny model: 4 steps at 64x64, seed 1, Euler; `fields` override."""
    from studio import GenerationRequest

    base = dict(prompt="a red cube", model="tiny", steps=4, width=64, height=64, seed=1, sampler="Euler")
    return GenerationRequest(**{**base, **fields})


def dummy_table():
    """The field table with one more setting, `dummy_strength`: what adding a setting takes."""
    from studio.fields import TABLE, Field, Infotext

    dummy = Field("dummy_strength", "float", 0.5, "Dummy strength", range=(0.0, 1.0), widget="slider", step=0.05,
                  help="a setting added by a test", infotext=(Infotext("Dummy strength", 180, parse=float),))
    return TABLE.with_fields(dummy)


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def picture(seed: int = 0, size=(64, 64)) -> Image.Image:
    """A picture of coloured noise, the same for the same seed."""
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype("uint8"))


def api_client(url: str):
    """gradio_client's Client of a running studio, quiet."""
    from gradio_client import Client

    return Client(url, verbose=False)


def wait_until(condition, timeout: float = 120.0, what: str = "condition") -> None:
    """Poll `condition` until it holds (generous bounds: the machine may be shared)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stepping(job) -> bool:
    """Whether a /generate job's status has reached its steps."""
    return any("Step" in str(update[3]) for update in job.outputs())


def b64_png(image: Image.Image, prefix: str = "") -> str:
    """A picture as A1111's API takes it: base64 PNG (after `prefix`, e.g. "data:image/png;base64,")."""
    import base64
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return prefix + base64.b64encode(buffer.getvalue()).decode()


def png(b64: str) -> Image.Image:
    """A base64 PNG from an A1111 answer, opened."""
    import base64
    import io

    return Image.open(io.BytesIO(base64.b64decode(b64)))


def square_mask(size=(64, 64), box=(16, 16, 40, 40)) -> Image.Image:
    """A mask that is white (repaint) inside `box` and black elsewhere."""
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def png_copies(result, folder: Path) -> tuple[Path, Path]:
    """A result's first image as the studio saves it, and with its infotext alone (as other tools keep
    it): the two PNGs a round trip is proven on."""
    from PIL import PngImagePlugin

    from studio.outputs import OutputFolder

    ours = OutputFolder(folder).save(result)[0]
    text_only = folder / "a1111.png"
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", result.infotexts[0])
    result.images[0].save(text_only, pnginfo=chunks)
    return ours, text_only


def record(name: str, value) -> None:
    """A measurement for bench/reliability.py's report (a no-op unless it set STUDIO_RELIABILITY_LOG)."""
    path = os.environ.get("STUDIO_RELIABILITY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": name, "value": value}) + "\n")


# -- the app as a user starts it -------------------------------------------------------------------

@dataclass(frozen=True)
class RunningApp:
    url: str
    outputs: Path
    log: Path
    exit_codes: list = field(default_factory=list)  # the process's exit code once it has stopped (SIGTERM)


def free_port() -> int:
    """A free port outside the kernel's ephemeral range. A port the kernel hands out for `bind(0)` is free
    now but may be handed to another process before the app binds it: Ray picks its own ports that way
    while an `--engine ray` app starts (seen on CI: the page's port taken by a Ray agent). Ports below the
    ephemeral range and above Ray's worker ports (10002-19999) are never handed out by either."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default; macOS's range starts at 49152
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(low, 20001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(tmp_path_factory, *flags: str, env: dict | None = None, first: str = "", start_s: float = 120,
                stop_s: float = 10):
    """`python app.py --model tiny` as a user starts it, on a free port, with its own outputs folder.
    `env` adds variables (None removes one); `first` is Python run before app.py's main (a test's stand-in); `start_s` and
    `stop_s` bound its start and its orderly exit (then it is killed)."""
    log = tmp_path_factory.mktemp("app") / "app.log"
    outputs = tmp_path_factory.mktemp("outputs")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    env = {name: value for name, value in env.items() if value is not None}  # None: not set at all
    start = ["-c", f"{first}\nimport runpy; runpy.run_path('app.py', run_name='__main__')"] if first else ["app.py"]
    proc = subprocess.Popen(
        [sys.executable, *start, "--model", "tiny", "--port", str(port), "--outputs", str(outputs), *flags],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + start_s
    while True:
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5):
                break
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("app did not start:\n" + log.read_text()) from exc
            time.sleep(0.5)
    running = RunningApp(url, outputs, log)
    try:
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        running.exit_codes.append(proc.returncode)


def subprocess_line(proc: subprocess.Popen, timeout: float) -> str:
    """The next line the process prints, or a message saying it printed none in time."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else f"no line within {timeout:.0f} s"


def client_that_vanishes(script: str, url: str, folder: Path) -> None:
    """Run a gradio_client script until it prints "stepping", then kill it without a word (a closed
    tab, a lost network): whatever it had queued or running is abandoned."""
    path = folder / "client.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path), url], stdout=subprocess.PIPE, text=True)
    try:
        # The script gives up by itself after 180 s; the bound here covers a script that hangs anyway.
        line = subprocess_line(proc, timeout=300)
        assert line.strip() == "stepping", line
    finally:
        proc.kill()
        proc.wait()


# A gradio_client script that starts a long run, says "stepping" once it has, then waits to be killed.
DISCONNECTING_CLIENT = """
import sys, time
from gradio_client import Client
job = Client(sys.argv[1], verbose=False).submit(prompt="gone", model="tiny", steps=150, width=256, height=256,
                                                seed=1, api_name="/generate")
while not any("Step" in str(u[3]) for u in job.outputs()):
    time.sleep(0.05)
print("stepping", flush=True)
time.sleep(600)
"""
