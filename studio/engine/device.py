"""The device thread: every pipeline call runs on one long-lived thread, one job at a time.

On CPUs that matters: every thread that runs torch ops gets an OpenMP team of its own, and two
teams on few cores spin against each other (measured here: a pipeline call 10-20% slower in a
fresh thread than in a reused one). The thread is made again in a forked child (ZeroGPU runs
handlers in one), where the parent's threads do not exist.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Any, Callable


class DeviceThread:
    def __init__(self) -> None:
        self._executor: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
        self._lock = threading.Lock()
        self.busy = threading.Lock()  # held while a job runs on the device

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        pid = os.getpid()
        with self._lock:
            if self._executor is None or self._executor[0] != pid:
                self._executor = (pid, concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="studio-device"))
            return self._executor[1]

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Queue `fn` on the device thread, to run with the device held."""
        def locked() -> Any:
            with self.busy:
                return fn(*args, **kwargs)

        return self.executor().submit(locked)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn` on the device thread, after any job already there, and return its result."""
        return self.executor().submit(fn, *args, **kwargs).result()
