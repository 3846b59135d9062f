"""Everything ``to_zarr`` writes, ``to_ipld_zarr`` writes: CF structures, dtype by dtype."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr

from cf_strategies import CF_WARNING_FILTERS
from datasets import climate_cube
from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore
from ipldwrite.dag import merge_datasets
from ipldwrite.errors import MergeConflictError
from ipldwrite.ipld import to_link
from ipldwrite.store import partials_base, write_region
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr
from test_xarray_roundtrip import assert_same_as_plain_zarr

DTYPES = ["f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "bool", "c8", "c16"]
DTYPES += ["M8[ns]", "m8[ns]", "O", "U4", "S3"]


def scalar(dtype: str) -> Any:
    if dtype == "O":
        return np.array("abc", dtype=object)
    if dtype.startswith("S"):
        return np.array(b"ab", dtype=dtype)
    if dtype.startswith("U"):
        return np.array("xy", dtype=dtype)
    if dtype.startswith("M"):
        return np.array("2000-01-01T06", dtype=dtype)
    if dtype.startswith("m"):
        return np.array(3600 * 10**9, dtype=dtype)
    return np.array(1, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@CF_WARNING_FILTERS[0]
@CF_WARNING_FILTERS[1]
def test_zero_dimensional_variables_of_every_dtype(
    dtype: str, chunked: bool, tmp_path: Path
) -> None:
    """A 0-d data variable and a scalar coordinate (one chunk, key ``c``)."""
    value = scalar(dtype)
    ds = xr.Dataset({"p": ((), value)}, coords={"height": value})
    ds = ds.chunk() if chunked else ds
    actual = assert_same_as_plain_zarr(ds, tmp_path)
    xr.testing.assert_identical(actual.load(), ds.load())


def test_scalar_float_dataset_from_the_issue() -> None:
    store = MemoryBlockstore()
    ds = xr.Dataset({"p": ((), 3.0)})
    root = to_ipld_zarr(ds, store)
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)


def pinned(ds: xr.Dataset, rows: int) -> dict[str, dict[str, Any]]:
    """Zarr chunks of ``rows`` time steps for the data variables along time."""
    return {
        str(v): {"chunks": (rows, *ds[v].shape[1:])} for v in ds.data_vars if "time" in ds[v].dims
    }


@pytest.mark.parametrize("chunks", [None, 2, 4], ids=["numpy", "dask-2", "dask-4"])
def test_region_overwrite_gives_the_single_write_root(chunks: int | None) -> None:
    """Overwriting existing chunks: the new chunks win over the base's (no conflict)."""
    store = MemoryBlockstore()
    ds = climate_cube(12, 4, 5)
    enc = pinned(ds, 2)
    base = to_ipld_zarr(ds, store, encoding=enc)
    final = ds.copy(deep=True)
    final["t2m"][2:10] = final["t2m"][2:10] + 1
    final["precip"][2:10] = np.nan  # all-fill chunks: deleted, as a fresh write never has them
    region = final[["t2m", "precip"]].isel(time=slice(2, 10)).drop_vars(["time", "lat", "lon"])
    region = region if chunks is None else region.chunk({"time": chunks})
    with dask.config.set(scheduler="threads"):
        root = to_ipld_zarr(region, store, base=base, region={"time": slice(2, 10)})
    assert root == to_ipld_zarr(final, store, encoding=enc)
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), final)


def test_a_region_overwrite_reads_the_chunks_it_fills_partly() -> None:
    """A region that covers chunks partly (safe_chunks=False): the base's values stay."""
    store = MemoryBlockstore()
    ds = climate_cube(12, 4, 5)[["t2m"]]
    enc = pinned(ds, 4)
    base = to_ipld_zarr(ds, store, encoding=enc)
    final = ds.copy(deep=True)
    final["t2m"][3:9] = -1.0
    region = final.isel(time=slice(3, 9)).drop_vars(["time", "lat", "lon"]).chunk({"time": 6})
    with dask.config.set(scheduler="threads"):
        root = to_ipld_zarr(
            region, store, base=base, region={"time": slice(3, 9)}, safe_chunks=False
        )
    assert root == to_ipld_zarr(final, store, encoding=enc)


@pytest.mark.parametrize("align_chunks", [False, True])
@pytest.mark.parametrize("chunks", [None, 3, 5], ids=["numpy", "dask-3", "dask-5"])
def test_append_gives_the_single_write_root(chunks: int | None, align_chunks: bool) -> None:
    """Appending onto a partly filled last chunk, Dask-backed or not: the single write's
    root, including the numpy-backed coordinates (re-chunked as a single write picks)."""
    store = MemoryBlockstore()
    ds = climate_cube(12, 4, 5)
    enc = pinned(ds, 2)
    first = to_ipld_zarr(ds.isel(time=slice(0, 7)), store, encoding=enc)
    tail = ds.isel(time=slice(7, None))
    tail = tail if chunks is None else tail.chunk({"time": chunks})
    with dask.config.set(scheduler="threads"):
        root = to_ipld_zarr(tail, store, base=first, append_dim="time", align_chunks=align_chunks)
    assert root == to_ipld_zarr(ds, store, encoding=enc)
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)


