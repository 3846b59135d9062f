"""A bounded least-recently-used map: the one cache class, held by whoever uses the cache.

Everything cached in this package is a pure function of content (a CID, a grid shape, a
metadata document), so an entry never goes stale; the only policy is what to forget first
once ``max_entries`` is reached. Thread-safe: readers share stores between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["LRU"]


class LRU[K: Hashable, V]:
    """At most ``max_entries`` values by key, the least recently used forgotten first
    (0: nothing is kept, for measuring without the cache)."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries={max_entries}: a cache size cannot be negative")
        self.max_entries = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key``; return the value kept (an earlier one wins, so
        threads that computed the same entry at once end up sharing one)."""
        if not self.max_entries:
            return value
        with self._lock:
            kept = self._entries.setdefault(key, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return kept

    def get_or_make(self, key: K, make: Callable[[K], V]) -> V:
        """The value under ``key``, made by ``make(key)`` (outside the lock) when missing."""
        value = self.get(key)
        return value if value is not None else self.put(key, make(key))

    def __len__(self) -> int:
        return len(self._entries)
