from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from blockstore_conformance import BlockstoreTests
from ipldwrite.blockstore import Blockstore, DirectoryBlockstore
from ipldwrite.errors import FormatError
from ipldwrite.ipld import Link, compute_link


class TestDirectoryBlockstore(BlockstoreTests):
    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        store = DirectoryBlockstore(tmp_path / "bs", **kwargs)  # type: ignore[arg-type]
        store.put_many(blocks.items())
        return store

    def corrupt(self, store: Blockstore, link: Link) -> None:
        assert isinstance(store, DirectoryBlockstore)
        Path(store._file(link)[1]).write_bytes(b"tampered")


def _write_many(path: str, seed: int) -> None:
    store = DirectoryBlockstore(path)
    for i in range(200):
        store.put(f"block {i % 50}".encode() * 100)  # all processes write the same blocks
    store.put(f"own {seed}".encode())


def test_concurrent_processes_share_one_directory(tmp_path: Path) -> None:
    path = str(tmp_path / "shared")
    DirectoryBlockstore(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = DirectoryBlockstore(path, verify=True)
    links = list(store.iter_links())
    assert len(links) == 54
    for link in links:
        store.get(link)  # verify=True re-hashes every block
    leftovers = [n for _, _, files in os.walk(path) for n in files if n.startswith(".")]
    assert leftovers == []


def test_a_killed_writer_leaves_no_block_under_a_valid_name(tmp_path: Path) -> None:
    store = DirectoryBlockstore(tmp_path / "bs")
    data = b"x" * 1000
    link = compute_link(data)
    shard, _final = store._file(link)
    os.makedirs(shard, exist_ok=True)
    # What a writer killed mid-write leaves behind: a partial temporary file.
    Path(shard, ".1234-1-0.tmp").write_bytes(data[:10])
    assert not store.has(link)
    assert list(store.iter_links()) == []
    store.put(data)
    assert store.get(link) == data


def test_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FormatError, match="not an ipldwrite blockstore"):
        DirectoryBlockstore(tmp_path)


def test_read_only_open_of_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ipldwrite blockstore"):
        DirectoryBlockstore(tmp_path / "nope", read_only=True)
