"""A CID never names wrong data: verified reads, errors naming CID and zarr key, repair, gc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from ipldwrite.audit import gc, repair, verify
from ipldwrite.blockstore import Blockstore, CarBlockstore, DirectoryBlockstore, MemoryBlockstore
from ipldwrite.car import export_car, import_car
from ipldwrite.cli import main
from ipldwrite.errors import BlockNotFoundError, CorruptBlockError
from ipldwrite.ipld import DAG_CBOR, RAW, Link, compute_link, link_str, to_link
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

DS = xr.Dataset({"t2m": (("t", "x"), np.arange(40.0).reshape(4, 10))})
ENC = {"t2m": {"chunks": (2, 10)}}


def write(path: Path) -> tuple[DirectoryBlockstore, Any]:
    store = DirectoryBlockstore(path)
    return store, to_ipld_zarr(DS, store, encoding=ENC)


def chunk_files(store: DirectoryBlockstore) -> list[Path]:
    """The raw chunk blocks of t2m (the coordinate-free dataset has no others)."""
    return sorted(Path(store._file(x)[1]) for x in store.iter_links() if x.cid_bytes[1] == RAW)


class FaultyBlockstore(DirectoryBlockstore):
    """Serves a chosen block wrong: other bytes, cut short, or not at all."""

    def __init__(self, path: Path, victim: Link, fault: str, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.victim, self.fault = victim, fault

    def _get(self, link: Link) -> bytes | None:
        data = super()._get(link)
        if link != self.victim or data is None:
            return data
        return {"wrong": data[::-1] + b"!", "truncated": data[: len(data) // 2], "none": None}[
            self.fault
        ]


@pytest.mark.parametrize("fault", ["wrong", "truncated", "none"])
@pytest.mark.parametrize("kind", ["chunk", "manifest"])
def test_a_bad_block_raises_naming_cid_and_key_through_xarray(
    tmp_path: Path, fault: str, kind: str
) -> None:
    _, root = write(tmp_path)
    probe = DirectoryBlockstore(tmp_path)
    codec = RAW if kind == "chunk" else DAG_CBOR
    victims = [x for x in probe.iter_links() if x.cid_bytes[1] == codec]
    # The manifest node: the one dag-cbor block that links chunk blocks only.
    victim = victims[0] if kind == "chunk" else _manifest_node(probe, victims)
    store = FaultyBlockstore(tmp_path, victim, fault)
    expected = BlockNotFoundError if fault == "none" else CorruptBlockError
    with pytest.raises(expected) as caught:
        open_ipld_zarr(root, store).t2m.load()
    assert caught.value.cid == victim
    assert link_str(victim) in str(caught.value)
    assert caught.value.key is not None
    assert caught.value.key.startswith("t2m/c/")
    assert repr(caught.value.key) in str(caught.value)


def _manifest_node(store: Blockstore, nodes: list[Link]) -> Link:
    from ipldwrite.ipld import decode

    for link in nodes:
        value = decode(store.get(link))
        if isinstance(value, list):
            return link
    raise AssertionError("no manifest node")


@pytest.mark.parametrize("damage", ["flip", "empty", "swap"])
def test_damaged_chunk_files_raise_by_default_and_read_unchecked_on_opt_out(
    tmp_path: Path, damage: str
) -> None:
    store, root = write(tmp_path)
    first, second = chunk_files(store)[:2]
    if damage == "flip":
        data = bytearray(first.read_bytes())
        data[-1] ^= 1
        first.write_bytes(bytes(data))
    elif damage == "empty":
        first.write_bytes(b"")
    else:  # another valid block under this block's name
        first.write_bytes(second.read_bytes())
    with pytest.raises(CorruptBlockError, match=r"needed for zarr key 't2m/c/"):
        open_ipld_zarr(root, DirectoryBlockstore(tmp_path)).t2m.load()
    if damage == "empty":  # a 0-byte file is caught even unverified: never a zstd error
        with pytest.raises(CorruptBlockError):
            open_ipld_zarr(root, DirectoryBlockstore(tmp_path, verify=False)).t2m.load()


def test_a_corrupt_block_in_a_car_raises_by_default(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    car = tmp_path / "x.car"
    export_car(root, store, car)
    victim = next(x for x in store.iter_links() if x.cid_bytes[1] == RAW)
    data = store.get(victim)
    blob = bytearray(car.read_bytes())
    at = blob.index(data)
    blob[at] ^= 0xFF
    car.write_bytes(bytes(blob))
    with pytest.raises(CorruptBlockError, match=link_str(victim)):
        open_ipld_zarr(root, CarBlockstore(car)).t2m.load()


def test_put_replaces_a_cut_short_copy_and_import_car_any_damaged_copy(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    car = tmp_path / "good.car"
    export_car(root, store, car)
    first, second = chunk_files(store)[:2]
    first.write_bytes(first.read_bytes()[:5])  # cut short: put sees the size
    to_ipld_zarr(DS, store, encoding=ENC)
    assert verify(root, store).ok
    flipped = bytearray(second.read_bytes())
    flipped[0] ^= 1  # same size: put trusts it, import-car re-hashes it
    second.write_bytes(bytes(flipped))
    assert not verify(root, store).ok
    import_car(car, store)
    assert verify(root, store).ok


def test_repair_from_a_car_replaces_missing_and_corrupt_blocks(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    car = tmp_path / "good.car"
    export_car(root, store, car)
    first, second = chunk_files(store)[:2]
    first.unlink()
    second.write_bytes(b"garbage")
    report = repair(root, store, CarBlockstore(car))
    assert report.ok
    assert len(report.repaired) == 2
    assert all(p.path.startswith("/members/t2m/manifest/root/") for p in report.repaired)
    assert verify(root, store).ok
    np.testing.assert_array_equal(open_ipld_zarr(root, store).t2m.values, DS.t2m.values)


def test_repair_reports_what_the_source_lacks_and_refuses_bad_copies(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    lacking = DirectoryBlockstore(tmp_path / "other")  # holds none of the blocks
    lost, damaged = (
        x for x in sorted(store.iter_links(), key=lambda x: x.cid_bytes) if x.cid_bytes[1] == RAW
    )
    store.remove(lost)
    report = repair(root, store, lacking)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["missing"]
    liar = MemoryBlockstore(verify=False)  # serves wrong bytes under the right CID
    liar._blocks[lost.cid_bytes] = store.get(damaged)
    report = repair(root, store, liar)
    assert [p.kind for p in report.problems] == ["missing"]
    assert not store.has(lost)


def test_cli_repair_then_verify_passes(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    car = tmp_path / "good.car"
    export_car(root, store, car)
    chunk_files(store)[0].write_bytes(b"")
    runner = CliRunner()
    bs = ["-b", str(tmp_path / "bs")]
    assert runner.invoke(main, ["verify", str(root), *bs]).exit_code == 1
    out = runner.invoke(main, ["repair", str(root), "--from", str(car), *bs, "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["repaired"]) == 1
    assert runner.invoke(main, ["verify", str(root), *bs]).exit_code == 0


def test_gc_reports_orphans_and_deletes_only_when_asked(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    orphan = store.put(b"left behind by a crashed write")
    report = gc([root], store)
    assert report.orphans == [orphan]
    assert report.deleted == 0
    assert store.has(orphan)
    out = CliRunner().invoke(main, ["gc", str(root), "-b", str(tmp_path / "bs"), "--delete"])
    assert out.exit_code == 0
    assert "1 orphan blocks" in out.output
    assert "1 deleted" in out.output
    assert not store.has(orphan)
    assert verify(root, store).ok


def test_gc_refuses_to_delete_below_a_missing_node(tmp_path: Path) -> None:
    store, root = write(tmp_path / "bs")
    Path(store._file(to_link(root))[1]).unlink()  # the root node: everything below looks orphaned
    with pytest.raises(BlockNotFoundError, match="not deleting"):
        gc([root], store, delete=True)
    assert len(list(store.iter_links())) > 0


def test_put_block_checks_blocks_given_with_their_link(tmp_path: Path) -> None:
    store = DirectoryBlockstore(tmp_path)
    with pytest.raises(CorruptBlockError):
        store.put_block(compute_link(b"a"), b"b")
    assert not store.has(compute_link(b"a"))
