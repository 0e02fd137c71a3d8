"""A small thread-safe LRU cache for loaded pipelines.

Each key loads at most once even when several requests ask for it at the same moment (they wait
for the first load). Evicted values are handed to `on_evict`, which frees their memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    def __init__(self, capacity: int, on_evict: Callable[[V], None] = lambda value: None):
        if capacity < 1:
            raise ValueError(f"cache capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._on_evict = on_evict
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self.loads = 0  # how many times a loader actually ran (tests and logs read it)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def peek(self, key: Hashable) -> V | None:
        with self._lock:
            return self._items.get(key)

    def get_or_load(self, key: Hashable, loader: Callable[[], V],
                    prepare: Callable[[], None] = lambda: None) -> tuple[V, bool]:
        """The cached value (marked most recent), or the loader's; True when it was loaded now.
        `prepare` runs before anything is evicted: what it raises (a model that cannot be fetched)
        leaves the cache as it was."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], False
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key; others wait here, then find it cached
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key], False
            try:
                prepare()
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                # Make room *before* loading: on a GPU two big models may not fit side by side.
                evicted = []
                while len(self._items) >= self.capacity:
                    evicted.append(self._items.popitem(last=False)[1])
            while evicted:  # pop, so no local reference keeps the evicted model alive
                self._on_evict(evicted.pop())
            value = loader()  # may raise: nothing is cached, the next call tries again
            with self._lock:
                self.loads += 1
                self._items[key] = value
                self._loading.pop(key, None)
        return value, True

    def clear(self) -> None:
        with self._lock:
            values = list(self._items.values())
            self._items.clear()
        for value in values:
            self._on_evict(value)
