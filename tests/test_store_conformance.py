"""IPLDStore against zarr's own store test suite."""

from __future__ import annotations

from typing import Any

import pytest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.testing.store import StoreTests

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.store import IPLDStore


class TestIPLDStore(StoreTests[IPLDStore, cpu.Buffer]):
    store_cls = IPLDStore
    buffer_cls = cpu.Buffer

    async def set(self, store: IPLDStore, key: str, value: Buffer) -> None:
        # Bypass the store's own checks (zarr's suite writes into read-only stores too).
        was = store._read_only
        store._read_only = False
        try:
            store.set_sync(key, value)
        finally:
            store._read_only = was

    async def get(self, store: IPLDStore, key: str) -> Buffer:
        result = store.get_sync(key, default_buffer_prototype())
        assert result is not None
        return result

    @pytest.fixture
    def store_kwargs(self) -> dict[str, Any]:
        return {"blockstore": MemoryBlockstore(), "read_only": False}

    def test_store_repr(self, store: IPLDStore) -> None:
        assert "IPLDStore(MemoryBlockstore" in repr(store)

    def test_store_supports_writes(self, store: IPLDStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: IPLDStore) -> None:
        assert store.supports_listing


def test_equal_stores_hash_alike_and_keep_their_hash() -> None:
    blocks = MemoryBlockstore()
    store = IPLDStore(blocks, read_only=False)
    before = hash(store)
    store.set_sync("zarr.json", cpu.Buffer.from_bytes(b'{"zarr_format": 3, "node_type": "group"}'))
    store.commit()
    assert hash(store) == before  # a store stays findable in a dict across writes
    reopened = IPLDStore(blocks, store.root, read_only=False)
    assert reopened == store
    assert hash(reopened) == hash(store)
