"""Bad input at the format level: clear, specific errors and nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.core.buffer import cpu

from datasets import climate_cube
from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore
from ipldwrite.dag import DatasetReader, write_node
from ipldwrite.dag._nodes import ArrayNode, node_from_ipld
from ipldwrite.errors import BlockTooLargeError, CorruptBlockError, FormatError
from ipldwrite.ipld import DAG_CBOR, DAG_PB, decode, encode, parse_cid_bytes, to_link
from ipldwrite.store import IPLDStore
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr


def buf(data: bytes) -> cpu.Buffer:
    return cpu.Buffer.from_bytes(data)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("notes.txt", b"hello", "neither a zarr.json nor a chunk key"),
        ("zarr.json", b"{not json", "is not valid JSON"),
        ("zarr.json", b'{"zarr_format": 2}', "is not zarr v3 metadata"),
        (".zgroup", b'{"zarr_format": 2}', "neither a zarr.json"),
        ("a/c/99", b"chunk", "is not a chunk key of array 'a'"),
        ("a/c/0/0", b"chunk", "is not a chunk key of array 'a'"),
    ],
)
def test_commit_refuses_what_is_not_a_zarr_hierarchy(key: str, value: bytes, message: str) -> None:
    blockstore = MemoryBlockstore()
    store = IPLDStore(blockstore, read_only=False)
    zarr.create_array(store, name="a", shape=(10,), chunks=(5,), dtype="int32")
    base = store.commit()
    store.set_sync(key, buf(value))
    with pytest.raises(FormatError, match=message):
        store.commit()
    assert store.root == base  # no new root: nothing half-written


def test_a_newer_format_version_asks_for_an_upgrade() -> None:
    blockstore = MemoryBlockstore()
    root = to_link(to_ipld_zarr(climate_cube(2, 3, 4), blockstore))
    node = decode(blockstore.get(root))
    node["v"] = 2
    newer = blockstore.put(encode(node), DAG_CBOR)
    with pytest.raises(FormatError, match="Upgrade ipldwrite"):
        open_ipld_zarr(newer, blockstore)


def test_a_manifest_that_disagrees_with_the_metadata_is_refused() -> None:
    blockstore = MemoryBlockstore()
    root = to_link(to_ipld_zarr(climate_cube(2, 3, 4), blockstore))
    reader = DatasetReader(blockstore, root)
    array = reader.node("t2m")
    assert isinstance(array, ArrayNode)
    value = array.to_ipld()
    value["manifest"]["tiles"] = [[2, 2, 2]]
    tampered = blockstore.put(encode(value), DAG_CBOR)
    with pytest.raises(FormatError, match="do not match the array metadata"):
        node_from_ipld(decode(blockstore.get(tampered)), tampered, "t2m")
    # A manifest node of the wrong length for its tile.
    short = blockstore.put(encode([array.manifest, None]), DAG_CBOR)
    wrong = write_node(blockstore, array.with_manifest(short))
    group = decode(blockstore.get(root))
    group["members"]["t2m"] = wrong
    bad_root = blockstore.put(encode(group), DAG_CBOR)
    with pytest.raises(FormatError, match="has 2 items where the array's tiling needs"):
        open_ipld_zarr(bad_root, blockstore)["t2m"].load()


def test_corrupt_chunk_blocks_are_caught_on_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blockstore = DirectoryBlockstore(tmp_path / "blocks")
    root = to_ipld_zarr(climate_cube(2, 3, 4), blockstore)
    chunk = IPLDStore(blockstore, root)._view().locate("t2m/c/0/0/0")  # type: ignore[union-attr]
    path = blockstore._file(chunk)[1]  # type: ignore[arg-type]
    with open(path, "r+b") as f:
        f.write(b"\xff\xff")
    checked = DirectoryBlockstore(tmp_path / "blocks", verify=True)
    with pytest.raises(CorruptBlockError, match="is corrupt") as info:
        open_ipld_zarr(root, checked)["t2m"].load()
    assert str(chunk.cid_bytes) != str(info.value)  # the message names the CID as a string


def test_metadata_above_the_block_limit_is_refused_with_its_size() -> None:
    ds = xr.Dataset({"a": (("x",), np.arange(3))}, attrs={"blob": "x" * (1 << 20)})
    store = MemoryBlockstore()
    with pytest.raises(BlockTooLargeError, match="above the limit of 1048576"):
        to_ipld_zarr(ds, store)


def test_big_chunks_become_unixfs_files_and_ranges_read_only_what_they_need() -> None:
    store = MemoryBlockstore()
    data = np.random.default_rng(0).random((600, 600))  # one 2.9 MB chunk, incompressible-ish
    ds = xr.Dataset({"big": (("y", "x"), data)})
    root = to_ipld_zarr(ds, store, encoding={"big": {"chunks": (600, 600), "compressors": None}})
    link = IPLDStore(store, root)._view().locate("big/c/0/0")
    assert isinstance(link, type(to_link(root)))
    assert parse_cid_bytes(link.cid_bytes).codec == DAG_PB
    assert all(len(store.get(lnk)) <= 1 << 20 for lnk in store.iter_links())
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)
    # Sharded arrays read inner chunks with byte ranges through the UnixFS file.
    sharded = to_ipld_zarr(
        ds,
        store,
        encoding={"big": {"chunks": (100, 100), "shards": (600, 600), "compressors": None}},
    )
    back = open_ipld_zarr(sharded, store)
    np.testing.assert_array_equal(back["big"][100:200, 300:400].values, data[100:200, 300:400])
