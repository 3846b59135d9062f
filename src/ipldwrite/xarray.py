"""xarray integration: write a Dataset as a zarr-on-IPLD DAG, open one by its root CID."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import xarray as xr
from dask.delayed import delayed
from multiformats import CID
from xarray.backends import BackendEntrypoint, ZarrBackendEntrypoint

from ipldwrite._compat.xarray_api import (
    ArrayWriter,
    dump_to_store,
    is_chunk_alignment_error,
    is_chunked_array,
    keep_close,
    validate_dataset,
    writable_zarr_store,
)
from ipldwrite.blockstore import Blockstore
from ipldwrite.dask import (
    check_blockstore_reachable,
    chunk_threads_for,
    compute_root,
    merge_tree,
    partial_roots,
    result_link,
)
from ipldwrite.errors import ChunkAlignmentError, InvalidCIDError
from ipldwrite.ipld import Link, to_cid, to_link
from ipldwrite.store import (
    IPLDStore,
    is_auto_chunked,
    partials_base,
    rechunk_to_auto,
    resolve_blockstore,
)

__all__ = [
    "IPLDBackendEntrypoint",
    "WriteOptions",
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


@dataclass(frozen=True)
class WriteOptions:
    """What a write does besides where: the keyword arguments of :func:`to_ipld_zarr` that
    reach xarray's zarr writer, checked once here and then passed down as one value.

    ``base`` is parsed at construction (a bad CID fails before anything is written), and
    ``mode`` gets ``to_zarr``'s default for a store that does or does not exist yet: "w"
    without a base, "r+" for a region write on one, "a" otherwise.
    """

    group: str | None = None
    encoding: Mapping[str, Any] | None = None
    base: Link | CID | str | None = None
    mode: Literal["w", "a", "r+"] | None = None
    append_dim: Hashable | None = None
    region: Mapping[str, slice | Literal["auto"]] | Literal["auto"] | None = None
    safe_chunks: bool = True
    align_chunks: bool = False
    write_empty_chunks: bool | None = None

    def __post_init__(self) -> None:
        if self.base is not None:
            object.__setattr__(self, "base", to_link(self.base))
        if self.mode is None:
            mode = "w" if self.base is None else ("r+" if self.region is not None else "a")
            object.__setattr__(self, "mode", mode)

    @property
    def base_link(self) -> Link | None:
        """The dataset written on, if any (``base`` as parsed by ``__post_init__``)."""
        return cast(Link | None, self.base)


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
    options = WriteOptions(
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
    # What the client writes (the template) goes through the blockstore's write hook: a
    # backend may buffer it (per-task CARs, batched uploads) like any task's blocks.
    client_blocks = store_blocks.open_write(options.base_link)
    if isinstance(obj, xr.DataTree):
        if options.base is not None or client is not None:
            raise ValueError("DataTrees are written sequentially: drop base=/client=")
        root = write_sequential(obj, client_blocks, group=group, encoding=encoding)
        store_blocks.finish_write(client_blocks, [to_link(root)])
        return root
    ds = _as_dataset(obj)
    if any(is_chunked_array(v.data) for v in ds.variables.values()):
        check_blockstore_reachable(store_blocks, client)
    plan = _finish_template(plan_write(ds, client_blocks, options), store_blocks, client_blocks)
    tasks = sum(source.npartitions for source in plan.sources)
    tree = plan.merge_tree(split_every, chunk_threads=chunk_threads_for(tasks, client))
    if not compute:
        return delayed(_root_cid)(tree)
    if not plan.sources:
        return to_cid(plan.template)
    return to_cid(compute_root(tree, client=client, progress=progress, retries=retries))


def _finish_template(
    plan: WritePlan, store_blocks: Blockstore, client_blocks: Blockstore
) -> WritePlan:
    """The plan with the blockstore the tasks use, once the client's writes are handed over.

    The partials' base (the template less the chunks a region write overwrites) has nodes
    of its own, which the tasks read like the template's.
    """
    made = [plan.template]
    if plan.base is not None and plan.base != plan.template:
        made.append(plan.base)
    return dataclasses.replace(plan, blockstore=store_blocks.finish_write(client_blocks, made))


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
    #: What the partials are committed on (default: the template); see ``partials_base``.
    base: Link | None = None

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
                base=self.base,
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
    options: WriteOptions | None = None,
    **write_options: Any,
) -> WritePlan:
    """Phase one of a write, on the client: validate, write and commit the template.

    ``options`` (or the keyword arguments of :class:`WriteOptions`) say how. xarray itself
    checks names, encodings, regions and chunk alignment (with its own advice) and encodes
    the variables, exactly as ``to_zarr`` does; numpy-backed variables are written here,
    Dask-backed ones are returned for the tasks.
    """
    if options is None:
        options = WriteOptions(**write_options)
    elif write_options:
        raise TypeError("plan_write takes WriteOptions or their keyword arguments, not both")
    store = IPLDStore(blockstore, options.base_link, read_only=False)
    lazy = _write_template(ds, store, options)
    template = to_link(store.commit())
    return WritePlan(
        blockstore=blockstore,
        template=template,
        sources=[s for s, _, _ in lazy],
        paths=[p for _, p, _ in lazy],
        regions=[r for _, _, r in lazy],
        write_empty_chunks=bool(options.write_empty_chunks),
        base=partials_base(blockstore, template, [(p, r) for _, p, r in lazy]),
    )


def _write_template(
    ds: xr.Dataset, store: IPLDStore, options: WriteOptions
) -> list[tuple[Any, str, tuple[slice, ...] | None]]:
    """Let xarray validate ``ds`` and write it into ``store`` as ``to_zarr`` would: the
    metadata and the numpy-backed and 0-d variables. Returns the rest, the Dask-backed
    variables, as (source, array path, region or None)."""
    mode = options.mode
    zstore = writable_zarr_store(
        store,
        mode=mode,
        group=options.group,
        append_dim=options.append_dim,
        region=options.region,
        safe_chunks=options.safe_chunks,
        align_chunks=options.align_chunks,
        write_empty_chunks=options.write_empty_chunks,
    )
    # As to_zarr does: size-0 variables are loaded (Dask's size-0 chunks would become
    # zarr chunks of size 0, which zarr refuses), on a copy (to_zarr loads in place).
    ds = ds.copy()
    for var in ds.variables.values():
        if var.size == 0:
            var.load()
    encoding = dict(options.encoding or {})
    ds = validate_dataset(zstore, ds, encoding)
    regrow = (
        _auto_chunked_appends(ds, store, options.group, options.append_dim) if mode == "a" else []
    )
    writer = ArrayWriter()  # type: ignore[no-untyped-call]
    try:
        dump_to_store(ds, zstore, writer, encoding)
    except ValueError as exc:
        if not is_chunk_alignment_error(exc):
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
    for path in regrow:
        rechunk_to_auto(store, path)
    return lazy


def _auto_chunked_appends(
    ds: xr.Dataset, store: IPLDStore, group: str | None, append_dim: Hashable | None
) -> list[str]:
    """Paths of the arrays an append grows that a single write would chunk anew.

    A numpy-backed variable without ``chunks`` encoding gets zarr's automatic chunks for
    its shape. Where such a variable is appended to an array that has exactly the
    automatic chunks of its stored shape, that array was (as far as the stored dataset can
    tell) written that way, and after the append it gets the automatic chunks of its new
    shape: the single write's. ``to_zarr`` on a directory keeps the old chunks instead;
    the values are the same. Dask-backed variables, and variables whose encoding names
    chunks (as those of a dataset opened from zarr do), keep the base's chunks, as a single
    write of them would (docs/notes-chunking-rule.md).
    """
    if append_dim is None:
        return []
    paths = []
    for name, var in ds.variables.items():
        if append_dim not in var.dims or is_chunked_array(var.data) or "chunks" in var.encoding:
            continue
        path = f"{group.strip('/')}/{name}" if group and group.strip("/") else str(name)
        if is_auto_chunked(store, path):
            paths.append(path)
    return paths


def _root_cid(value: Any) -> CID:
    return to_cid(result_link(value))


def _address(value: object) -> tuple[Link, str]:
    """The root and the path inside it of what users pass: a CID, ``<cid>/<path>``,
    ``ipfs://<cid>/<path>`` or ``/ipfs/<cid>/<path>``."""
    if not isinstance(value, str):
        return to_link(value), ""
    text = value.strip()
    cwd = os.getcwd() + os.sep
    if text.startswith(cwd) and not os.path.exists(text):
        # xarray.open_mfdataset makes every string a path (os.path.abspath): a bare CID
        # arrives as <cwd>/<cid>. Take the CID back; `ipfs://<cid>` never changes.
        text = text[len(cwd) :]
    for prefix in ("ipfs://", "/ipfs/"):
        text = text.removeprefix(prefix)
    root, _, inside = text.partition("/")
    return to_link(root), inside.strip("/")


