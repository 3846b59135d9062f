"""Hostile inputs to the CLI, the UnixFS reader and from_unixfs: unsafe names, symlinks in
an export target, enormous declared sizes, deep chains. Refused by name; nothing written
outside the target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.cli import main
from ipldwrite.convert import from_unixfs, to_unixfs
from ipldwrite.dag import write_node
from ipldwrite.dag._nodes import GroupNode
from ipldwrite.dag._tree import MAX_HIERARCHY_DEPTH
from ipldwrite.errors import FormatError, UnsafeEntryNameError
from ipldwrite.ipld import DAG_PB, Link, PBLink, PBNode, encode_pb, link_str
from ipldwrite.store import IPLDStore
from ipldwrite.unixfs import DataType, UnixFSData, encode_unixfs, file_size, read_file
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

GROUP_JSON = b'{"zarr_format":3,"node_type":"group","attributes":{}}'
DIRECTORY = encode_unixfs(UnixFSData(type=DataType.DIRECTORY))


def directory(store: MemoryBlockstore, entries: dict[str, Link]) -> Link:
    links = sorted((PBLink(link, name, 1) for name, link in entries.items()), key=_name)
    return store.put(encode_pb(PBNode(links=tuple(links), data=DIRECTORY)), DAG_PB)


def _name(link: PBLink) -> bytes:
    return (link.name or "").encode()


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "..", ".", "", "a\x00b"])
def test_unsafe_entry_names_are_refused(name: str) -> None:
    store = MemoryBlockstore()
    zarr_json = store.put(GROUP_JSON)
    sub = directory(store, {"zarr.json": zarr_json})
    root = directory(store, {"zarr.json": zarr_json, name: sub})
    with pytest.raises(UnsafeEntryNameError, match="entry named"):
        from_unixfs(root, store)


def test_names_that_differ_only_by_case_stay_two_members() -> None:
    # Zarr keys are case-sensitive and ipldwrite writes no files from a UnixFS tree, so
    # 't' and 'T' (common in climate data) are two variables, never merged or refused.
    ds = xr.Dataset({"t": ("x", np.arange(3.0)), "T": ("x", np.arange(3.0) * 2)})
    store = MemoryBlockstore()
    root = to_ipld_zarr(ds, store)
    back = from_unixfs(to_unixfs(root, store), store)
    assert back == root
    xr.testing.assert_identical(open_ipld_zarr(back, store).load(), ds)


def test_a_hierarchy_10000_groups_deep_is_refused_by_name() -> None:
    store = MemoryBlockstore()
    doc = {"zarr_format": 3, "node_type": "group", "attributes": {}}
    link = write_node(store, GroupNode(doc, {}))
    for _ in range(10_000):
        link = write_node(store, GroupNode(doc, {"g": link}))
    with pytest.raises(FormatError, match=f"deeper than {MAX_HIERARCHY_DEPTH}"):
        list(IPLDStore(store, link).keys_under())
    with pytest.raises(FormatError, match=f"deeper than {MAX_HIERARCHY_DEPTH}"):
        to_unixfs(link, store)


def test_a_unixfs_tree_10000_directories_deep_is_refused_by_name() -> None:
    store = MemoryBlockstore()
    zarr_json = store.put(GROUP_JSON)
    link = directory(store, {"zarr.json": zarr_json})
    for _ in range(10_000):
        link = directory(store, {"zarr.json": zarr_json, "g": link})
    with pytest.raises(FormatError, match=f"deeper than {MAX_HIERARCHY_DEPTH}"):
        from_unixfs(link, store)


def file_node(store: MemoryBlockstore, children: list[tuple[Link, int]]) -> Link:
    meta = UnixFSData(
        type=DataType.FILE,
        filesize=sum(size for _, size in children),
        blocksizes=tuple(size for _, size in children),
    )
    links = tuple(PBLink(link, "", size) for link, size in children)
    return store.put(encode_pb(PBNode(links=links, data=encode_unixfs(meta))), DAG_PB)


def test_an_enormous_declared_file_size_allocates_nothing() -> None:
    store = MemoryBlockstore()
    leaf = store.put(b"x")
    huge = file_node(store, [(leaf, 1 << 60)])
    assert file_size(huge, store.get) == 1 << 60  # what the root says, read from it alone
    with pytest.raises(FormatError, match="parent's blocksizes say"):
        read_file(huge, store.get)
    with pytest.raises(FormatError, match="parent's blocksizes say"):
        read_file(huge, store.get, (1 << 60) - 10)


def test_a_file_chain_10000_deep_reads_without_recursion() -> None:
    store = MemoryBlockstore()
    link = store.put(b"abc")
    for _ in range(10_000):
        link = file_node(store, [(link, 3)])
    assert read_file(link, store.get) == b"abc"


def test_export_car_never_writes_through_a_symlink(tmp_path: Path) -> None:
    store_dir = tmp_path / "bs"
    ds = xr.Dataset({"v": ("x", np.arange(4.0))})
    from ipldwrite.blockstore import DirectoryBlockstore

    root = to_ipld_zarr(ds, DirectoryBlockstore(store_dir))
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "x.car"
    target.symlink_to(outside)
    result = CliRunner().invoke(main, ["export-car", str(root), str(target), "-b", str(store_dir)])
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "precious"  # the link was replaced, not followed
    assert not target.is_symlink()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.car"]


def test_the_cli_refuses_a_traversal_name_inside_a_car(tmp_path: Path) -> None:
    from ipldwrite.car import export_car

    store = MemoryBlockstore()
    zarr_json = store.put(GROUP_JSON)
    root = directory(store, {"zarr.json": zarr_json, "..": directory(store, {})})
    car = tmp_path / "evil.car"
    export_car(root, store, car)
    result = CliRunner().invoke(main, ["from-unixfs", link_str(root), "-b", str(car)])
    assert result.exit_code == 1  # unsafe data in the DAG: a FormatError (table in cli/_errors.py)
    assert "entry named '..'" in result.output
