"""Everything ``to_zarr`` writes, ``to_ipld_zarr`` writes: CF structures, dtype by dtype."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from cf_strategies import CF_WARNING_FILTERS
from ipldwrite.blockstore import MemoryBlockstore
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