def _root_from(value: object) -> Link:
    return _address(value)[0]


#: open_zarr arguments whose value is fixed here: accepted with that value, else refused.
_FIXED_OPEN_ARGS: dict[str, tuple[object, str]] = {
    "consolidated": (False, "every node is one read: there is no consolidated metadata"),
    "zarr_format": (3, "zarr-on-IPLD is zarr v3"),
}
#: open_zarr arguments that cannot apply to a dataset opened by CID.
_REFUSED_OPEN_ARGS = {
    "store": "the CID names the store",
    "storage_options": "blocks come from the blockstore argument, not from fsspec",
    "chunk_store": "chunks are blocks of the same blockstore",
}


def _open_args(store: IPLDStore, cid: object, group: str | None, kwargs: dict[str, Any]) -> Any:
    """xarray's open arguments for ``cid``: a path after the CID (``<cid>/ocean``) opens that
    group, an array path is refused, and arguments we fix or cannot honour are checked by
    name rather than colliding with ours ("got multiple values")."""
    for name, (value, why) in _FIXED_OPEN_ARGS.items():
        if name in kwargs and kwargs.pop(name) not in (value, None):
            raise ValueError(f"open_ipld_zarr: {name} can only be {value!r} ({why})")
    for name, why in _REFUSED_OPEN_ARGS.items():
        if name in kwargs:
            raise TypeError(f"open_ipld_zarr does not take {name}= ({why})")
    inside = _address(cid)[1]
    path = "/".join(p for p in [*inside.split("/"), *(group or "").split("/")] if p)
    if not inside:
        return dict(group=group, consolidated=False, zarr_format=3, **kwargs)
    meta = store.get_sync(f"{path}/zarr.json")
    kind = json.loads(meta.to_bytes()).get("node_type") if meta is not None else None
    if kind != "group":
        parent, _, name = path.rpartition("/")
        if kind == "array":
            group_cid = f"{store.root}/{parent}".rstrip("/")
            raise ValueError(
                f"{path!r} in {store.root} is an array, not a group: open its group and "
                f"select it, open_ipld_zarr({group_cid!r})[{name!r}]"
            )
        raise ValueError(
            f"{path!r} is not a group of {store.root} (`ipldwrite ls {store.root}` lists them)"
        )
    return dict(group=path, consolidated=False, zarr_format=3, **kwargs)


