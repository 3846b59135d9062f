"""Concatenate datasets along a dimension by rewriting manifests, and append."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr
from multiformats import CID

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import ArrayNode, NodeIO, Source, assemble, join_path
from ipldwrite.errors import IncompatibleDatasetsError
from ipldwrite.ipld import to_cid
from ipldwrite.ops._attrs import CombineAttrs, attrs_of, check_decoding_attrs, combine, with_attrs
from ipldwrite.ops._hierarchy import Hierarchy, dims_of, read_values, rewrite_array, with_shape
from ipldwrite.store import resolve_blockstore

#: The zarr.json fields that must agree for arrays to be joined by link.
SAME_FIELDS = ("data_type", "codecs", "chunk_key_encoding", "fill_value", "storage_transformers")
#: Coordinates this small may be re-written when their chunks do not line up.
SMALL_COORDINATE = 1 << 20


def concat(
    cids: Sequence[CID | str],
    dim: str,
    blockstore: Blockstore | str | None = None,
    *,
    group: str = "",
    combine_attrs: CombineAttrs = "override",
    check_coords: bool = True,
) -> CID:
    """Concatenate datasets along an existing dimension, without touching chunk data.

    Variables with ``dim`` are joined by placing each input's manifest at its offset: every
    input but the last must hold a whole number of chunks along ``dim``. Variables without
    ``dim`` must be identical in every input. With ``check_coords`` the coordinate along
    ``dim`` is read (a small 1-D array) to check it is monotonic and non-overlapping; a
    coordinate whose chunks do not line up is re-written (it is small), data variables never.

    Raises :class:`IncompatibleDatasetsError` before anything is written when inputs differ.
    """
    store = resolve_blockstore(blockstore)
    if not cids:
        raise ValueError("concat needs at least one dataset")
    inputs = [Hierarchy.load(store, cid) for cid in cids]
    if len(inputs) == 1:
        return to_cid(inputs[0].root)  # type: ignore[arg-type]
    names = [set(h.arrays(group)) for h in inputs]
    for n, these in enumerate(names[1:], 2):
        if these != names[0]:
            raise IncompatibleDatasetsError(
                f"dataset {n} ({inputs[n - 1].label}) has variables {sorted(these ^ names[0])} "
                "that dataset 1 does not have, or lacks them. Drop them first "
                "(ipldwrite.ops.drop_vars) or merge them in separately."
            )
    # Every check runs before anything is built: a refused join writes nothing.
    if check_coords and dim in names[0]:
        _check_monotonic(store, inputs, join_path(group, dim), dim)
    along: dict[str, list[ArrayNode]] = {}
    for name in sorted(names[0]):
        nodes = [h.arrays(group)[name] for h in inputs]
        where = f"variable {name!r}"
        if dim in dims_of(nodes[0], where):
            _check_joinable(nodes, dim, where, is_coordinate=name == dim)
            along[name] = nodes
        else:
            _check_identical(nodes, inputs, where, dim)
    if not along:
        raise IncompatibleDatasetsError(f"no variable has dimension {dim!r}: nothing to concat")
    out = Hierarchy(store, dict(inputs[0].nodes), inputs[0].root)
    io = NodeIO(store)
    for name, nodes in along.items():
        joined = _concat_array(
            store, io, nodes, inputs, dim, f"variable {name!r}", name == dim, combine_attrs
        )
        out.nodes[join_path(group, name)] = joined
    groups = [h.group(group) for h in inputs]
    attrs = combine([attrs_of(g) for g in groups], combine_attrs, f"group {'/' + group!r}")
    out.nodes[group] = with_attrs(groups[0], attrs)
    return to_cid(out.write())


def _check_identical(nodes: list[ArrayNode], inputs: list[Hierarchy], where: str, dim: str) -> None:
    for n, node in enumerate(nodes[1:], 2):
        if node != nodes[0]:
            raise IncompatibleDatasetsError(
                f"{where} has no {dim!r} dimension and differs between dataset 1 "
                f"({inputs[0].label}) and dataset {n} ({inputs[n - 1].label}): concat keeps "
                "one copy of such variables, so they must be identical. Drop it from all but "
                "one input, or make them equal."
            )


def _misaligned(n: int, size: int, dim: str, chunk: int, where: str) -> IncompatibleDatasetsError:
    return IncompatibleDatasetsError(
        f"dataset {n} has {size} {dim} steps with chunk size {chunk} in {where}: not "
        f"chunk-aligned; rechunk the inputs to a divisor of {size} or re-write with "
        "`to_ipld_zarr`"
    )


def _check_joinable(nodes: list[ArrayNode], dim: str, where: str, *, is_coordinate: bool) -> None:
    """Refuse arrays that cannot be joined along ``dim`` by placing their manifests."""
    first = nodes[0]
    dims = dims_of(first, where)
    axis = dims.index(dim)
    all_attrs = [attrs_of(n) for n in nodes]
    if not (is_coordinate and _time_units_differ(all_attrs)):
        check_decoding_attrs(all_attrs, where)
    for n, node in enumerate(nodes[1:], 2):
        if dims_of(node, where) != dims:
            raise IncompatibleDatasetsError(
                f"{where}: dimensions {dims_of(node, where)} in dataset {n} vs {dims} in dataset 1"
            )
        for field in SAME_FIELDS:
            if node.doc.get(field) != first.doc.get(field):
                raise IncompatibleDatasetsError(
                    f"{where}: {field} differs between dataset 1 ({first.doc.get(field)!r}) and "
                    f"dataset {n} ({node.doc.get(field)!r}); re-write one input with the "
                    "other's encoding before joining"
                )
        if node.keys.chunk_shape != first.keys.chunk_shape and not is_coordinate:
            raise IncompatibleDatasetsError(
                f"{where}: chunk shape {node.keys.chunk_shape} in dataset {n} vs "
                f"{first.keys.chunk_shape} in dataset 1; rechunk the inputs alike"
            )
        for ax, (a, b) in enumerate(zip(node.keys.shape, first.keys.shape, strict=True)):
            if ax != axis and a != b:
                raise IncompatibleDatasetsError(
                    f"{where}: {dims[ax]!r} has {a} entries in dataset {n} but {b} in "
                    f"dataset 1; concat along {dim!r} needs all other dimensions equal"
                )
    if is_coordinate:
        return
    chunk = first.keys.chunk_shape[axis]
    for n, node in enumerate(nodes[:-1], 1):
        size = node.keys.shape[axis]
        if size % chunk:
            raise _misaligned(n, size, dim, chunk, where)


def _concat_array(
    store: Blockstore,
    io: NodeIO,
    nodes: list[ArrayNode],
    inputs: list[Hierarchy],
    dim: str,
    where: str,
    is_coordinate: bool,
    combine_attrs: CombineAttrs,
) -> ArrayNode:
    first = nodes[0]
    axis = dims_of(first, where).index(dim)
    chunk = first.keys.chunk_shape[axis]
    all_attrs = [attrs_of(n) for n in nodes]
    if is_coordinate and _time_units_differ(all_attrs):
        return _concat_times(store, nodes, inputs, all_attrs, axis, combine_attrs, where)
    attrs = combine(all_attrs, combine_attrs, where)
    sizes = [n.keys.shape[axis] for n in nodes]
    shape = list(first.keys.shape)
    shape[axis] = sum(sizes)
    last = len(nodes)
    misaligned = next(
        (
            n
            for n, (node, size) in enumerate(zip(nodes, sizes, strict=True), 1)
            if (n < last and size % chunk) or node.keys.chunk_shape != first.keys.chunk_shape
        ),
        None,
    )
    if misaligned is not None:
        if is_coordinate and int(np.prod(shape)) * 16 <= SMALL_COORDINATE:
            values = np.concatenate(
                [read_values(store, h.root, n.path) for h, n in zip(inputs, nodes, strict=True)]  # type: ignore[arg-type]
            )
            return with_attrs(rewrite_array(store, first, shape, values), attrs)  # type: ignore[no-any-return]
        raise _misaligned(misaligned, sizes[misaligned - 1], dim, chunk, where)
    target = with_shape(first, shape, None)
    sources = []
    offset = 0
    for n, (node, size) in enumerate(zip(nodes, sizes, strict=True), 1):
        chunk_offset = [0] * len(shape)
        chunk_offset[axis] = offset // chunk
        sources.append(
            Source(node.tiling, node.manifest, offset=tuple(chunk_offset), label=f"dataset {n}")
        )
        offset += size
    manifest = assemble(io, target.tiling, sources, what=where)
    return with_attrs(target.with_manifest(manifest), attrs)  # type: ignore[no-any-return]


def _time_units_differ(all_attrs: list[dict[str, Any]]) -> bool:
    units = [a.get("units") for a in all_attrs]
    return (
        all(isinstance(u, str) and " since " in u for u in units)
        and len(set(units)) > 1
        and len({a.get("calendar") for a in all_attrs}) == 1
    )


def _concat_times(
    store: Blockstore,
    nodes: list[ArrayNode],
    inputs: list[Hierarchy],
    all_attrs: list[dict[str, Any]],
    axis: int,
    combine_attrs: CombineAttrs,
    where: str,
) -> ArrayNode:
    """Join time coordinates stored with different CF units (xarray picks the units from
    each file's first time step, so independently written years always differ): decode
    each and re-encode in the first input's units, as a direct write of the joined data
    would store them. Time coordinates are small 1-D arrays; data variables are not touched.
    """
    from xarray.coding.times import decode_cf_datetime, encode_cf_datetime

    first = nodes[0]
    units, calendar = all_attrs[0]["units"], all_attrs[0].get("calendar", "standard")
    values = []
    for h, node, attrs in zip(inputs, nodes, all_attrs, strict=True):
        raw = read_values(store, h.root, node.path)  # type: ignore[arg-type]
        dates = decode_cf_datetime(raw, attrs["units"], attrs.get("calendar", "standard"))
        encoded, _, _ = encode_cf_datetime(dates, units, calendar, dtype=raw.dtype)
        if not np.array_equal(decode_cf_datetime(encoded, units, calendar), dates):
            raise IncompatibleDatasetsError(
                f"{where}: times of an input cannot be stored exactly in {units!r}; re-write "
                "the inputs with one time encoding, e.g. encoding={'time': {'units': ...}}"
            )
        values.append(np.asarray(encoded, dtype=raw.dtype))
    joined = np.concatenate(values)
    check_decoding_attrs([{**a, "units": units} for a in all_attrs], where)
    attrs = combine([{**a, "units": units} for a in all_attrs], combine_attrs, where)
    shape = list(first.keys.shape)
    shape[axis] = joined.shape[0]
    return with_attrs(rewrite_array(store, first, shape, joined), attrs)  # type: ignore[no-any-return]


def _check_monotonic(store: Blockstore, inputs: list[Hierarchy], path: str, dim: str) -> None:
    """Each input's coordinate strictly monotonic, all in one direction, no overlap.

    Plain comparisons, so numbers, datetime64 and cftime dates all work.
    """
    previous: Any = None
    direction = 0
    for n, h in enumerate(inputs, 1):
        values = read_values(store, h.root, path)  # type: ignore[arg-type]
        attrs = attrs_of(h.nodes[path])
        if isinstance(attrs.get("units"), str) and " since " in attrs["units"]:
            from xarray.coding.times import decode_cf_datetime

            # Stored numbers are comparable only within one CF time encoding.
            values = decode_cf_datetime(values, attrs["units"], attrs.get("calendar", "standard"))
        if values.ndim != 1 or values.size == 0:
            continue
        rising = bool(np.all(values[1:] > values[:-1]))
        falling = bool(np.all(values[1:] < values[:-1]))
        this = 0 if values.size == 1 else (1 if rising else (-1 if falling else None))
        if this is None or (direction and this and this != direction):
            raise IncompatibleDatasetsError(
                f"coordinate {dim!r} of dataset {n} ({h.label}) is not strictly monotonic "
                "(in the same direction as the others); sort it (ds.sortby) and re-write"
            )
        if previous is not None:
            step = 1 if values[0] > previous else (-1 if values[0] < previous else 0)
            if step == 0 or (direction and step != direction) or (this and step != this):
                raise IncompatibleDatasetsError(
                    f"coordinate {dim!r} overlaps or is out of order between dataset {n - 1} "
                    f"(ends at {previous!r}) and dataset {n} (starts at {values[0]!r}); "
                    "pass the datasets in order, without overlap"
                )
            direction = direction or step
        direction = direction or this
        previous = values[-1]


def append(
    root: CID | str,
    other: CID | str | xr.Dataset,
    dim: Hashable,
    blockstore: Blockstore | str | None = None,
    **to_ipld_zarr_kwargs: Any,
) -> CID:
    """Extend ``root`` along ``dim`` with another dataset: a CID (joined by ``concat``) or an
    xarray Dataset (written with the distributed writer on top of ``root``)."""
    if isinstance(other, xr.Dataset):
        from ipldwrite.xarray import to_ipld_zarr

        result: CID = to_ipld_zarr(
            other,
            blockstore,
            base=root,
            mode="a",
            append_dim=dim,
            **to_ipld_zarr_kwargs,
        )
        return result
    return concat([root, other], str(dim), blockstore, **to_ipld_zarr_kwargs)
