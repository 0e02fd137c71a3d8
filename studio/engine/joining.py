"""Reaching the Ray cluster the replicas run on (studio/engine/cluster.py): the one a user already
has, or one started here, with each failure said for what it is.

- `--ray-address HOST:PORT` (the head's GCS, 6379 by default): nothing answering there fails within
  seconds (ray.init would retry for minutes). A cluster with token authentication (Ray 2.60: `ray start`
  with `RAY_AUTH_MODE=token`; a cluster `ray.init()` starts has it on by default) refuses a caller
  without its token, and ray.init only says "Failed to connect". The studio asks the GCS first: if it
  refuses and a token is at hand (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`), token
  mode is turned on for this process (Ray does not do it by itself when joining); if it still refuses,
  the message says where the token goes.
- `ray://HOST:10001` (Ray Client) is refused at start: Serve's streaming handles, which carry the
  previews and Stop, do not work over it.
- No address: a cluster already running on this machine (`ray start`, or `RAY_ADDRESS`) is joined, as
  Ray itself would; a stale record of one that is gone is ignored; else a new one starts here.

Ray's private helpers used here (the GCS client, the cluster record) are each guarded: when one is
missing the step is skipped and ray.init's own behaviour stands.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidValue, StudioError

log = logging.getLogger("studio")
AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_HELP = ("copy the cluster's token (`ray get-auth-token` on the head prints it) into ~/.ray/auth_token "
              "on this machine, or set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH), and start the studio again")
RAY_CLIENT = ("Ray Client (ray://) cannot carry the studio's streams (live previews and Stop are Serve "
              "streaming handles, which Ray Client does not support). Run the studio on a machine that reaches "
              "the head's GCS port and give --ray-address HOST:6379")


@dataclass(frozen=True)
class Joined:
    """Where the studio's cluster is: `address` None when this process started it."""

    address: str | None
    how: str  # for the log and the page: "joined HOST:PORT", "started here", ...


def check_address(address: str) -> tuple[str, int]:
    """(host, port) of a `--ray-address`; refuses ray:// and anything that is not host:port.

    >>> check_address("10.0.0.5:6379")
    ('10.0.0.5', 6379)
    >>> check_address("ray://head:10001")
    Traceback (most recent call last):
    ...
    studio.errors.InvalidValue: ray_address: 'ray://head:10001' is not valid; allowed: host:port ...
    """
    if address.startswith("ray://"):
        raise InvalidValue("ray_address", address, "host:port (the head's GCS, 6379 by default). " + RAY_CLIENT)
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidValue("ray_address", address, "host:port (the head's GCS, 6379 by default) or auto")
    return host.strip("[]"), int(port)


def answers(host: str, port: int, timeout_s: float = 10.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def token_at_hand() -> str | None:
    """Where this machine has a Ray token (for the message), or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return path if Path(path).is_file() else None


def gcs_refuses(address: str) -> bool | None:
    """True when the cluster's GCS refuses this process's credentials; None when that cannot be asked."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:
        return None
    try:
        GcsClient(address=address, cluster_id=None)
    except AuthenticationError:
        return True
    except Exception:  # anything else is left to ray.init, which says it
        return None
    return False


def use_token_mode() -> None:
    """Turn Ray's token mode on for this process (what `RAY_AUTH_MODE=token` at start would have done)."""
    os.environ[AUTH_MODE] = "token"
    try:
        from ray._raylet import Config

        Config.initialize("")  # Ray caches its config: re-read it
    except (ImportError, AttributeError):
        pass


def authenticate(address: str) -> None:
    """Make sure the cluster at `address` takes this process, or say exactly why not."""
    if not gcs_refuses(address):
        return
    where = token_at_hand()
    if where is None:
        raise StudioError(f"The Ray cluster at {address} uses token authentication and this machine has no token: "
                          f"{TOKEN_HELP}.")
    if os.environ.get(AUTH_MODE, "").lower() != "token":  # the token is there, but Ray does not use it yet
        log.info("the Ray cluster at %s uses token authentication: using the token in %s", address, where)
        use_token_mode()
        if not gcs_refuses(address):
            return
    raise StudioError(f"The Ray cluster at {address} refused the token in {where}: it is not this cluster's; "
                      f"{TOKEN_HELP}.")


def running_here() -> str | None:
    """The address of a cluster `ray start` (or RAY_ADDRESS) names on this machine, if any."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        return canonicalize_bootstrap_address(None)
    except Exception:  # no record, or one Ray cannot read: start a new cluster
        return None


def join(address: str | None, num_cpus: int, here: dict, joined: dict) -> Joined:
    """ray.init for the studio: join `address`, or the cluster running here, or start one with
    `num_cpus`; `here` and `joined` are the runtime_env for a cluster started here or joined."""
    import ray

    if address and address != "auto":
        host, port = check_address(address)
        if not answers(host, port):
            raise StudioError(f"Could not reach a Ray cluster at --ray-address {address}: nothing answers at "
                              f"{host}:{port}. Start the head there (`ray start --head --port {port}`) or fix the address.")
        authenticate(address)
        call, where = {"address": address, "runtime_env": joined}, Joined(address, f"joined the Ray cluster at {address}")
    else:
        found = running_here()
        if found and answers(*check_address(found), timeout_s=3.0):
            authenticate(found)
            call = {"address": found, "runtime_env": joined}
            where = Joined(found, f"joined the Ray cluster already running here ({found})")
        elif address == "auto":
            raise StudioError("--ray-address auto: no Ray cluster runs on this machine (start one with `ray start "
                              "--head`, or leave --ray-address out to start one inside the studio)")
        else:
            if found:
                log.info("ignoring the record of a Ray cluster at %s that no longer answers", found)
            call = {"address": "local", "include_dashboard": False, "num_cpus": num_cpus, "runtime_env": here}
            where = Joined(None, "started a Ray cluster here")
    try:
        ray.init(namespace="studio", log_to_driver=False, **call)
    except Exception as exc:
        place = f"at {where.address}" if where.address else "on this machine"
        hint = f" If the cluster uses token authentication, {TOKEN_HELP}." if where.address else ""
        raise StudioError(f"Could not reach a Ray cluster {place}: {type(exc).__name__}: {exc}.{hint}") from None
    log.info("%s", where.how)
    return where