def _in_name_order(ds: xr.Dataset) -> xr.Dataset:
    """The variables sorted by name. zarr lists a group's members in the order their metadata
    reads complete, so xarray's variable order would change from one open to the next."""
    coords = xr.Coordinates(
        {k: ds.coords[k].variable for k in sorted(ds.coords, key=str)}, indexes=ds.xindexes
    )
    data = {k: ds[k].variable for k in sorted(ds.data_vars, key=str)}
    out = xr.Dataset(data, coords=coords, attrs=ds.attrs)
    out.encoding = ds.encoding
    return keep_close(out, ds)


def open_ipld_zarr(
    cid: CID | str,
    blockstore: BlockstoreLike = None,
    *,
    group: str | None = None,
    **open_zarr_kwargs: Any,
) -> xr.Dataset:
    """Open the dataset with root ``cid`` (a CID, its string, or ``ipfs://<cid>``) lazily,
    as ``xarray.open_zarr`` would. ``<cid>/path`` opens the group at that path."""
    store = IPLDStore(blockstore, _root_from(cid), read_only=True)
    ds: xr.Dataset = xr.open_zarr(store, **_open_args(store, cid, group, open_zarr_kwargs))
    return _in_name_order(ds)


def open_ipld_datatree(
    cid: CID | str, blockstore: BlockstoreLike = None, **open_kwargs: Any
) -> xr.DataTree:
    """Open a dataset with nested groups as an ``xarray.DataTree``."""
    store = IPLDStore(blockstore, _root_from(cid), read_only=True)
    args = _open_args(store, cid, open_kwargs.pop("group", None), open_kwargs)
    return xr.open_datatree(cast(Any, store), engine="zarr", chunks={}, **args)


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
        ds = ZarrBackendEntrypoint().open_dataset(
            cast(Any, store),
            drop_variables=drop_variables,
            **_open_args(store, filename_or_obj, group, kwargs),
        )
        return _in_name_order(ds)

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
