"""Joining the Ray cluster a user already has, as docs/scale-out.md tells them to: a head started with
`ray start --head` and token authentication, a second node joined to it with `ray start --address`
(both on this machine, started outside the checkout and without its path: the replicas get the code
through Ray's runtime_env), then `app.py --engine ray --ray-address HEAD` with the token at hand, and
without it. Errors from a replica cross as pickles here (Serve's local testing mode never pickles)."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

pytest.importorskip("ray.serve", reason="the Ray engine is an optional extra: pip install -r requirements-ray.txt")

from gradio_client import Client  # noqa: E402

from support import ROOT, free_port, running_app, wait_until  # noqa: E402

from studio.engine import joining  # noqa: E402

RAY = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")


def ray_cli(*args: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([RAY, *args], env=env, cwd="/", capture_output=True, text=True, timeout=timeout)


def ray_node(*args: str, env: dict, log) -> subprocess.Popen:
    """`ray start ... --block` in its own process group: stopped by killing that group, never with
    `ray stop`, which stops every Ray process on the machine (this test process's own cluster too: its
    driver then exits with code 1 once it misses its GCS)."""
    return subprocess.Popen([RAY, "start", *args, "--block"], env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_node(node: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-node token cluster on this machine: (head address, the environment that holds its token)."""
    home = tmp_path_factory.mktemp("ray_home")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS", "RAY_AUTH_MODE")}
    env.update(HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    made = ray_cli("get-auth-token", "--generate", env=env)
    assert made.returncode == 0, made.stderr
    token_env = {**env, "RAY_AUTH_MODE": "token"}
    port = free_port()
    log = (home / "nodes.log").open("w")
    nodes = [ray_node("--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
                      "--disable-usage-stats", env=token_env, log=log)]
    try:
        wait_until(lambda: joining.answers("127.0.0.1", port, timeout_s=2) or nodes[0].poll() is not None, 120,
                   "the head to answer")
        assert nodes[0].poll() is None, (home / "nodes.log").read_text()
        nodes.append(ray_node("--address", f"127.0.0.1:{port}", "--num-cpus", "1", env=token_env, log=log))
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            stop_node(node)
        log.close()
        # `ray start` left its record of this cluster, now gone: Ray (and anything that calls ray.init
        # without an address in this test run) would try to join it for minutes.
        record = pathlib.Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if record.is_file() and record.read_text().strip().endswith(f":{port}"):
            record.unlink()


def test_the_studio_joins_a_token_cluster_with_the_token_at_hand_and_replicas_on_both_nodes(cluster, tmp_path_factory):
    address, env = cluster  # HOME holds the token; RAY_AUTH_MODE is not set (Ray would not use the token)
    # (this test process may have it: a cluster ray.init starts sets it in os.environ)
    with running_app(tmp_path_factory, "--engine", "ray", "--ray-address", address, "--replicas", "2",
                     env={**env, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": None, "RAY_ADDRESS": None},
                     start_s=600, stop_s=60) as app:
        log = app.log.read_text(errors="replace")
        assert "uses token authentication: using the token in" in log and f"joined the Ray cluster at {address}" in log
        client = Client(app.url, verbose=False)
        final = client.predict(prompt="a lighthouse", model="tiny", steps=3, width=64, height=64, api_name="/generate")
        assert final[3].startswith("Done"), final[3]
        # A replica's own error crosses the process boundary as the engine's: the field named, no pickling failure.
        with pytest.raises(Exception, match="lora") as raised:
            client.predict(prompt="<lora:nosuch:1>", model="tiny", steps=2, width=64, height=64, api_name="/generate")
        assert "deserialize" not in str(raised.value)
    # SIGTERM (systemd, Docker): the page closes and the process exits 0, no abort or stack dump.
    assert app.exit_codes == [0], app.log.read_text(errors="replace")[-3000:]
    assert "Fatal Python error" not in app.log.read_text(errors="replace")


def test_without_the_token_the_studio_says_where_the_token_goes(cluster, tmp_path):
    address, env = cluster
    bare = {**env, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "app.py", "--model", "tiny", "--port", str(free_port()), "--engine", "ray",
                          "--ray-address", address], cwd=ROOT, env=bare, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "uses token authentication and this machine has no token" in out.stderr, out.stderr[-2000:]
    assert "ray get-auth-token" in out.stderr
