"""A bounded in-memory LRU of blocks, sized in bytes, for the read path of network blockstores.

Blocks are immutable, so a cached block never goes stale: the only policy is what to forget
first (the least recently used) once the byte budget is spent.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ipldwrite.ipld import Link

__all__ = ["DEFAULT_CACHE_BYTES", "BlockCache"]

#: 64 MiB: every metadata node of a large dataset plus a working set of chunks.
DEFAULT_CACHE_BYTES = 64 << 20


class BlockCache:
    """Least-recently-used blocks up to ``max_bytes`` in total; thread-safe.

    ``hits`` and ``misses`` count lookups; a block larger than the whole budget is not kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes}: a cache size cannot be negative")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._blocks: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, link: Link) -> bytes | None:
        with self._lock:
            data = self._blocks.get(link.cid_bytes)
            if data is None:
                self.misses += 1
                return None
            self._blocks.move_to_end(link.cid_bytes)
            self.hits += 1
            return data

    def peek(self, link: Link) -> bool:
        """Whether ``link`` is cached, without counting a lookup or refreshing it."""
        with self._lock:
            return link.cid_bytes in self._blocks

    def put(self, link: Link, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        key = link.cid_bytes
        with self._lock:
            if key in self._blocks:
                self._blocks.move_to_end(key)
                return
            self._blocks[key] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes:
                _, old = self._blocks.popitem(last=False)
                self.bytes -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self.bytes = 0

    def __reduce__(self) -> tuple[type[BlockCache], tuple[int]]:
        # A copy (a Dask worker's) starts empty: blocks are cheaper to refetch than to ship.
        return BlockCache, (self.max_bytes,)

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return (
            f"BlockCache({len(self._blocks)} blocks, {self.bytes} of {self.max_bytes} bytes, "
            f"{self.hits} hits, {self.misses} misses)"
        )
