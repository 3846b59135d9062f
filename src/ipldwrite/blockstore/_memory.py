from __future__ import annotations

from collections.abc import Iterator

from ipldwrite.blockstore._base import Blockstore
from ipldwrite.ipld import Link


class MemoryBlockstore(Blockstore):
    """Blocks in a dict: for tests and small in-process work.

    Not shared between processes: a process-based Dask cluster would write into copies that
    vanish, so the distributed writer refuses this combination.
    """

    supports_listing = True

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._blocks: dict[bytes, bytes] = {}

    def _get(self, link: Link) -> bytes | None:
        return self._blocks.get(link.cid_bytes)

    def _put(self, link: Link, data: bytes) -> None:
        self._blocks.setdefault(link.cid_bytes, bytes(data))

    def _has(self, link: Link) -> bool:
        return link.cid_bytes in self._blocks

    def _iter_links(self) -> Iterator[Link]:
        return (Link(raw) for raw in list(self._blocks))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemoryBlockstore) and self._blocks == other._blocks

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return f"MemoryBlockstore({len(self._blocks)} blocks)"
