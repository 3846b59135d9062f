from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.ipld import DAG_CBOR, Link, parse_cid_bytes


def _kind(link: Link) -> str:
    # In zarr-on-IPLD every dag-cbor block is a node (group, array, manifest); raw and
    # dag-pb blocks are chunk payloads (dag-pb: UnixFS files of big chunks).
    return "node" if parse_cid_bytes(link.cid_bytes).codec == DAG_CBOR else "chunk"


class CountingBlockstore(Blockstore):
    """Wraps another blockstore and counts reads and writes of nodes and of chunk blocks.

    The audit tool for "metadata only" claims: after a dataset operation,
    ``reads["chunk"]`` and ``writes["chunk"]`` say how many chunk blocks it touched.
    ``read_links`` keeps every link read, for finer questions. Size queries (``size``) are
    counted apart, in ``sizes``: they read backend metadata, not the block.
    """

    def __init__(self, inner: Blockstore) -> None:
        super().__init__(
            max_block_size=inner.max_block_size,
            hasher=inner.hasher,
            verify=inner.verify,
            read_only=inner.read_only,
        )
        self.inner = inner
        self.shared_between_processes = inner.shared_between_processes
        self.supports_listing = inner.supports_listing
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.read_links: set[bytes] = set()
        self.sizes: Counter[str] = Counter()

    def reset(self) -> None:
        self.sizes.clear()
        self.reads.clear()
        self.writes.clear()
        self.read_links.clear()

    def _get(self, link: Link) -> bytes | None:
        self.reads[_kind(link)] += 1
        self.read_links.add(link.cid_bytes)
        return self.inner._get(link)

    def _put(self, link: Link, data: BlockData) -> None:
        if not self.inner._has(link):
            self.writes[_kind(link)] += 1
        self.inner._put(link, data)

    def _replace(self, link: Link, data: BlockData) -> None:
        self.writes[_kind(link)] += 1
        self.inner._replace(link, data)

    def _has(self, link: Link) -> bool:
        return self.inner._has(link)

    def _size(self, link: Link) -> int | None:
        self.sizes[_kind(link)] += 1
        return self.inner._size(link)

    def _iter_links(self) -> Iterator[Link]:
        return self.inner.iter_links()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"CountingBlockstore({self.inner!r})"
