"""Round trips through xarray: values, attributes and encodings come back identical."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from multiformats import CID
from zarr.core.sync import sync

from conftest import SHARED_DATA
from datasets import climate_cube, eraint_path
from ipldwrite.blockstore import Blockstore, DirectoryBlockstore, MemoryBlockstore
from ipldwrite.errors import BlockNotFoundError, InvalidCIDError
from ipldwrite.store import IPLDStore
from ipldwrite.xarray import open_ipld_datatree, open_ipld_zarr, to_ipld_zarr

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "eraint_uvz.nc").exists(), reason="../shared/data is not on this machine"
)
# Packed int16 variables of the ERA-Interim file carry a NaN _FillValue that xarray itself
# warns about on open; that is the file's business, not ours.
file_warnings = pytest.mark.filterwarnings("ignore::xarray.SerializationWarning")


def _comparable(value: object) -> object:
    """Encoding values with NaN made comparable (NaN != NaN would hide real equality)."""
    if isinstance(value, float | np.floating) and np.isnan(value):
        return "NaN"
    if isinstance(value, np.generic):
        return value.item()
    return value


def encodings(ds: xr.Dataset) -> dict[str, dict[str, object]]:
    return {
        name: {k: _comparable(v) for k, v in var.encoding.items()}
        for name, var in ds.variables.items()
    }


def assert_same_as_plain_zarr(ds: xr.Dataset, tmp_path: Path, **kwargs: object) -> xr.Dataset:
    """Write ``ds`` both ways; the IPLD copy must read back exactly like the directory copy,
    and serve byte-identical zarr keys (metadata included)."""
    blockstore = DirectoryBlockstore(tmp_path / "blocks")
    root = to_ipld_zarr(ds, blockstore, **kwargs)  # type: ignore[arg-type]
    plain = tmp_path / "plain.zarr"
    ds.to_zarr(plain, zarr_format=3, consolidated=False, mode="w", **kwargs)  # type: ignore[call-overload]
    expected = xr.open_zarr(plain, consolidated=False)
    actual = open_ipld_zarr(root, blockstore)
    xr.testing.assert_identical(actual.load(), expected.load())
    assert encodings(actual) == encodings(expected)
    assert_serves_the_same_keys(blockstore, root, plain)
    return actual


def assert_serves_the_same_keys(blockstore: Blockstore, root: CID, plain: Path) -> None:
    """The dataset at ``root`` lists exactly the files of the zarr directory ``plain`` and
    serves each one byte for byte (metadata included)."""
    store = IPLDStore(blockstore, root)
    files = sorted(str(p.relative_to(plain)) for p in plain.rglob("*") if p.is_file())

    async def listed() -> list[str]:
        return sorted([k async for k in store.list()])

    assert sync(listed()) == files
    for name in files:
        got = store.get_sync(name)
        assert got is not None, name
        assert got.to_bytes() == (plain / name).read_bytes(), name


@needs_shared
@file_warnings
def test_eraint_roundtrip_is_identical(tmp_path: Path) -> None:
    ds = xr.open_dataset(eraint_path())
    actual = assert_same_as_plain_zarr(ds, tmp_path)
    xr.testing.assert_identical(actual.load(), ds.load())
    for name in ("z", "u", "v"):
        for key in ("dtype", "scale_factor", "add_offset"):
            assert actual[name].encoding[key] == ds[name].encoding[key]


def test_generated_cube_roundtrip(tmp_path: Path) -> None:
    ds = climate_cube()
    actual = assert_same_as_plain_zarr(
        ds, tmp_path, encoding={"wind": {"chunks": (4, 1, 9, 18)}, "t2m": {"chunks": (5, 18, 36)}}
    )
    xr.testing.assert_identical(actual.load(), ds)
    assert actual["precip"].encoding["_FillValue"] == -9999.0
    assert np.isnan(actual["t2m"].encoding["_FillValue"])
    assert actual["wind"].ndim == 4


def test_non_finite_attributes_survive(tmp_path: Path) -> None:
    ds = xr.Dataset(
        {"a": (("x",), np.arange(3.0), {"lo": float("-inf"), "hi": float("inf")})},
        attrs={"z_attr": 1, "missing": float("nan"), "a_attr": "kept in this order"},
    )
    actual = assert_same_as_plain_zarr(ds, tmp_path)
    assert np.isnan(actual.attrs["missing"])
    assert list(actual.attrs) == ["z_attr", "missing", "a_attr"]
    assert actual["a"].attrs == {"lo": float("-inf"), "hi": float("inf")}


def test_same_content_same_root_whatever_the_dask_chunking() -> None:
    blockstore = MemoryBlockstore()
    ds = climate_cube()
    # Pin the zarr chunks (otherwise Dask chunks choose them): then any aligned Dask
    # chunking is the same content.
    encoding = {v: {"chunks": (1, *ds[v].shape[1:])} for v in ds.data_vars if "time" in ds[v].dims}
    roots = {
        to_ipld_zarr(ds if c is None else ds.chunk({"time": c}), blockstore, encoding=encoding)
        for c in (None, 1, 4, 5, 12)
    }
    assert len(roots) == 1


def test_nested_groups_as_datatree(tmp_path: Path) -> None:
    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs={"project": "nested"}),
            "/surface": climate_cube(4, 6, 8)[["t2m", "land"]],
            "/upper/levels": climate_cube(4, 6, 8, seed=1)[["wind"]],
        }
    )
    blockstore = DirectoryBlockstore(tmp_path / "blocks")
    root = to_ipld_zarr(tree, blockstore)
    back = open_ipld_datatree(root, blockstore)
    xr.testing.assert_identical(back.load(), tree)
    assert to_ipld_zarr(tree, blockstore) == root


def test_dataarray_and_group_and_backend_entrypoint(tmp_path: Path) -> None:
    blockstore = DirectoryBlockstore(tmp_path / "blocks")
    da = climate_cube(3, 4, 5)["t2m"]
    root = to_ipld_zarr(da, blockstore)
    xr.testing.assert_identical(open_ipld_zarr(root, blockstore)["t2m"].load(), da)
    grouped = to_ipld_zarr(climate_cube(3, 4, 5), blockstore, group="run1")
    via_engine = xr.open_dataset(str(grouped), engine="ipld", blockstore=blockstore, group="run1")
    xr.testing.assert_identical(via_engine, climate_cube(3, 4, 5))
    via_uri = open_ipld_zarr(f"ipfs://{grouped}", blockstore, group="run1")
    assert set(via_uri.data_vars) == set(climate_cube(3, 4, 5).data_vars)


def test_missing_chunks_read_as_fill_value(tmp_path: Path) -> None:
    blockstore = MemoryBlockstore()
    ds = xr.Dataset({"a": (("x",), np.full(100, np.nan))})
    root = to_ipld_zarr(ds, blockstore, encoding={"a": {"chunks": (10,)}})
    store = IPLDStore(blockstore, root)
    assert store.get_sync("a/c/3") is None  # all-NaN chunks are never written
    assert np.isnan(open_ipld_zarr(root, blockstore)["a"].values).all()


def test_bad_cids_and_missing_blocks_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InvalidCIDError, match="not a CID"):
        open_ipld_zarr("not-a-cid", MemoryBlockstore())
    other = MemoryBlockstore()
    root = to_ipld_zarr(climate_cube(2, 3, 4), other)
    with pytest.raises(BlockNotFoundError, match=str(root)):
        open_ipld_zarr(root, MemoryBlockstore())
    # A lost chunk block is an error, never a silent fill value.
    store = IPLDStore(other, root)
    chunk = store._view().locate("t2m/c/0/0/0")  # type: ignore[union-attr]
    assert chunk is not None
    del other._blocks[chunk.cid_bytes]  # type: ignore[union-attr]
    with pytest.raises(BlockNotFoundError, match="import the CAR"):
        open_ipld_zarr(root, other)["t2m"].load()


def test_default_blockstore_is_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPLDWRITE_BLOCKSTORE", str(tmp_path / "default"))
    with warnings.catch_warnings():
        root = climate_cube(2, 3, 4).pipe(to_ipld_zarr)
    assert (tmp_path / "default" / "ipldwrite-blockstore.json").exists()
    xr.testing.assert_identical(open_ipld_zarr(root).load(), climate_cube(2, 3, 4))
