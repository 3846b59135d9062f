"""Ingest an archive of NetCDF (or any xarray-readable) files as one dataset.

Two strategies give the same root CID for the same archive and chunking:

* ``per_file=False``: ``xarray.open_mfdataset`` + the distributed writer;
* ``per_file=True``: every file is written as its own dataset (in parallel on the cluster),
  and the roots are joined by :func:`ipldwrite.ops.concat` — write independently, join later.

Both normalise encodings the same way: source packing (``scale_factor``, ``add_offset``,
int16 storage, which producers often choose per file) is dropped, so a variable is stored as
the floating-point values xarray decodes; zarr chunks come from ``chunks`` along the concat
dimension and span the other dimensions; time coordinates keep the first file's units.
Files that do not fit (other variables, another grid, unsorted or overlapping times) are
named in the error before anything is written.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from multiformats import CID

from ipldwrite.blockstore import Blockstore
from ipldwrite.errors import IncompatibleDatasetsError
from ipldwrite.ops import concat
from ipldwrite.store import resolve_blockstore

log = logging.getLogger("ipldwrite.ingest")

__all__ = ["ArchiveFile", "ingest", "scan_archive"]


@dataclass(frozen=True)
class ArchiveFile:
    path: str
    steps: int
    first: Any
    last: Any


def expand(paths: str | Sequence[str]) -> list[str]:
    patterns = [paths] if isinstance(paths, str) else list(paths)
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            raise FileNotFoundError(f"no file matches {pattern!r}")
        found.extend(matches)
    return found


def scan_archive(paths: Sequence[str], dim: str) -> list[ArchiveFile]:
    """Check that the files form one archive along ``dim``; return them in ``dim`` order.

    Reads metadata and coordinates only. Raises naming the offending file.
    """
    files: list[ArchiveFile] = []
    reference: xr.Dataset | None = None
    reference_path = ""
    for path in paths:
        with xr.open_dataset(path, chunks={}) as ds:
            if dim not in ds.dims:
                raise IncompatibleDatasetsError(f"{path}: has no dimension {dim!r}")
            coord = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
            if coord.size > 1 and not bool(np.all(coord[1:] > coord[:-1])):
                raise IncompatibleDatasetsError(
                    f"{path}: {dim!r} is not strictly increasing inside the file; sort it first"
                )
            if reference is None:
                reference, reference_path = ds.drop_vars(dim, errors="ignore").isel({dim: 0}), path
                reference = reference.load()
            else:
                _check_same_layout(reference, reference_path, ds, path, dim)
            files.append(ArchiveFile(path, int(ds.sizes[dim]), coord[0], coord[-1]))
    files.sort(key=lambda f: f.first)
    for before, after in itertools.pairwise(files):
        if not after.first > before.last:
            raise IncompatibleDatasetsError(
                f"{after.path} starts at {after.first} but {before.path} runs until "
                f"{before.last}: the files overlap along {dim!r}. Remove the duplicate period."
            )
    return files


def _check_same_layout(ref: xr.Dataset, ref_path: str, ds: xr.Dataset, path: str, dim: str) -> None:
    if set(ds.data_vars) != set(ref.data_vars):
        raise IncompatibleDatasetsError(
            f"{path}: variables {sorted(map(str, set(ds.data_vars) ^ set(ref.data_vars)))} "
            f"differ from "
            f"{ref_path}; every file of an archive must hold the same variables"
        )
    for name, coord in ref.coords.items():
        if name == dim or dim in ds[name].dims:
            continue
        if name not in ds.coords or not np.array_equal(ds[name].values, coord.values):
            raise IncompatibleDatasetsError(
                f"{path}: coordinate {name!r} differs from {ref_path} (a different grid); "
                "regrid the files to one grid first"
            )
    for name, var in ref.data_vars.items():  # ``ref`` lost ``dim`` when it was isel'ed
        others = tuple(d for d in ds[name].dims if d != dim)
        if others != var.dims:
            raise IncompatibleDatasetsError(
                f"{path}: {name!r} has dimensions {ds[name].dims}, but {var.dims} (plus "
                f"{dim!r}) in {ref_path}"
            )


def _normalise(
    ds: xr.Dataset, chunks: Mapping[str, int], units: Mapping[str, Any]
) -> dict[str, Any]:
    """Drop ``ds``'s source encodings (in place) and return the archive's zarr encoding:
    ``chunks`` per dimension (whole extent where not given; dimension coordinates keep
    zarr's automatic chunks), the first file's time units."""
    encoding: dict[str, Any] = {}
    for name, var in ds.variables.items():
        keep = {k: var.encoding[k] for k in ("units", "calendar") if k in var.encoding}
        if str(name) in units:
            keep.update(units[str(name)])
        if keep and "dtype" in var.encoding:
            # xarray encodes lazy (Dask) datetimes only when it knows units *and* dtype.
            keep["dtype"] = var.encoding["dtype"]
        var.encoding = {}
        shape = tuple(
            min(chunks.get(str(d), size), size) or 1
            for d, size in zip(var.dims, var.shape, strict=True)
        )
        # Dimension coordinates keep zarr's automatic chunking, as a single to_zarr gives
        # them (xarray never backs an index with Dask): a per-file ingest then joins to the
        # same root, since concat gives a joined index the automatic chunks of its shape.
        index = var.dims == (name,)
        encoding[str(name)] = {**keep, "chunks": shape} if var.ndim and not index else keep
    return {k: v for k, v in encoding.items() if v}


def _time_units(path: str, dim: str) -> dict[str, Any]:
    with xr.open_dataset(path, chunks={}) as ds:
        out: dict[str, Any] = {}
        for name, var in ds.variables.items():
            found = {k: var.encoding[k] for k in ("units", "calendar") if k in var.encoding}
            if found and np.issubdtype(var.dtype, np.datetime64):
                out[str(name)] = found
        return out


def _write_one(
    path: str, chunks: Mapping[str, int], units: Mapping[str, Any], blockstore: Blockstore
) -> str:
    """One file of a per-file ingest, as its own dataset (runs on a worker)."""
    from ipldwrite.xarray import to_ipld_zarr

    with xr.open_dataset(path, chunks=dict(chunks)) as opened:
        ds = opened.chunk({d: c for d, c in chunks.items() if d in opened.dims})
        encoding = _normalise(ds, chunks, units)
        return str(to_ipld_zarr(ds, blockstore, encoding=encoding, progress=False))


def ingest(
    paths: str | Iterable[str],
    concat_dim: str,
    blockstore: Blockstore | str | None = None,
    *,
    chunks: Mapping[str, int] | None = None,
    client: Any = None,
    per_file: bool = False,
    progress: bool | None = None,
) -> CID:
    """Write the files matching ``paths`` as one dataset along ``concat_dim``."""
    store = resolve_blockstore(blockstore)
    start = time.perf_counter()
    files = scan_archive(expand(paths if isinstance(paths, str) else list(paths)), concat_dim)
    log.info(
        "scanned %d files along %s in %.2f s", len(files), concat_dim, time.perf_counter() - start
    )
    chunk = int((chunks or {}).get(concat_dim, min(f.steps for f in files)))
    chunk_map = {**(chunks or {}), concat_dim: chunk}
    units = _time_units(files[0].path, concat_dim)
    if per_file:
        for f in files[:-1]:
            if f.steps % chunk:
                raise IncompatibleDatasetsError(
                    f"{f.path} has {f.steps} {concat_dim} steps, not a multiple of the chunk "
                    f"size {chunk}: with --per-file every file but the last must hold whole "
                    "chunks. Choose a chunk size that divides every file, or drop --per-file."
                )
        if client is not None:
            futures = client.map(
                _write_one,
                [f.path for f in files],
                chunks=chunk_map,
                units=units,
                blockstore=store,
                pure=True,
            )
            roots = client.gather(futures)
        else:
            roots = [_write_one(f.path, chunk_map, units, store) for f in files]
        return concat(roots, concat_dim, store)
    from ipldwrite.xarray import to_ipld_zarr

    ds = xr.open_mfdataset(
        [f.path for f in files],
        combine="nested",
        concat_dim=concat_dim,
        chunks=chunk_map,
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="override",
        parallel=False,
    )
    # Dask blocks follow the files; align them with the zarr chunks across file boundaries.
    ds = ds.chunk({d: c for d, c in chunk_map.items() if d in ds.dims})
    encoding = _normalise(ds, chunk_map, units)
    result: CID = to_ipld_zarr(ds, store, encoding=encoding, client=client, progress=progress)
    return result
