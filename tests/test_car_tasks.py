"""Per-task CAR mode: every write and merge task writes its own CAR; nothing is shared."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import fsspec
import pytest
import xarray as xr

from cluster_helpers import fail_once
from datasets import climate_cube
from ipldwrite.blockstore import (
    CarSetBlockstore,
    DirectoryBlockstore,
    MemoryBlockstore,
    TaskCarBlockstore,
)
from ipldwrite.car import import_car
from ipldwrite.dask import check_blockstore_reachable
from ipldwrite.errors import ReadOnlyError, UnsafeBlockstoreError
from ipldwrite.ipld import DAG_CBOR, RAW, link_str, to_link
from ipldwrite.ipld._car import iter_sections, read_layout
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr, write_sequential

JS = Path(__file__).resolve().parents[1] / "js"


def lazy_cube(times: int = 24) -> tuple[xr.Dataset, dict[str, Any]]:
    ds = climate_cube(times, 18, 36)
    encoding = {
        str(name): {"chunks": (2, *var.shape[1:])}
        for name, var in ds.data_vars.items()
        if var.dims[:1] == ("time",)
    }
    return ds.chunk({"time": 4}), encoding


def car_contents(directory: Path) -> dict[str, list[bytes]]:
    """CAR file name → the CIDs of its sections; also checks each is named by its root."""
    out = {}
    for path in sorted(directory.glob("*.car")):
        with open(path, "rb") as f:
            layout = read_layout(f)
            assert path.name == f"{link_str(layout.roots[0])}.car"
            assert layout.version == 2
            assert layout.index_offset
            out[path.name] = [s.link.cid_bytes for s in iter_sections(f, layout)]
    return out


def threads_write(ds: xr.Dataset, target: Any, **kwargs: Any) -> Any:
    with dask.config.set(scheduler="threads"):
        return to_ipld_zarr(ds, target, progress=False, **kwargs)


def test_threads_write_one_car_per_task_with_the_directory_store_root(tmp_path: Path) -> None:
    lazy, encoding = lazy_cube()
    directory = tmp_path / "cars"
    root = threads_write(lazy, f"car:{directory}", encoding=encoding, split_every=3)
    expected = to_ipld_zarr(lazy, DirectoryBlockstore(tmp_path / "bs"), encoding=encoding)
    assert (
        root == expected == write_sequential(lazy.compute(), MemoryBlockstore(), encoding=encoding)
    )
    cars = car_contents(directory)
    assert f"{root}.car" in cars
    # Each chunk is stored once, in the CAR of the task that encoded it.
    chunk_counts = Counter(cid for cids in cars.values() for cid in cids if cid[1] == RAW)
    assert set(chunk_counts.values()) == {1}
    # The final CAR holds the merged metadata: every node outside the template's CAR.
    final = set(cars[f"{root}.car"])
    assert all(cid[1] == DAG_CBOR for cid in final)
    # The set of CARs is the dataset: read as one, or imported one by one.
    xr.testing.assert_identical(
        open_ipld_zarr(root, CarSetBlockstore(directory)).load(), lazy.compute()
    )
    xr.testing.assert_identical(open_ipld_zarr(root, f"car:{directory}").load(), lazy.compute())
    imported = MemoryBlockstore()
    for name in cars:
        import_car(directory / name, imported)
    xr.testing.assert_identical(open_ipld_zarr(root, imported).load(), lazy.compute())


def test_a_rerun_rewrites_nothing_and_gives_the_same_root(tmp_path: Path) -> None:
    lazy, encoding = lazy_cube(12)
    directory = tmp_path / "cars"
    root = threads_write(lazy, f"car:{directory}", encoding=encoding)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}
    again = threads_write(lazy, TaskCarBlockstore(directory), encoding=encoding)
    assert again == root
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}
    assert after == before  # content-addressed names: every CAR was already there


def test_tasks_read_only_their_inputs_cars(tmp_path: Path) -> None:
    """A broken, unrelated CAR in the directory does not disturb the write: no task lists it."""
    directory = tmp_path / "cars"
    directory.mkdir()
    (directory / "unrelated.car").write_bytes(b"not a CAR at all")
    lazy, encoding = lazy_cube(12)
    root = threads_write(lazy, f"car:{directory}", encoding=encoding)
    ours = [p for p in directory.glob("*.car") if p.name != "unrelated.car"]
    xr.testing.assert_identical(open_ipld_zarr(root, CarSetBlockstore(ours)).load(), lazy.compute())


def test_any_fsspec_url(tmp_path: Path) -> None:
    url = f"memory://ipldwrite-{uuid.uuid4().hex}/cars"
    lazy, encoding = lazy_cube(8)
    root = threads_write(lazy, f"car:{url}", encoding=encoding)
    assert root == write_sequential(lazy.compute(), MemoryBlockstore(), encoding=encoding)
    names = fsspec.filesystem("memory").ls(url.removeprefix("memory://"), detail=False)
    assert f"{root}.car" in {n.rpartition("/")[2] for n in names}
    xr.testing.assert_identical(open_ipld_zarr(root, f"car:{url}").load(), lazy.compute())
    # An in-memory filesystem is per process: refused with a process-based scheduler.
    with (
        dask.config.set(scheduler="processes"),
        pytest.raises(UnsafeBlockstoreError, match="other processes"),
    ):
        check_blockstore_reachable(TaskCarBlockstore(url))


def test_append_onto_a_dataset_in_the_same_directory(tmp_path: Path) -> None:
    lazy, encoding = lazy_cube(24)
    directory = tmp_path / "cars"
    encoding["time"] = {"chunks": (4,)}
    first = threads_write(lazy.isel(time=slice(0, 12)), f"car:{directory}", encoding=encoding)
    appended = threads_write(
        lazy.isel(time=slice(12, None)), f"car:{directory}", base=first, append_dim="time"
    )
    assert appended == write_sequential(lazy.compute(), MemoryBlockstore(), encoding=encoding)
    xr.testing.assert_identical(
        open_ipld_zarr(appended, CarSetBlockstore(directory)).load(), lazy.compute()
    )


def test_datatrees_and_direct_writes(tmp_path: Path) -> None:
    directory = tmp_path / "cars"
    sub = xr.Dataset({"z": ("k", [1, 2, 3])}, attrs={"note": "child"})
    tree = xr.DataTree.from_dict({"/": climate_cube(4, 3, 4), "/sub": sub})
    root = to_ipld_zarr(tree, f"car:{directory}")
    assert root == to_ipld_zarr(tree, MemoryBlockstore())
    assert (directory / f"{root}.car").exists()
    with pytest.raises(ReadOnlyError, match="one CAR per task"):
        TaskCarBlockstore(directory).put(b"x")


@pytest.mark.slow
def test_process_cluster_needs_no_shared_blockstore(client: Any, tmp_path: Path) -> None:
    lazy, encoding = lazy_cube()
    directory = tmp_path / "cars"
    root = to_ipld_zarr(lazy, f"car:{directory}", client=client, encoding=encoding)
    assert root == threads_write(lazy, DirectoryBlockstore(tmp_path / "bs"), encoding=encoding)
    car_contents(directory)
    xr.testing.assert_identical(
        open_ipld_zarr(root, CarSetBlockstore(directory)).load(), lazy.compute()
    )


@pytest.mark.slow
def test_process_cluster_retry_rewrites_the_same_cars(client: Any, tmp_path: Path) -> None:
    lazy, encoding = lazy_cube()
    expected = write_sequential(lazy.compute(), MemoryBlockstore(), encoding=encoding)
    flaky = lazy.copy()
    flaky["t2m"].data = da.map_blocks(
        fail_once, lazy["t2m"].data, marker_dir=str(tmp_path), victim=(3, 0, 0), dtype="float32"
    )
    directory = tmp_path / "cars"
    root = to_ipld_zarr(flaky, f"car:{directory}", client=client, encoding=encoding, retries=2)
    assert (tmp_path / "failed-once").exists()
    assert root == expected
    assert not [n for n in os.listdir(directory) if n.startswith(".")]  # no temporary left
    clean = threads_write(lazy, f"car:{tmp_path / 'clean'}", encoding=encoding)
    assert clean == root
    assert car_contents(directory) == car_contents(tmp_path / "clean")


@pytest.mark.js
def test_js_reads_the_directory_of_cars_as_one_dag(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@ipld" / "car").is_dir():
        pytest.skip("node or js/node_modules is absent")
    lazy, encoding = lazy_cube(12)
    directory = tmp_path / "cars"
    root = threads_write(lazy, f"car:{directory}", encoding=encoding)
    paths = sorted(str(p) for p in directory.glob("*.car"))
    for path in paths:
        done = subprocess.run(
            [node, str(JS / "node_modules" / "ipfs-car" / "bin.js"), "blocks", path],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [node, str(JS / "carset-verify.mjs"), str(root), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0, report
    assert report["reachable"] == len(
        {c for p in paths for c in car_contents(Path(p).parent)[Path(p).name]}
        & _reachable(root, directory)
    )


def _reachable(root: Any, directory: Path) -> set[bytes]:
    from ipldwrite.ipld import links_of

    store = CarSetBlockstore(directory)
    seen: set[bytes] = set()
    stack = [to_link(root)]
    while stack:
        link = stack.pop()
        if link.cid_bytes in seen:
            continue
        seen.add(link.cid_bytes)
        stack.extend(links_of(link, store.get(link)))
    return seen
