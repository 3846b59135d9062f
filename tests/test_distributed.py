"""The distributed writer: same root CID whatever the partitioning, scheduler or failures."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from dask.core import get_dependencies
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_helpers import DyingBlockstore, fail_once
from datasets import climate_cube
from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore
from ipldwrite.dag import merge_datasets
from ipldwrite.dask import compute_root, merge_roots
from ipldwrite.errors import (
    ChunkAlignmentError,
    InvalidCIDError,
    MergeConflictError,
    TimestampedCodecWarning,
    UnsafeBlockstoreError,
)
from ipldwrite.ipld import compute_link, link_str, to_link
from ipldwrite.store import IPLDStore, write_region
from ipldwrite.xarray import (
    WriteOptions,
    open_ipld_zarr,
    plan_write,
    to_ipld_zarr,
    write_sequential,
)


def time_chunked(ds: xr.Dataset, zarr_rows: int) -> dict[str, dict[str, Any]]:
    """An encoding that pins zarr chunks to ``zarr_rows`` time steps."""
    return {
        str(name): {"chunks": (zarr_rows, *var.shape[1:])}
        for name, var in ds.data_vars.items()
        if var.dims[:1] == ("time",)
    }


@st.composite
def writes(draw: st.DrawFn) -> tuple[xr.Dataset, dict[str, Any], dict[str, int], int]:
    times = draw(st.integers(1, 20))
    zarr_rows = draw(st.integers(1, 5))
    n_chunks = -(-times // zarr_rows)
    # A random partition of the zarr chunks into Dask chunks (aligned by construction).
    cuts = (
        sorted(draw(st.sets(st.integers(1, n_chunks - 1), max_size=n_chunks - 1)))
        if n_chunks > 1
        else []
    )
    bounds = [0, *cuts, n_chunks]
    dask_rows = tuple(
        min(times, b * zarr_rows) - a * zarr_rows for a, b in itertools.pairwise(bounds)
    )
    lat_chunks = draw(st.sampled_from([2, 3, 6]))
    ds = climate_cube(times, 6, 5, seed=draw(st.integers(0, 1000)))
    encoding = time_chunked(ds, zarr_rows)
    encoding["land"] = {"chunks": (lat_chunks, 5)}
    chunks = {"time": dask_rows, "lat": 6, "lon": 5}
    return ds, encoding, chunks, draw(st.integers(2, 9))


@settings(max_examples=25, deadline=None)
@given(writes())
def test_any_aligned_partitioning_and_fan_in_gives_the_sequential_root(
    case: tuple[xr.Dataset, dict[str, Any], dict[str, Any], int],
) -> None:
    ds, encoding, chunks, split_every = case
    store = MemoryBlockstore()
    expected = write_sequential(ds, store, encoding=encoding)
    with dask.config.set(scheduler="threads"):
        root = to_ipld_zarr(
            ds.chunk(chunks), store, encoding=encoding, split_every=split_every, progress=False
        )
    assert root == expected


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 11), st.integers(0, 2**32))
def test_random_merge_trees_of_partials_give_the_same_root(cuts: int, seed: int) -> None:
    """Partials written block by block as the tasks do, merged in a random tree and order."""
    store = MemoryBlockstore()
    ds = climate_cube(12, 4, 5, seed=seed % 7)
    encoding = time_chunked(ds, 1)
    expected = write_sequential(ds, store, encoding=encoding)
    rng = random.Random(seed)
    bounds = sorted({0, 12, *rng.sample(range(1, 12), cuts)})
    lazy = ds.chunk({"time": tuple(b - a for a, b in itertools.pairwise(bounds))})
    plan = plan_write(lazy, store, encoding=encoding)
    roots = [plan.template]
    for source, path in zip(plan.sources, plan.paths, strict=True):
        offsets = np.cumsum([0, *source.chunks[0]])
        for n, start in enumerate(offsets[:-1]):
            block = source.blocks[n].compute()
            selection = (slice(int(start), int(offsets[n + 1])),) + (slice(None),) * (
                block.ndim - 1
            )
            roots.append(write_region(store, plan.template, path, selection, block))
    while len(roots) > 1:
        rng.shuffle(roots)
        take = rng.randint(2, len(roots))
        roots = [*roots[take:], merge_datasets(store, roots[:take])]
    assert link_str(roots[0]) == str(expected)


def test_the_merge_tree_adds_only_merge_tasks_to_the_write_tasks() -> None:
    """Each first-level merge depends on up to 16 write tasks directly: no per-block task
    in between, so P blocks cost the scheduler about P / 16 + P / 256 + ... extra tasks."""
    ds = climate_cube(40, 4, 5)
    lazy = ds[["t2m"]].chunk({"time": 1})
    plan = plan_write(lazy, MemoryBlockstore(), encoding=time_chunked(ds[["t2m"]], 1))
    tree = plan.merge_tree(split_every=16)
    (optimized,) = dask.base.optimize(tree)
    graph = dict(optimized.__dask_graph__())
    writes = {k for k in graph if k[0].startswith("ipldwrite-write-t2m-")}
    assert len(writes) == 40
    merges = [k for k in graph if k[0].startswith("ipldwrite-merge-")]
    assert len(merges) == 3 + 1  # 40 blocks: 13 + 13 + 14, then the root
    first_level = sorted(k for k in merges if len(k) == 3 and k[1] == 0)
    fan_in = [get_dependencies(graph, key) for key in first_level]
    assert [len(deps) for deps in fan_in] == [13, 13, 14]
    assert set().union(*fan_in) == writes


@pytest.mark.parametrize("split_every", [0, 1, 2.5])
def test_a_fan_in_below_two_is_refused(split_every: Any) -> None:
    with pytest.raises(ValueError, match="split_every must be an integer >= 2"):
        merge_roots(
            [compute_link(b"x")],
            blockstore=MemoryBlockstore(),
            split_every=split_every,
        )


@pytest.mark.slow
def test_merge_roots_by_cid_on_a_process_cluster(client: Any, tmp_path: Path) -> None:
    """Existing partial datasets merged by CID on the workers equal a local merge."""
    store = DirectoryBlockstore(tmp_path / "shared")
    ds = climate_cube(12, 4, 5)
    encoding = time_chunked(ds, 1)
    plan = plan_write(ds.chunk({"time": 1}), store, encoding=encoding)
    t2m = plan.paths.index("t2m")
    roots = [
        write_region(
            store,
            plan.template,
            "t2m",
            (slice(i, i + 1), slice(None), slice(None)),
            plan.sources[t2m][i : i + 1].compute(),
        )
        for i in range(12)
    ]
    merged = compute_root(merge_roots(roots, blockstore=store, split_every=3), client=client)
    assert merged == merge_datasets(store, roots)
    assert merged == merge_datasets(store, list(reversed(roots)))


@pytest.mark.parametrize(
    "t2m_encoding",
    [
        {"chunks": (2, 9, 12), "shards": (4, 18, 36)},
        {"chunks": (2, 9, 12), "compressors": None},
        {"chunks": (2, 9, 12), "compressors": [zarr.codecs.BloscCodec(cname="lz4")]},
        {"chunks": (2, 9, 12), "filters": [zarr.codecs.TransposeCodec(order=(2, 1, 0))]},
        {"chunks": (5, 18, 36), "dtype": "float64", "fill_value": -1.0},  # 5 + 5 + 2
    ],
    ids=["sharded", "uncompressed", "blosc", "transposed", "float64, fill -1, edge chunk"],
)
@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_write_tasks_encode_exactly_as_the_sequential_write(
    t2m_encoding: dict[str, Any], scheduler: str
) -> None:
    """Whatever the codecs, the tasks' chunk bytes are the sequential write's (same root)."""
    ds = climate_cube(12, 18, 36)[["t2m"]]  # other variables would get Dask-chunk defaults
    encoding = {"t2m": t2m_encoding}
    store = MemoryBlockstore()
    expected = write_sequential(ds, store, encoding=encoding)
    rows = 4 if "shards" in t2m_encoding else t2m_encoding["chunks"][0]
    with dask.config.set(scheduler=scheduler):
        root = to_ipld_zarr(ds.chunk({"time": rows}), store, encoding=encoding, progress=False)
    assert root == expected
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)


def test_gzip_is_flagged_because_its_bytes_hold_the_time_of_writing() -> None:
    ds = climate_cube(4, 6, 5)[["t2m"]]
    encoding = {"t2m": {"compressors": [zarr.codecs.GzipCodec(level=1)]}}
    with pytest.warns(TimestampedCodecWarning, match=r"\['t2m'\] use the gzip codec"):
        to_ipld_zarr(ds.chunk({"time": 2}), MemoryBlockstore(), encoding=encoding)


def lazy_cube() -> tuple[xr.Dataset, dict[str, Any]]:
    ds = climate_cube(24, 18, 36)
    return ds.chunk({"time": 4}), time_chunked(ds, 2)


@pytest.mark.slow
def test_process_cluster_threads_and_sequential_agree(client: Any, tmp_path: Path) -> None:
    store = DirectoryBlockstore(tmp_path / "shared")
    lazy, encoding = lazy_cube()
    on_cluster = lazy.pipe(to_ipld_zarr, store, client=client, encoding=encoding)
    with dask.config.set(scheduler="threads"):
        on_threads = to_ipld_zarr(lazy, store, encoding=encoding, progress=False)
    sequential = write_sequential(lazy.compute(), store, encoding=encoding)
    assert on_cluster == on_threads == sequential
    xr.testing.assert_identical(open_ipld_zarr(on_cluster, store).load(), lazy.compute())


@pytest.mark.slow
def test_a_transient_failure_retried_gives_the_same_root(client: Any, tmp_path: Path) -> None:
    store = DirectoryBlockstore(tmp_path / "shared")
    lazy, encoding = lazy_cube()
    expected = write_sequential(lazy.compute(), store, encoding=encoding)
    flaky = lazy.copy()
    flaky["t2m"].data = da.map_blocks(
        fail_once, lazy["t2m"].data, marker_dir=str(tmp_path), victim=(3, 0, 0), dtype="float32"
    )
    root = to_ipld_zarr(flaky, store, client=client, encoding=encoding, retries=2)
    assert (tmp_path / "failed-once").exists()  # the failure did happen
    assert root == expected


@pytest.mark.slow
def test_a_worker_killed_mid_write_gives_the_same_root(client: Any, tmp_path: Path) -> None:
    lazy, encoding = lazy_cube()
    expected = write_sequential(lazy.compute(), MemoryBlockstore(), encoding=encoding)
    marker = tmp_path / "killed"
    # Dies hard after writing a few chunk blocks of some task, leaving that task unfinished.
    store = DyingBlockstore(str(tmp_path / "shared"), str(marker), after=5)
    root = to_ipld_zarr(lazy, store, client=client, encoding=encoding)
    assert marker.exists()  # a worker really died mid-write
    assert str(root) == str(expected)
    clean = DirectoryBlockstore(tmp_path / "shared", verify=True)
    xr.testing.assert_identical(open_ipld_zarr(root, clean).load(), lazy.compute())


@pytest.mark.slow
def test_memory_blockstore_with_a_process_cluster_is_refused_up_front(client: Any) -> None:
    store = MemoryBlockstore()
    lazy, encoding = lazy_cube()
    with pytest.raises(UnsafeBlockstoreError, match="DirectoryBlockstore on a path"):
        to_ipld_zarr(lazy, store, client=client, encoding=encoding)
    assert len(store) == 0  # nothing was written


def test_memory_blockstore_with_the_processes_scheduler_is_refused() -> None:
    lazy, encoding = lazy_cube()
    with (
        dask.config.set(scheduler="processes"),
        pytest.raises(UnsafeBlockstoreError, match="other processes"),
    ):
        to_ipld_zarr(lazy, MemoryBlockstore(), encoding=encoding)


def test_straddling_dask_chunks_are_refused_before_anything_is_written() -> None:
    store = MemoryBlockstore()
    ds = climate_cube(12, 4, 5)
    encoding = time_chunked(ds, 4)
    with pytest.raises(ChunkAlignmentError, match="overlap multiple Dask chunks") as info:
        to_ipld_zarr(ds.chunk({"time": 3}), store, encoding=encoding)
    assert "align_chunks=True" in str(info.value)
    # On request, the writer rechunks instead, and the content is the same.
    aligned = to_ipld_zarr(ds.chunk({"time": 3}), store, encoding=encoding, align_chunks=True)
    assert aligned == write_sequential(ds, store, encoding=encoding)


def test_compute_false_returns_a_dask_object_that_computes_to_the_root() -> None:
    store = MemoryBlockstore()
    lazy, encoding = lazy_cube()
    pending = to_ipld_zarr(lazy, store, encoding=encoding, compute=False)
    assert dask.is_dask_collection(pending)
    assert pending.compute() == write_sequential(lazy.compute(), store, encoding=encoding)


def test_eager_dataarrays_and_mixed_datasets() -> None:
    store = MemoryBlockstore()
    ds = climate_cube(6, 4, 5)
    enc = time_chunked(ds, 2)  # pinned: otherwise Dask chunks would choose the zarr chunks
    mixed = ds.assign(t2m=ds["t2m"].chunk({"time": 2}))
    expected = write_sequential(ds, store, encoding=enc)
    assert to_ipld_zarr(mixed, store, encoding=enc) == expected
    assert to_ipld_zarr(ds, store, encoding=enc) == expected
    wind = {"wind": enc["wind"]}
    da_root = to_ipld_zarr(ds["wind"].chunk({"time": 4}), store, encoding=wind)
    assert da_root == write_sequential(ds["wind"], store, encoding=wind)


def test_progress_is_shown_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    lazy, encoding = lazy_cube()
    with dask.config.set(scheduler="threads"):
        to_ipld_zarr(lazy, MemoryBlockstore(), encoding=encoding, progress=True)
    assert "Completed" in capsys.readouterr().err  # progress goes to stderr, never into output


def test_conflicting_partials_raise_naming_array_chunk_and_cids() -> None:
    store = MemoryBlockstore()
    ds = climate_cube(4, 4, 5)
    encoding = time_chunked(ds, 1)
    plan = plan_write(ds.chunk({"time": 1}), store, encoding=encoding)
    t2m = plan.paths.index("t2m")
    values = plan.sources[t2m][:1].compute()
    sel = (slice(0, 1), slice(None), slice(None))
    one = write_region(store, plan.template, "t2m", sel, values)
    same = write_region(store, plan.template, "t2m", sel, values)
    other = write_region(store, plan.template, "t2m", sel, values + 1)
    assert merge_datasets(store, [one, same]) == one  # an identical retry merges silently
    with pytest.raises(MergeConflictError, match=r"array /t2m: chunk \(0, 0, 0\) differs") as info:
        merge_datasets(store, [one, other])
    chunk_one = IPLDStore(store, one)._view().locate("t2m/c/0/0/0")  # type: ignore[union-attr]
    chunk_other = IPLDStore(store, other)._view().locate("t2m/c/0/0/0")  # type: ignore[union-attr]
    assert link_str(chunk_one) in str(info.value)  # type: ignore[arg-type]
    assert link_str(chunk_other) in str(info.value)  # type: ignore[arg-type]
    # Different metadata for one array is a conflict too.
    renamed = write_sequential(ds.assign_attrs(title="other"), store, encoding=encoding)
    with pytest.raises(MergeConflictError, match=r"different zarr\.json metadata"):
        merge_datasets(store, [to_link(renamed), one])


def test_write_options_are_checked_once_and_give_the_same_plan() -> None:
    """plan_write takes the options as one WriteOptions or as its keyword arguments."""
    store = MemoryBlockstore()
    ds = climate_cube(4, 4, 5)
    encoding = time_chunked(ds, 1)
    root = write_sequential(ds, store, encoding=encoding)
    options = WriteOptions(encoding=encoding, base=str(root))
    assert options.base_link == to_link(root)
    assert options.mode == "a"  # to_zarr's default on an existing store
    assert WriteOptions().mode == "w"
    assert WriteOptions(base=root, region="auto").mode == "r+"
    with pytest.raises(InvalidCIDError):
        WriteOptions(base="not a cid")
    lazy = ds.chunk({"time": 1})
    one = plan_write(lazy, store, WriteOptions(encoding=encoding))
    other = plan_write(lazy, store, encoding=encoding)
    assert one.template == other.template
    with pytest.raises(TypeError, match="not both"):
        plan_write(lazy, store, WriteOptions(), encoding=encoding)
