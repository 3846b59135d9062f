"""Concatenate datasets along a dimension by rewriting manifests, and append."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from multiformats import CID

from ipldwrite._compat.xarray_api import decode_cf_datetime, encode_cf_datetime
from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import ArrayNode, NodeIO, Source, assemble, join_path
from ipldwrite.errors import IncompatibleDatasetsError
from ipldwrite.ipld import to_cid
from ipldwrite.ops._attrs import CombineAttrs, attrs_of, check_decoding_attrs, combine, with_attrs
from ipldwrite.ops._chunking import canonical_chunks, coordinate_like, may_reencode
from ipldwrite.ops._hierarchy import Hierarchy, dims_of, read_values, rewrite_array, with_shape
from ipldwrite.store import resolve_blockstore

#: How ``append`` writes an xarray Dataset on top of a root: ``to_ipld_zarr``, the distributed
#: writer. It lives in the xarray layer, above ops, so ops must not import it: the package
#: ``ipldwrite/__init__`` plugs it in, and Python runs that before any ``ipldwrite.ops`` import.
DatasetWriter = Callable[..., Any]
_dataset_writer: list[DatasetWriter] = []


def use_dataset_writer(writer: DatasetWriter) -> None:
    """Let ``append`` write xarray Datasets with ``writer`` (called as ``to_ipld_zarr`` is)."""
    _dataset_writer[:] = [writer]


#: The zarr.json fields that must agree for arrays to be joined by link.
SAME_FIELDS = ("data_type", "codecs", "chunk_key_encoding", "fill_value", "storage_transformers")


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
    ``dim`` is read (a small 1-D array) to check it is monotonic and non-overlapping.

    The result is the root a single write of the joined dataset gives: variables that were
    chunked automatically (numpy-backed, :mod:`._chunking`) get the automatic chunking of
    the joined shape, re-encoded when small. A variable that could only reach that form by
    re-encoding real chunk data is refused, never joined into another root.

    Raises :class:`IncompatibleDatasetsError` before anything is written when inputs differ.
    """
    store = resolve_blockstore(blockstore)
    if not cids:
        raise ValueError("concat needs at least one dataset")
    inputs = [Hierarchy.load(store, cid) for cid in cids]
    if len(inputs) == 1:
        return to_cid(inputs[0].root)  # type: ignore[arg-type]
    # Every check runs before anything is built: a refused join writes nothing.
    along = _plan_variables(store, inputs, group, dim, check_coords)
    out = Hierarchy(store, dict(inputs[0].nodes), inputs[0].root)
    io = NodeIO(store)
    for name, (nodes, plan) in along.items():
        joined = _concat_array(store, io, nodes, inputs, dim, plan, combine_attrs)
        out.nodes[join_path(group, name)] = joined
    groups = [h.group(group) for h in inputs]
    attrs = combine([attrs_of(g) for g in groups], combine_attrs, f"group {'/' + group!r}")
    out.nodes[group] = with_attrs(groups[0], attrs)
    return to_cid(out.write())


@dataclass(frozen=True)
class _Join:
    """How one variable is joined, decided once by :func:`_plan`: its chunk shape in the
    result, and whether the inputs' manifests are placed side by side (``linked``) rather
    than the values re-encoded."""

    where: str
    chunks: tuple[int, ...]
    linked: bool


