from __future__ import annotations

import itertools
import os
import weakref
from collections.abc import Iterator
from typing import Any

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.errors import UnsafeBlockstoreError
from ipldwrite.ipld import Link

# Pickling a MemoryBlockstore sends a reference, not a copy: within one process (threads,
# an in-process Dask cluster) every unpickled handle is the same store. A copy would
# silently lose every block written into it. Not a cache: a registry of the live stores,
# bounded by them (weak values: a store that is no longer used drops out).
_LIVE: weakref.WeakValueDictionary[int, MemoryBlockstore] = weakref.WeakValueDictionary()
_TOKENS = itertools.count()


def _find(token: int, pid: int) -> MemoryBlockstore:
    store = _LIVE.get(token) if pid == os.getpid() else None
    if store is None:
        raise UnsafeBlockstoreError(
            "a MemoryBlockstore cannot travel to another process: its blocks live in the "
            "memory of the process that made it. With a process-based Dask cluster use a "
            "DirectoryBlockstore on a path every worker can reach."
        )
    return store


class MemoryBlockstore(Blockstore):
    """Blocks in a dict: for tests and small in-process work.

    Shared by reference between threads of one process; never between processes.
    """

    supports_listing = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._blocks: dict[bytes, bytes] = {}
        self._token = next(_TOKENS)
        _LIVE[self._token] = self

    def _get(self, link: Link) -> bytes | None:
        return self._blocks.get(link.cid_bytes)

    def _put(self, link: Link, data: BlockData) -> None:
        self._blocks.setdefault(link.cid_bytes, bytes(data))

    def _replace(self, link: Link, data: BlockData) -> None:
        self._blocks[link.cid_bytes] = bytes(data)

    def _has(self, link: Link) -> bool:
        return link.cid_bytes in self._blocks

    def _size(self, link: Link) -> int | None:
        data = self._blocks.get(link.cid_bytes)
        return None if data is None else len(data)

    def _iter_links(self) -> Iterator[Link]:
        return (Link(raw) for raw in list(self._blocks))

    def __reduce__(self) -> tuple[Any, ...]:
        return _find, (self._token, os.getpid())

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return f"MemoryBlockstore({len(self._blocks)} blocks)"
