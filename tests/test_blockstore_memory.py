from __future__ import annotations

from pathlib import Path

from blockstore_conformance import BlockstoreTests
from ipldwrite.blockstore import Blockstore, MemoryBlockstore
from ipldwrite.ipld import Link


class TestMemoryBlockstore(BlockstoreTests):
    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        store = MemoryBlockstore(**kwargs)
        store.put_many(blocks.items())
        return store

    def corrupt(self, store: Blockstore, link: Link) -> None:
        assert isinstance(store, MemoryBlockstore)
        store._blocks[link.cid_bytes] = b"tampered"