def _plan_variables(
    store: Blockstore, inputs: list[Hierarchy], group: str, dim: str, check_coords: bool
) -> dict[str, tuple[list[ArrayNode], _Join]]:
    """Check the inputs can be joined along ``dim`` and plan every variable that has it;
    refuse (IncompatibleDatasetsError) before anything is written."""
    names = [set(h.arrays(group)) for h in inputs]
    for n, these in enumerate(names[1:], 2):
        if these != names[0]:
            raise IncompatibleDatasetsError(
                f"dataset {n} ({inputs[n - 1].label}) has variables {sorted(these ^ names[0])} "
                "that dataset 1 does not have, or lacks them. Drop them first "
                "(ipldwrite.ops.drop_vars) or merge them in separately."
            )
    if dim in names[0]:
        _check_calendars([h.arrays(group)[dim] for h in inputs], dim)
        if check_coords:
            _check_monotonic(store, inputs, join_path(group, dim), dim)
    along: dict[str, tuple[list[ArrayNode], _Join]] = {}
    coordinates = set.union(
        *(coordinate_like(h.arrays(group), attrs_of(h.group(group))) for h in inputs)
    )
    for name in sorted(names[0]):
        nodes = [h.arrays(group)[name] for h in inputs]
        where = f"variable {name!r}"
        if dim in dims_of(nodes[0], where):
            _check_joinable(nodes, dim, where, is_coordinate=name == dim)
            along[name] = nodes, _plan(nodes, name, dim, where, name in coordinates)
        else:
            _check_identical(nodes, inputs, where, dim)
    if not along:
        raise IncompatibleDatasetsError(f"no variable has dimension {dim!r}: nothing to concat")
    return along


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
        for ax, (a, b) in enumerate(zip(node.keys.shape, first.keys.shape, strict=True)):
            if ax != axis and a != b:
                raise IncompatibleDatasetsError(
                    f"{where}: {dims[ax]!r} has {a} entries in dataset {n} but {b} in "
                    f"dataset 1; concat along {dim!r} needs all other dimensions equal"
                )


def _joined_shape(nodes: list[ArrayNode], axis: int) -> list[int]:
    shape = list(nodes[0].keys.shape)
    shape[axis] = sum(n.keys.shape[axis] for n in nodes)
    return shape


def _linkable(nodes: list[ArrayNode], axis: int) -> bool:
    """One chunk shape, and every input but the last a whole number of chunks along axis."""
    chunks = nodes[0].keys.chunk_shape
    return all(n.keys.chunk_shape == chunks for n in nodes) and all(
        n.keys.shape[axis] % chunks[axis] == 0 for n in nodes[:-1]
    )


def _plan(nodes: list[ArrayNode], name: str, dim: str, where: str, coordinate: bool) -> _Join:
    """The joined variable's canonical chunk shape, and whether its chunks are linked;
    refuse when reaching it would need chunk data re-encoded (more than a small
    coordinate-like array)."""
    axis = dims_of(nodes[0], where).index(dim)
    shape = _joined_shape(nodes, axis)
    linkable = _linkable(nodes, axis)
    chunks = canonical_chunks(nodes, shape, linkable=linkable, coordinate=coordinate, axis=axis)
    if chunks is None:
        raise IncompatibleDatasetsError(
            f"{where}: chunk shapes {[n.keys.chunk_shape for n in nodes]} differ between the "
            "inputs and are not what zarr picks automatically for each input, so no single "
            "write of the joined dataset gives them; rechunk the inputs alike"
        )
    # Linkable inputs share one chunk shape: linked when it is the result's.
    linked = linkable and nodes[0].keys.chunk_shape == chunks
    if linked or may_reencode(nodes[0], name, shape, chunks):
        return _Join(where, chunks, linked)
    if chunks != nodes[0].keys.chunk_shape:
        raise IncompatibleDatasetsError(
            f"{where}: a single write of the joined dataset chunks it {chunks} (zarr's "
            f"automatic chunking for shape {tuple(shape)}: the inputs are each chunked "
            "automatically, as numpy-backed variables are), but the inputs are chunked "
            f"{[n.keys.chunk_shape for n in nodes]}; that would re-encode its chunk data. "
            "Give the variable explicit chunks (encoding={name: {'chunks': ...}} or Dask "
            "chunks) when writing the inputs, or write the joined dataset with `to_ipld_zarr`"
        )
    for n, node in enumerate(nodes[:-1], 1):
        if node.keys.shape[axis] % chunks[axis]:
            raise _misaligned(n, node.keys.shape[axis], dim, chunks[axis], where)
    raise IncompatibleDatasetsError(
        f"{where}: the last input is chunked {nodes[-1].keys.chunk_shape} but the others "
        f"{chunks}; in the joined dataset its chunks would be cut as {chunks}, which would "
        "re-encode its chunk data. Write the last piece with the same chunks "
        f"(encoding={{{name!r}: {{'chunks': {chunks}}}}}), or write the joined dataset with "
        "`to_ipld_zarr`"
    )


