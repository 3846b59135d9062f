"""Sharded CAR export and CarSetBlockstore: many CARs as one blockstore."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
import xarray as xr

from blockstore_conformance import BlockstoreTests, sample_blocks
from datasets import climate_cube
from ipldwrite.blockstore import Blockstore, CarSetBlockstore, MemoryBlockstore
from ipldwrite.car import car_cid, export_car, export_car_shards, verify_car
from ipldwrite.errors import (
    BlockNotFoundError,
    CarError,
    CorruptBlockError,
    TruncatedCarError,
)
from ipldwrite.ipld import DAG_CBOR, Link, compute_link, encode, link_str, to_link
from ipldwrite.ipld._car import CarWriter, iter_sections, read_layout
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

JS = Path(__file__).resolve().parents[1] / "js"
KIB = 1 << 10


def write_cars(directory: Path, blocks: dict[Link, bytes], parts: int = 3) -> list[Path]:
    """``blocks`` spread round-robin over ``parts`` CARv2 files (CARv1 for the last)."""
    directory.mkdir(parents=True, exist_ok=True)
    items = list(blocks.items())
    paths = []
    for i in range(parts):
        path = directory / f"part{i}.car"
        root = items[0][0] if items else compute_link(b"")
        with open(path, "wb") as f:
            writer = CarWriter(f, [root], version=1 if i == parts - 1 else 2)
            for link, data in items[i::parts]:
                writer.add(link, data)
            writer.finish()
        paths.append(path)
    return paths


def sections(path: Path) -> list[Any]:
    with open(path, "rb") as f:
        return list(iter_sections(f, read_layout(f)))


class TestCarSetBlockstore(BlockstoreTests):
    writable: ClassVar[bool] = False

    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        write_cars(tmp_path / "cars", blocks)
        return CarSetBlockstore(tmp_path / "cars", verify=bool(kwargs.get("verify", False)))

    def corrupt(self, store: Blockstore, link: Link) -> None:
        assert isinstance(store, CarSetBlockstore)
        for path in store.paths:
            for section in sections(Path(path)):
                if section.link == link:
                    with open(path, "r+b") as f:
                        f.seek(section.data_offset)
                        f.write(b"\xff")


class TestCarSetBlockstoreOverFsspec(BlockstoreTests):
    """The same contract through fsspec (an in-memory filesystem stands in for S3)."""

    writable: ClassVar[bool] = False

    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        fs = fsspec.filesystem("memory")
        root = f"/cars-{uuid.uuid4().hex}"
        for path in write_cars(tmp_path / "cars", blocks):
            fs.pipe(f"{root}/{path.name}", path.read_bytes())
        return CarSetBlockstore(f"memory://{root}", verify=bool(kwargs.get("verify", False)))

    def corrupt(self, store: Blockstore, link: Link) -> None:
        assert isinstance(store, CarSetBlockstore)
        fs = fsspec.filesystem("memory")
        for path in store.paths:
            data = bytearray(fs.cat(path))
            at = bytes(data).find(link.cid_bytes)
            if at >= 0:
                data[at + len(link.cid_bytes)] ^= 0xFF
                fs.pipe(path, bytes(data))


def test_carset_reads_lists_and_finds_new_cars(tmp_path: Path) -> None:
    blocks = sample_blocks()
    paths = write_cars(tmp_path / "d", blocks)
    by_list = CarSetBlockstore(paths)
    assert by_list.paths == [str(p) for p in paths]
    first = next(iter(blocks))
    assert by_list.where(first) == 0
    assert by_list.roots == [first]
    # A directory store picks up a CAR added after it was opened.
    directory = CarSetBlockstore(tmp_path / "d")
    assert len(directory.paths) == 3
    extra = b"late arrival"
    write_cars(tmp_path / "late", {compute_link(extra): extra}, parts=1)[0].rename(
        tmp_path / "d" / "zlate.car"
    )
    assert directory.get(compute_link(extra)) == extra
    assert len(directory.paths) == 4
    # Temporary files of writers in progress are not CARs.
    (tmp_path / "d" / ".x.car").write_bytes(b"partial")
    assert not directory.refresh()


def test_carset_reads_a_million_block_index_compactly(tmp_path: Path) -> None:
    """The lookup table is numpy arrays (~20 bytes a block), not a dict of CIDs."""
    blocks = {compute_link(i.to_bytes(4, "big")): i.to_bytes(4, "big") for i in range(50_000)}
    write_cars(tmp_path / "d", blocks, parts=2)
    store = CarSetBlockstore(tmp_path / "d")
    some = list(blocks)[::997]
    assert [store.get(x) for x in some] == [blocks[x] for x in some]
    table = store._table
    assert table is not None
    assert table.keys.nbytes + table.cars.nbytes + table.offsets.nbytes == 50_000 * 20


@pytest.mark.parametrize("how", ["truncated", "garbage-offset", "other-block"])
def test_carset_bad_input_is_specific(tmp_path: Path, how: str) -> None:
    blocks = sample_blocks()
    paths = write_cars(tmp_path / "d", blocks, parts=2)
    v2 = paths[0]
    raw = bytearray(v2.read_bytes())
    first = sections(v2)[0]
    second = sections(v2)[1]
    if how == "truncated":
        v2.write_bytes(bytes(raw[: len(raw) // 2]))
        with pytest.raises(TruncatedCarError, match=str(v2)):
            CarSetBlockstore(tmp_path / "d").get(first.link)
        return
    # Rewrite the index entry of the first block: into the middle of nowhere, or at the
    # second block's section.
    with open(v2, "rb") as f:
        layout = read_layout(f)
    relative = (first.offset - layout.payload_offset).to_bytes(8, "little")
    index_at = layout.index_offset or 0
    digest = first.link.cid_bytes[4:]
    at = bytes(raw).index(digest + relative, index_at)
    target = first.offset + 3 if how == "garbage-offset" else second.offset
    raw[at + len(digest) : at + len(digest) + 8] = (target - layout.payload_offset).to_bytes(
        8, "little"
    )
    v2.write_bytes(bytes(raw))
    with pytest.raises(CarError, match="wrong index") as info:
        CarSetBlockstore(tmp_path / "d").get(first.link)
    assert str(v2) in str(info.value)
    assert link_str(first.link) in str(info.value)


def test_carset_missing_and_corrupt_blocks(tmp_path: Path) -> None:
    blocks = sample_blocks()
    write_cars(tmp_path / "d", blocks)
    store = CarSetBlockstore(tmp_path / "d", verify=True)
    with pytest.raises(BlockNotFoundError, match=link_str(compute_link(b"nope"))):
        store.get(compute_link(b"nope"))
    link = next(x for x, d in blocks.items() if len(d) > 100)
    TestCarSetBlockstore().corrupt(store, link)
    with pytest.raises(CorruptBlockError, match=link_str(link)):
        store.get(link)


# -- sharded export -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset() -> tuple[MemoryBlockstore, Link, xr.Dataset]:
    store = MemoryBlockstore()
    ds = climate_cube(48, 18, 36)
    encoding = {"t2m": {"chunks": (1, 18, 36)}, "wind": {"chunks": (1, 3, 18, 36)}}
    return store, to_link(to_ipld_zarr(ds, store, encoding=encoding)), ds


def all_blocks(store: MemoryBlockstore, root: Link, tmp: Path) -> set[bytes]:
    path = tmp / "whole.car"
    export_car(root, store, path)
    return {s.link.cid_bytes for s in sections(path)}


@pytest.mark.parametrize("max_bytes", [256 * KIB, 1 << 20, 64 << 20])
def test_shards_are_bounded_disjoint_complete_and_readable(
    dataset: tuple[MemoryBlockstore, Link, xr.Dataset], tmp_path: Path, max_bytes: int
) -> None:
    store, root, ds = dataset
    summary = export_car_shards(root, store, tmp_path / "out", max_bytes=max_bytes)
    assert summary.root_car.name == f"{link_str(root)}.car"
    seen: list[bytes] = []
    for path, size in zip(summary.files, summary.sizes, strict=True):
        assert path.parent == (tmp_path / "out").resolve()
        assert os.path.getsize(path) == size <= max_bytes
        with open(path, "rb") as f:
            layout = read_layout(f)
        assert layout.version == 2
        assert layout.index_offset
        assert layout.roots == (root,)
        report = verify_car(path)
        assert not report.corrupt
        assert not report.index_errors
        assert not report.duplicates
        seen += [s.link.cid_bytes for s in sections(path)]
    for path in summary.shards:  # shards are named by their content: the CAR's own CID
        digest = hashlib.sha256(path.read_bytes()).digest()
        assert path.name == f"{link_str(car_cid(digest))}.car"
    assert len(seen) == len(set(seen)) == summary.blocks  # no block in two files
    assert set(seen) == all_blocks(store, root, tmp_path)
    root_car = {s.link.cid_bytes for s in sections(summary.root_car)}
    nodes = {x for x in seen if x[1] == DAG_CBOR}
    assert root_car == nodes  # the metadata fits: it is all in the root CAR, and only it
    assert (len(summary.shards) > 1) == (summary.data_bytes > max_bytes)
    carset = CarSetBlockstore(tmp_path / "out")
    xr.testing.assert_identical(open_ipld_zarr(root, carset).load(), ds)
    clone = pickle.loads(pickle.dumps(carset))
    xr.testing.assert_identical(open_ipld_zarr(root, clone).load(), ds)


def test_export_is_deterministic(
    dataset: tuple[MemoryBlockstore, Link, xr.Dataset], tmp_path: Path
) -> None:
    store, root, _ = dataset
    one = export_car_shards(root, store, tmp_path / "a", max_bytes=256 * KIB)
    two = export_car_shards(root, store, tmp_path / "b", max_bytes=256 * KIB)
    assert [p.name for p in one.files] == [p.name for p in two.files]
    for a, b in zip(one.files, two.files, strict=True):
        assert a.read_bytes() == b.read_bytes()
    again = export_car_shards(root, store, tmp_path / "a", max_bytes=256 * KIB)  # idempotent
    assert sorted(os.listdir(tmp_path / "a")) == sorted(p.name for p in again.files)


def test_metadata_beyond_max_bytes_spills_into_shards(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    ds = xr.Dataset({f"v{i}": ("x", np.arange(3, dtype="int8") + i) for i in range(40)})
    root = to_link(to_ipld_zarr(ds, store))
    summary = export_car_shards(root, store, tmp_path / "out", max_bytes=8 * KIB)
    assert all(size <= 8 * KIB for size in summary.sizes)
    in_shards = {s.link.cid_bytes[1] for p in summary.shards for s in sections(p)}
    assert DAG_CBOR in in_shards
    xr.testing.assert_identical(open_ipld_zarr(root, CarSetBlockstore(tmp_path / "out")).load(), ds)


def test_bad_exports_leave_nothing_behind(
    dataset: tuple[MemoryBlockstore, Link, xr.Dataset], tmp_path: Path
) -> None:
    store, root, _ = dataset
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="too small for block"):
        export_car_shards(root, store, out, max_bytes=16 * KIB)
    assert os.listdir(out) == []
    with pytest.raises(ValueError, match="at least 4 KiB"):
        export_car_shards(root, store, out, max_bytes=100)
    partial = MemoryBlockstore()
    # Everything but one chunk: the export fails on the missing block and removes its files.
    whole = tmp_path / "whole.car"
    export_car(root, store, whole)
    victims = [s.link for s in sections(whole) if s.link.cid_bytes[1] != DAG_CBOR]
    for section in sections(whole):
        if section.link != victims[-1]:
            partial.put_block(section.link, store.get(section.link))
    with pytest.raises(BlockNotFoundError, match=link_str(victims[-1])):
        export_car_shards(root, partial, out, max_bytes=256 * KIB)
    assert os.listdir(out) == []
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        export_car_shards(root, store, tmp_path / "file")


def test_names_cannot_leave_the_directory(tmp_path: Path) -> None:
    from ipldwrite.car._shards import _target

    with pytest.raises(ValueError, match="not a CAR name"):
        _target(tmp_path.resolve(), "../bafyx.car")
    with pytest.raises(ValueError, match="not a CAR name"):
        _target(tmp_path.resolve(), "bafy/x.car")
    assert _target(tmp_path.resolve(), "bafyabc.car") == tmp_path.resolve() / "bafyabc.car"


# -- JS ---------------------------------------------------------------------------------------


def js(node: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, *map(str, args)], cwd=JS, capture_output=True, text=True, timeout=300, check=False
    )


def carset_verify(node: str, root: Link, paths: Iterable[Path | str]) -> dict[str, Any]:
    done = js(node, JS / "carset-verify.mjs", link_str(root), *paths)
    report: dict[str, Any] = json.loads(done.stdout)
    report["exit"] = done.returncode
    return report


@pytest.mark.js
def test_js_reads_the_shards_as_one_dag(
    node: str, dataset: tuple[MemoryBlockstore, Link, xr.Dataset], tmp_path: Path
) -> None:
    store, root, _ = dataset
    summary = export_car_shards(root, store, tmp_path / "out", max_bytes=256 * KIB)
    for path in summary.files:
        blocks = js(node, JS / "node_modules" / "ipfs-car" / "bin.js", "blocks", path)
        assert blocks.returncode == 0, blocks.stderr
        assert blocks.stdout.split() == [link_str(s.link) for s in sections(path)]
    report = carset_verify(node, root, summary.files)
    assert report["exit"] == 0, report
    assert report["reachable"] == summary.blocks
    # Any one shard alone is missing blocks: the check does look.
    alone = carset_verify(node, root, [summary.root_car])
    assert alone["exit"] == 1
    assert alone["missing"]


@pytest.mark.js
def test_js_canonical_check_allows_only_the_int_float_conflation(node: str, tmp_path: Path) -> None:
    store = MemoryBlockstore()
    floaty = store.put(encode({"valid_min": 0.0, "x": 1.5}), DAG_CBOR)
    export_car(floaty, store, tmp_path / "ok.car")
    assert carset_verify(node, floaty, [tmp_path / "ok.car"])["exit"] == 0
    # 0.0 as a 16-bit float is valid CBOR but not DAG-CBOR's canonical form.
    half = b"\xa1\x69valid_min\xf9\x00\x00"
    link = compute_link(half, DAG_CBOR)
    with open(tmp_path / "bad.car", "wb") as f:
        writer = CarWriter(f, [link], version=1)
        writer.add(link, half)
        writer.finish()
    report = carset_verify(node, link, [tmp_path / "bad.car"])
    assert report["exit"] == 1
    assert report["noncanonical"] == [link_str(link)]
