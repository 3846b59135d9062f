"""The blockstore contract as a test base class: every backend's tests subclass it.

A subclass supplies :meth:`make` (a blockstore holding exactly the given blocks) and, if the
backend can be corrupted on purpose, :meth:`corrupt`. Read-only backends set ``writable``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import ClassVar

import pytest

from ipldwrite.blockstore import Blockstore
from ipldwrite.errors import (
    BlockNotFoundError,
    BlockTooLargeError,
    CorruptBlockError,
    ReadOnlyError,
)
from ipldwrite.ipld import DAG_CBOR, RAW, Link, compute_link, encode


def sample_blocks() -> dict[Link, bytes]:
    blocks: dict[Link, bytes] = {}
    for i in range(20):
        data = os.urandom(i * 97)
        blocks[compute_link(data)] = data
    node = encode({"name": "node", "links": list(blocks)[:5]})
    blocks[compute_link(node, DAG_CBOR)] = node
    return blocks


class BlockstoreTests:
    writable: ClassVar[bool] = True
    supports_listing: ClassVar[bool] = True

    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        raise NotImplementedError  # supplied by each backend's test class

    def corrupt(self, store: Blockstore, link: Link) -> None:
        pytest.skip("this backend cannot be corrupted from a test")

    def test_get_returns_the_bytes(self, tmp_path: Path) -> None:
        blocks = sample_blocks()
        store = self.make(tmp_path, blocks)
        for link, data in blocks.items():
            assert store.get(link) == data
            assert store.has(link)
            assert link in store

    def test_missing_block_raises_lookuperror_naming_the_cid(self, tmp_path: Path) -> None:
        store = self.make(tmp_path, sample_blocks())
        missing = compute_link(b"never stored")
        assert not store.has(missing)
        with pytest.raises(BlockNotFoundError, match=str(missing_str(missing))) as info:
            store.get(missing)
        assert isinstance(info.value, LookupError)
        assert not isinstance(info.value, KeyError)  # zarr would read KeyError as 'absent'

    def test_batch_variants(self, tmp_path: Path) -> None:
        blocks = sample_blocks()
        store = self.make(tmp_path, blocks)
        assert dict(store.get_many(list(blocks))) == blocks
        missing = compute_link(b"absent")
        assert store.has_many([*blocks, missing]) == [True] * len(blocks) + [False]

    def test_identity_cids_need_no_storage(self, tmp_path: Path) -> None:
        store = self.make(tmp_path, {})
        link = Link(b"\x01\x55\x00\x05hello")
        assert store.get(link) == b"hello"
        assert store.size(link) == 5

    def test_size_is_the_block_length(self, tmp_path: Path) -> None:
        blocks = sample_blocks()
        store = self.make(tmp_path, blocks)
        for link, data in blocks.items():
            assert store.size(link) == len(data)  # the empty block included: size 0

    def test_size_of_a_missing_block_raises_naming_the_cid(self, tmp_path: Path) -> None:
        store = self.make(tmp_path, sample_blocks())
        missing = compute_link(b"never stored")
        with pytest.raises(BlockNotFoundError, match=missing_str(missing)):
            store.size(missing)

    def test_listing(self, tmp_path: Path) -> None:
        blocks = sample_blocks()
        store = self.make(tmp_path, blocks)
        if not self.supports_listing:
            assert not store.supports_listing
            return
        assert store.supports_listing
        assert sorted(lnk.cid_bytes for lnk in store.iter_links()) == sorted(
            lnk.cid_bytes for lnk in blocks
        )

    def test_pickles(self, tmp_path: Path) -> None:
        blocks = sample_blocks()
        store = self.make(tmp_path, blocks)
        clone = pickle.loads(pickle.dumps(store))
        for link, data in blocks.items():
            assert clone.get(link) == data

    def test_verify_detects_corruption(self, tmp_path: Path) -> None:
        blocks = sample_blocks()
        store = self.make(tmp_path, blocks, verify=True)
        link = next(lnk for lnk, d in blocks.items() if len(d) > 10)
        self.corrupt(store, link)
        with pytest.raises(CorruptBlockError, match=missing_str(link)):
            store.get(link)

    # -- writable backends ----------------------------------------------------------------
    def test_put_then_get_and_idempotent_put(self, tmp_path: Path) -> None:
        store = self.make(tmp_path, {})
        if not self.writable:
            with pytest.raises(ReadOnlyError):
                store.put(b"x")
            return
        link = store.put(b"payload")
        assert link == compute_link(b"payload", RAW)
        assert store.put(b"payload") == link
        assert store.get(link) == b"payload"
        store.put_many([(compute_link(b"a"), b"a"), (compute_link(b"b"), b"b")])
        assert store.get(compute_link(b"b")) == b"b"

    def test_block_above_the_limit_is_refused(self, tmp_path: Path) -> None:
        store = self.make(tmp_path, {}, max_block_size=256 << 10)
        if not self.writable:
            return
        big = b"\0" * ((256 << 10) + 1)
        with pytest.raises(BlockTooLargeError, match="above the limit"):
            store.put(big)
        assert not store.has(compute_link(big))

    def test_read_only_refuses_writes(self, tmp_path: Path) -> None:
        store = self.make(tmp_path, sample_blocks())
        store.read_only = True
        with pytest.raises(ReadOnlyError, match="read-only"):
            store.put(b"nope")


def missing_str(link: Link) -> str:
    from ipldwrite.ipld import link_str

    return link_str(link)