def _concat_array(
    store: Blockstore,
    io: NodeIO,
    nodes: list[ArrayNode],
    inputs: list[Hierarchy],
    dim: str,
    plan: _Join,
    combine_attrs: CombineAttrs,
) -> ArrayNode:
    first, where, chunks = nodes[0], plan.where, plan.chunks
    axis = dims_of(first, where).index(dim)
    all_attrs = [attrs_of(n) for n in nodes]
    if dims_of(first, where) == [dim] and _time_units_differ(all_attrs):
        return _concat_times(store, nodes, inputs, all_attrs, chunks, combine_attrs, where)
    attrs = combine(all_attrs, combine_attrs, where)
    shape = _joined_shape(nodes, axis)
    if not plan.linked:
        values = np.concatenate(
            [read_values(store, h.root, n.path) for h, n in zip(inputs, nodes, strict=True)],  # type: ignore[arg-type]
            axis=axis,
        )
        return with_attrs(rewrite_array(store, first, shape, values, chunks), attrs)  # type: ignore[no-any-return]
    target = with_shape(first, shape, None)
    sources = []
    offset = 0
    for n, node in enumerate(nodes, 1):
        chunk_offset = [0] * len(shape)
        chunk_offset[axis] = offset // chunks[axis]
        sources.append(
            Source(node.tiling, node.manifest, offset=tuple(chunk_offset), label=f"dataset {n}")
        )
        offset += node.keys.shape[axis]
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
    chunks: tuple[int, ...],
    combine_attrs: CombineAttrs,
    where: str,
) -> ArrayNode:
    """Join time coordinates stored with different CF units (xarray picks the units from
    each file's first time step, so independently written years always differ): decode
    each and re-encode in the first input's units, as a direct write of the joined data
    would store them. Time coordinates are small 1-D arrays; data variables are not touched.
    """
    first = nodes[0]
    units, calendar = all_attrs[0]["units"], all_attrs[0].get("calendar", "standard")
    values = []
    for h, node, attrs in zip(inputs, nodes, all_attrs, strict=True):
        raw = read_values(store, h.root, node.path)  # type: ignore[arg-type]
        dates = decode_cf_datetime(raw, attrs["units"], attrs.get("calendar", "standard"))
        encoded = encode_cf_datetime(dates, units, calendar, dtype=raw.dtype)
        if not np.array_equal(decode_cf_datetime(encoded, units, calendar), dates):
            raise IncompatibleDatasetsError(
                f"{where}: times of an input cannot be stored exactly in {units!r}; re-write "
                "the inputs with one time encoding, e.g. encoding={'time': {'units': ...}}"
            )
        values.append(np.asarray(encoded, dtype=raw.dtype))
    joined = np.concatenate(values)
    check_decoding_attrs([{**a, "units": units} for a in all_attrs], where)
    attrs = combine([{**a, "units": units} for a in all_attrs], combine_attrs, where)
    return with_attrs(rewrite_array(store, first, [joined.shape[0]], joined, chunks), attrs)  # type: ignore[no-any-return]


def _check_calendars(nodes: list[ArrayNode], dim: str) -> None:
    """cftime dates of different calendars cannot be compared or stored in one array."""
    calendars = [attrs_of(n).get("calendar", "standard") for n in nodes]
    if len(set(calendars)) > 1:
        raise IncompatibleDatasetsError(
            f"coordinate {dim!r} uses the calendars {calendars} (one per input): dates of "
            "different calendars cannot be joined in one coordinate. Convert the inputs to "
            "one calendar first (xarray's Dataset.convert_calendar) and re-write them"
        )


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
        (to_ipld_zarr,) = _dataset_writer
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
