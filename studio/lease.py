"""A front door's lease on a Ray cluster (studio/engine/cluster.py): the way a replica learns that the
process which asked for a job is gone, since a dead caller sends no cancel and Serve would run its job
to the end.

The lease is an actor owned by the front door's process, and Ray ends an actor with its owner. Every
job carries a call to `hold`, which never returns: when it fails for good, the replica cancels the job.
The actor is restartable and `hold` retried (cluster.py starts it with max_restarts and
max_task_retries of -1): if the lease's own process dies (an out-of-memory kill, its node lost) while
the front door lives, Ray starts it again and the replicas' pending `hold` calls carry over to it, so
no job is cancelled and later jobs run. Only the owner's death ends it for good.

The lease also keeps the roster: each replica checks in its DeviceCard (studio/hardware.py) when it
starts and with every job, and the page's "Runs on" and /sdapi/v1/memory read them back. A restarted
lease has lost the roster; the replicas' next jobs fill it again.

This module imports nothing of the engine: the actor's process imports it alone (no torch).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any


ROSTER_KEPT = 256  # cards kept, the oldest dropped first (replicas that died and were replaced leave theirs)


class Lease:
    def __init__(self) -> None:
        self._cards: dict[str, Any] = {}

    def check_in(self, card: Any) -> None:
        """A replica's DeviceCard, by its name: the newest one of each replica is kept."""
        self._cards.pop(card.replica, None)
        self._cards[card.replica] = card
        while len(self._cards) > ROSTER_KEPT:
            self._cards.pop(next(iter(self._cards)))

    def roster(self) -> list[Any]:
        return list(self._cards.values())

    async def hold(self) -> None:
        await asyncio.Event().wait()

    def describe(self) -> tuple[int, bool]:
        """(this actor's pid, whether torch is loaded in its process): the front door logs both."""
        return os.getpid(), "torch" in sys.modules