def test_append_of_numpy_variables_without_encoding_chunks(tmp_path: Path) -> None:
    """Numpy-backed variables chunked by zarr's automatic rule (several chunks here) get
    that rule's chunks for the appended shape, as a single ``to_zarr`` gives them."""
    ds = xr.Dataset(
        {"v": (("time", "x"), np.arange(300 * 400, dtype="f8").reshape(300, 400))},
        coords={"time": np.arange(300), "x": np.arange(400)},
    )
    store = MemoryBlockstore()
    first = to_ipld_zarr(ds.isel(time=slice(0, 170)), store)
    root = to_ipld_zarr(ds.isel(time=slice(170, None)), store, base=first, append_dim="time")
    single = assert_same_as_plain_zarr(ds, tmp_path)
    assert single["v"].encoding["chunks"] == (150, 200)  # zarr's choice for (300, 400) f8
    assert open_ipld_zarr(first, store)["v"].encoding["chunks"] == (85, 400)  # for (170, 400)
    assert root == to_ipld_zarr(ds, store)


def test_append_and_region_writes_keep_scalar_coordinates() -> None:
    """A 0-d array rewritten on top of a base (an append writes every variable again)."""
    store = MemoryBlockstore()
    ds = climate_cube(6, 3, 4)[["t2m"]].assign_coords(height=2.0, label="surface")
    enc = pinned(ds, 2)
    first = to_ipld_zarr(ds.isel(time=slice(0, 4)), store, encoding=enc)
    root = to_ipld_zarr(ds.isel(time=slice(4, None)), store, base=first, append_dim="time")
    assert root == to_ipld_zarr(ds, store, encoding=enc)
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)


def test_dask_backed_size_zero_dimensions() -> None:
    """Size-0 variables are written as ``to_zarr`` writes them (it loads them first):
    no zarr chunk of size 0, and the same metadata whatever the Dask chunks."""
    ds = xr.Dataset(
        {
            "bounds": (("time", "bnds"), np.zeros((0, 2), "M8[ns]")),
            "v": (("time", "lat"), np.zeros((0, 3), "f4")),
        },
        coords={"time": np.zeros(0, "M8[ns]")},
    )
    store = MemoryBlockstore()
    expected = to_ipld_zarr(ds, store)
    for chunks in ({"bnds": 1}, {"bnds": 2, "lat": 1}, {}):
        with dask.config.set(scheduler="threads"):
            assert to_ipld_zarr(ds.chunk(chunks), store) == expected
    xr.testing.assert_identical(open_ipld_zarr(expected, store).load(), ds)


def test_two_tasks_overwriting_one_chunk_differently_still_conflict() -> None:
    """The base's chunks give way to a write's; two writes of one chunk do not."""
    store = MemoryBlockstore()
    ds = climate_cube(4, 4, 5)[["t2m"]]
    template = to_link(to_ipld_zarr(ds, store, encoding=pinned(ds, 2)))
    region = (slice(0, 2), slice(None), slice(None))
    base = partials_base(store, template, [("t2m", region)])
    assert base != template
    values = ds["t2m"].values[:2]
    one = write_region(store, template, "t2m", region, values + 1, base=base)
    same = write_region(store, template, "t2m", region, values + 1, base=base)
    other = write_region(store, template, "t2m", region, values + 2, base=base)
    assert merge_datasets(store, [one, same]) == one
    with pytest.raises(MergeConflictError, match=r"chunk \(0, 0, 0\) differs"):
        merge_datasets(store, [one, other])
    # Written on the template itself, the overwrite would clash with the base's chunk.
    untouched = write_region(store, template, "t2m", (slice(2, 4), *region[1:]), values)
    with pytest.raises(MergeConflictError):
        merge_datasets(store, [one, untouched])


@pytest.mark.slow
def test_region_overwrite_and_append_on_the_process_cluster(client: Any, tmp_path: Path) -> None:
    store = DirectoryBlockstore(tmp_path / "shared")
    ds = climate_cube(12, 4, 5)
    enc = pinned(ds, 2)
    final = ds.copy(deep=True)
    final["t2m"][2:10] = final["t2m"][2:10] + 1
    base = to_ipld_zarr(ds, store, encoding=enc)
    region = final[["t2m"]].isel(time=slice(2, 10)).drop_vars(["time", "lat", "lon"])
    root = to_ipld_zarr(
        region.chunk({"time": 2}), store, base=base, region={"time": slice(2, 10)}, client=client
    )
    assert root == to_ipld_zarr(final, store, encoding=enc)
    first = to_ipld_zarr(ds.isel(time=slice(0, 7)), store, encoding=enc)
    tail = ds.isel(time=slice(7, None)).chunk({"time": 3})
    appended = to_ipld_zarr(
        tail, store, base=first, append_dim="time", align_chunks=True, client=client
    )
    assert appended == to_ipld_zarr(ds, store, encoding=enc)
