"""xarray integration: write a Dataset as a zarr-on-IPLD DAG, open one by its root CID."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import xarray as xr
from dask.delayed import delayed
from multiformats import CID
from xarray.backends import BackendEntrypoint
from xarray.backends.common import ArrayWriter
from xarray.backends.writers import _validate_dataset_names, dump_to_store, get_writable_zarr_store
from xarray.backends.zarr import ZarrBackendEntrypoint
from xarray.namedarray.pycompat import is_chunked_array

from ipldwrite.blockstore import Blockstore
from ipldwrite.dask import (
    check_blockstore_reachable,
    chunk_threads_for,
    compute_root,
    merge_tree,
    partial_roots,
)
from ipldwrite.errors import ChunkAlignmentError, InvalidCIDError
from ipldwrite.ipld import Link, to_cid, to_link
from ipldwrite.store import IPLDStore, resolve_blockstore

__all__ = [
    "IPLDBackendEntrypoint",
    "WritePlan",
    "open_ipld_datatree",
    "open_ipld_zarr",
    "plan_write",
    "to_ipld_zarr",
]

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
    client: Any = None,
    group: str | None = None,
    encoding: Mapping[str, Any] | None = None,
    split_every: int | None = None,
    compute: bool = True,
    base: CID | str | None = None,
    mode: Literal["w", "a", "r+"] | None = None,
    append_dim: Hashable | None = None,
    region: Mapping[str, slice | Literal["auto"]] | Literal["auto"] | None = None,
    safe_chunks: bool = True,
    align_chunks: bool = False,
    write_empty_chunks: bool | None = None,
    progress: bool | None = None,
    retries: int = 0,
) -> Any:
    """Write a Dataset (or DataArray, or DataTree) as zarr-on-IPLD; return its root CID.

    Use it with ``ds.pipe(to_ipld_zarr, client=client)``. The client writes the template
    (hierarchy, all metadata, numpy-backed variables); every Dask block is then written by a
    task as a partial dataset whose root CID is merged with the others by a reduction tree on
    the workers (``split_every`` fan-in). The same logical content always gives the same
    root CID, whatever the chunking, worker count, merge order or retries.

    Parameters
    ----------
    obj
        What to write. Encodings (compressors, chunks, fill values, dtype) follow
        ``Dataset.to_zarr``.
    blockstore
        A Blockstore, a directory path, or None for the embedded default directory. With
        workers in other processes it must be a directory they all reach. Or
        ``"car:<directory or fsspec URL>"`` (a :class:`~ipldwrite.blockstore.TaskCarBlockstore`):
        every task writes its blocks as one CAR there and nothing is shared between
        workers; read the result with the same string.
    client
        A ``distributed.Client``; None uses the current Dask scheduler (the default client
        if there is one, else threads).
    split_every
        Fan-in of the merge tree (default 32).
    compute
        False returns a Dask object that computes to the root CID.
    base, mode, append_dim, region
        Write on top of an existing dataset (``base``), as ``to_zarr`` does on an existing
        store: ``mode="a"`` with ``append_dim`` appends, ``region`` overwrites a region.
    safe_chunks, align_chunks
        As in ``to_zarr``: Dask chunks that straddle zarr chunks are refused before anything
        is written, or rechunked when ``align_chunks=True``.
    progress
        Show a progress bar (default: in terminals and notebooks).
    retries
        Task retries on a distributed cluster; retries cannot change the root.
    """
    store_blocks = resolve_blockstore(blockstore)
    # What the client writes (the template) goes through the blockstore's write hook: a
    # backend may buffer it (per-task CARs, batched uploads) like any task's blocks.
    client_blocks = store_blocks.open_write(None if base is None else to_link(base))
    if isinstance(obj, xr.DataTree):
        if base is not None or client is not None:
            raise ValueError("DataTrees are written sequentially: drop base=/client=")
        root = write_sequential(obj, client_blocks, group=group, encoding=encoding)
        store_blocks.finish_write(client_blocks, to_link(root))
        return root
    ds = _as_dataset(obj)
    if any(is_chunked_array(v.data) for v in ds.variables.values()):
        check_blockstore_reachable(store_blocks, client)
    plan = plan_write(
        ds,
        client_blocks,
        group=group,
        encoding=encoding,
        base=base,
        mode=mode,
        append_dim=append_dim,
        region=region,
        safe_chunks=safe_chunks,
        align_chunks=align_chunks,
        write_empty_chunks=write_empty_chunks,
    )
    plan = dataclasses.replace(
        plan, blockstore=store_blocks.finish_write(client_blocks, plan.template)
    )
    tasks = sum(source.npartitions for source in plan.sources)
    tree = plan.merge_tree(split_every, chunk_threads=chunk_threads_for(tasks, client))
    if not compute:
        return delayed(_root_cid)(tree)
    if not plan.sources:
        return to_cid(plan.template)
    return to_cid(compute_root(tree, client=client, progress=progress, retries=retries))


@dataclass(frozen=True)
class WritePlan:
    """A write after its first phase: the template is committed, the lazy parts are not.

    ``template`` holds the hierarchy, all metadata and every numpy-backed variable;
    ``sources`` are the encoded Dask arrays still to write, each into ``paths[i]`` at
    ``regions[i]`` (None: the whole array).
    """

    blockstore: Blockstore
    template: Link
    sources: list[Any]
    paths: list[str]
    regions: list[tuple[slice, ...] | None]
    write_empty_chunks: bool = False

    def partials(self, chunk_threads: int | None = None) -> list[Any]:
        """Per source, a Dask array of partial-root CIDs: one write task per block."""
        return [
            partial_roots(
                source,
                blockstore=self.blockstore,
                template=self.template,
                path=path,
                region=region,
                write_empty_chunks=self.write_empty_chunks,
                chunk_threads=chunk_threads,
            )
            for source, path, region in zip(self.sources, self.paths, self.regions, strict=True)
        ]

    def merge_tree(
        self, split_every: int | None = None, *, chunk_threads: int | None = None
    ) -> Any:
        """A Dask array that computes to the final root: writes, then the merge tree."""
        return merge_tree(
            self.partials(chunk_threads),
            blockstore=self.blockstore,
            template=self.template,
            split_every=split_every,
        )


def plan_write(
    ds: xr.Dataset,
    blockstore: Blockstore,
    *,
    group: str | None = None,
    encoding: Mapping[str, Any] | None = None,
    base: CID | str | None = None,
    mode: Literal["w", "a", "r+"] | None = None,
    append_dim: Hashable | None = None,
    region: Mapping[str, slice | Literal["auto"]] | Literal["auto"] | None = None,
    safe_chunks: bool = True,
    align_chunks: bool = False,
    write_empty_chunks: bool | None = None,
) -> WritePlan:
    """Phase one of a write, on the client: validate, write and commit the template.

    xarray itself checks names, encodings, regions and chunk alignment (with its own
    advice) and encodes the variables, exactly as ``to_zarr`` does; numpy-backed variables
    are written here, Dask-backed ones are returned for the tasks.
    """
    store = IPLDStore(blockstore, base, read_only=False)
    if mode is None:
        mode = "w" if base is None else ("r+" if region is not None else "a")
    zstore = get_writable_zarr_store(
        store,
        mode=mode,
        group=group,
        consolidated=False,
        append_dim=append_dim,
        region=region,
        safe_chunks=safe_chunks,
        align_chunks=align_chunks,
        zarr_format=3,
        write_empty_chunks=write_empty_chunks,
    )
    _validate_dataset_names(ds)
    ds = zstore._validate_and_autodetect_region(ds)
    encoding = dict(encoding or {})
    zstore._validate_encoding(encoding)
    writer = ArrayWriter()  # type: ignore[no-untyped-call]
    try:
        dump_to_store(ds, zstore, writer, encoding=encoding)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        if "Dask chunk" not in str(exc) and "uniform chunk" not in str(exc):
            raise
        raise ChunkAlignmentError(
            f"{exc}\n(ipldwrite: refused before any task ran; no root was written. Or pass "
            "align_chunks=True to to_ipld_zarr to rechunk.)"
        ) from exc
    lazy = []
    for source, target, region_ in zip(writer.sources, writer.targets, writer.regions, strict=True):
        if source.ndim == 0:  # nothing to split: write it with the template
            target[...] = np.asarray(source)
        else:
            lazy.append((source, target.path, tuple(region_) if region_ else None))
    return WritePlan(
        blockstore=blockstore,
        template=to_link(store.commit()),
        sources=[s for s, _, _ in lazy],
        paths=[p for _, p, _ in lazy],
        regions=[r for _, _, r in lazy],
        write_empty_chunks=bool(write_empty_chunks),
    )


def _root_cid(value: Any) -> CID:
    return to_cid(Link(bytes(np.asarray(value, dtype=object).item())))


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
