"""xarray integration: write a Dataset as a zarr-on-IPLD DAG, open one by its root CID."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, cast

import xarray as xr
from multiformats import CID
from xarray.backends import BackendEntrypoint
from xarray.backends.zarr import ZarrBackendEntrypoint

from ipldwrite.blockstore import Blockstore
from ipldwrite.errors import InvalidCIDError
from ipldwrite.ipld import Link, to_link
from ipldwrite.store import IPLDStore

__all__ = ["IPLDBackendEntrypoint", "open_ipld_datatree", "open_ipld_zarr", "to_ipld_zarr"]

BlockstoreLike = Blockstore | str | os.PathLike[str] | None
#: xarray's name for the variable of an unnamed DataArray written to zarr.
DATAARRAY_VARIABLE = "__xarray_dataarray_variable__"


def _as_dataset(obj: xr.Dataset | xr.DataArray) -> xr.Dataset:
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else DATAARRAY_VARIABLE)
    if isinstance(obj, xr.Dataset):
        return obj
    raise TypeError(f"to_ipld_zarr writes xarray Datasets and DataArrays, not {type(obj).__name__}")


def write_sequential(
    obj: xr.Dataset | xr.DataArray | xr.DataTree,
    blockstore: BlockstoreLike = None,
    *,
    group: str | None = None,
    encoding: Mapping[str, Any] | None = None,
    **to_zarr_kwargs: Any,
) -> CID:
    """Write ``obj`` in this process (Dask-backed variables computed with the current
    scheduler, writing through one staging store) and return the root CID."""
    store = IPLDStore(blockstore, read_only=False)
    if isinstance(obj, xr.DataTree):
        if group is not None:
            raise ValueError("group= applies to Datasets; a DataTree brings its own hierarchy")
        obj.to_zarr(
            store, encoding=dict(encoding or {}), zarr_format=3, consolidated=False, mode="w"
        )
        return store.commit()
    _as_dataset(obj).to_zarr(
        store,
        group=group,
        encoding=dict(encoding or {}),
        zarr_format=3,
        consolidated=False,
        mode="w",
        **to_zarr_kwargs,
    )
    return store.commit()


def to_ipld_zarr(
    obj: xr.Dataset | xr.DataArray | xr.DataTree,
    blockstore: BlockstoreLike = None,
    *,
    group: str | None = None,
    encoding: Mapping[str, Any] | None = None,
    **to_zarr_kwargs: Any,
) -> CID:
    """Write a Dataset (or DataArray) as zarr-on-IPLD and return its root CID.

    Encodings (compressors, chunks, fill values, dtype) follow ``Dataset.to_zarr``. The
    same logical content always gives the same root CID. Use it with ``ds.pipe``::

        root = ds.pipe(to_ipld_zarr, blockstore="blocks/")
    """
    return write_sequential(obj, blockstore, group=group, encoding=encoding, **to_zarr_kwargs)


def _root_from(value: object) -> Link:
    if isinstance(value, str):
        text = value.strip()
        for prefix in ("ipfs://", "/ipfs/"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        return to_link(text.split("/")[0])
    return to_link(value)


def open_ipld_zarr(
    cid: CID | str,
    blockstore: BlockstoreLike = None,
    *,
    group: str | None = None,
    **open_zarr_kwargs: Any,
) -> xr.Dataset:
    """Open the dataset with root ``cid`` (a CID, its string, or ``ipfs://<cid>``) lazily,
    as ``xarray.open_zarr`` would."""
    store = IPLDStore(blockstore, _root_from(cid), read_only=True)
    ds: xr.Dataset = xr.open_zarr(
        store, group=group, consolidated=False, zarr_format=3, **open_zarr_kwargs
    )
    return ds


def open_ipld_datatree(
    cid: CID | str, blockstore: BlockstoreLike = None, **open_kwargs: Any
) -> xr.DataTree:
    """Open a dataset with nested groups as an ``xarray.DataTree``."""
    store = IPLDStore(blockstore, _root_from(cid), read_only=True)
    return xr.open_datatree(
        cast(Any, store), engine="zarr", consolidated=False, zarr_format=3, chunks={}, **open_kwargs
    )


class IPLDBackendEntrypoint(BackendEntrypoint):
    """``xr.open_dataset(cid, engine="ipld", blockstore=...)``."""

    description = "Open zarr-on-IPLD datasets (written by ipldwrite) by their root CID"
    url = "https://github.com/ipldwrite/ipldwrite"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "blockstore", "group")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        blockstore: BlockstoreLike = None,
        group: str | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        store = IPLDStore(blockstore, _root_from(filename_or_obj), read_only=True)
        return ZarrBackendEntrypoint().open_dataset(
            cast(Any, store),
            drop_variables=drop_variables,
            group=group,
            consolidated=False,
            zarr_format=3,
            **kwargs,
        )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if isinstance(filename_or_obj, CID):
            return True
        if not isinstance(filename_or_obj, str):
            return False
        try:
            _root_from(filename_or_obj)
        except InvalidCIDError:
            return False
        return True
