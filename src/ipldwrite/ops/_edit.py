"""Merge, subset, rename, drop, set attributes, regroup and move: metadata rewrites only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from multiformats import CID

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import ArrayNode, GroupNode, Node, NodeIO, Source, assemble, join_path
from ipldwrite.errors import IncompatibleDatasetsError
from ipldwrite.ipld import to_cid
from ipldwrite.ops._attrs import CombineAttrs, attrs_of, combine, with_attrs
from ipldwrite.ops._concat import SMALL_COORDINATE
from ipldwrite.ops._hierarchy import Hierarchy, dims_of, read_values, rewrite_array, with_shape
from ipldwrite.store import resolve_blockstore

BlockstoreLike = Blockstore | str | None
_NEW_GROUP: dict[str, Any] = {"zarr_format": 3, "node_type": "group", "attributes": {}}


def merge(
    cids: Sequence[CID | str],
    blockstore: BlockstoreLike = None,
    *,
    group: str = "",
    combine_attrs: CombineAttrs = "no_conflicts",
) -> CID:
    """The union of the variables of datasets that share their coordinates.

    A variable present in several inputs must be identical in all of them (same node, so
    same metadata and same chunks — checked by CID, never by reading data). The result does
    not depend on the order of ``cids``: group attributes combine with an order-free policy
    (default ``"no_conflicts"``) and, unless all inputs agree, are stored in canonical order.
    """
    store = resolve_blockstore(blockstore)
    inputs = [Hierarchy.load(store, cid) for cid in cids]
    if not inputs:
        raise ValueError("merge needs at least one dataset")
    out = Hierarchy(store, {})
    prefix = f"{group}/" if group else ""
    for h in sorted(inputs, key=lambda h: h.root.cid_bytes):  # type: ignore[union-attr]
        for path, node in h.nodes.items():
            if path == group or not path.startswith(prefix):
                out.nodes.setdefault(path, node)  # the group itself and its ancestors
                continue
            existing = out.nodes.setdefault(path, node)
            if existing != node:
                raise IncompatibleDatasetsError(
                    f"{'/' + path!r} differs between the inputs ({h.label} and another): "
                    "merge joins datasets whose shared variables and coordinates are "
                    "identical. Rename one (ipldwrite.ops.rename), drop it, or concat instead."
                )
    groups = [h.group(group) for h in inputs]
    all_attrs = [attrs_of(g) for g in groups]
    attrs = combine(all_attrs, combine_attrs, f"group {'/' + group!r}")
    if any(list(a) != list(all_attrs[0]) for a in all_attrs):
        attrs = dict(sorted(attrs.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode())))
    out.nodes[group] = with_attrs(groups[0], attrs)
    return to_cid(out.write())


def isel(
    root: CID | str,
    indexers: Mapping[str, slice],
    blockstore: BlockstoreLike = None,
    *,
    group: str = "",
) -> CID:
    """Subset along dimensions with chunk-aligned slices (``{"time": slice(0, 365)}``).

    Data variables are windowed by manifest: a slice must start on a chunk boundary and end
    on one (or at the end). Small 1-D coordinates whose chunks do not line up are re-written.
    """
    store = resolve_blockstore(blockstore)
    h = Hierarchy.load(store, root)
    io = NodeIO(store)
    for name, node in h.arrays(group).items():
        where = f"variable {name!r}"
        dims = dims_of(node, where)
        lo = [0] * len(dims)
        hi = list(node.keys.shape)
        for dim, sel in indexers.items():
            if dim not in dims:
                continue
            axis = dims.index(dim)
            start, stop, step = sel.indices(hi[axis])
            if step != 1:
                raise ValueError(
                    f"isel by manifest takes contiguous slices; got step {step} for {dim!r}"
                )
            lo[axis], hi[axis] = start, max(start, stop)
        if lo == [0] * len(dims) and hi == list(node.keys.shape):
            continue
        h.nodes[join_path(group, name)] = _window(store, io, h, node, lo, hi, dims, where)
    missing = set(indexers) - {d for n in h.arrays(group).values() for d in dims_of(n, "")}
    if missing:
        raise ValueError(f"dimensions {sorted(missing)} do not exist in the dataset")
    return to_cid(h.write())


def _window(
    store: Blockstore,
    io: NodeIO,
    h: Hierarchy,
    node: ArrayNode,
    lo: list[int],
    hi: list[int],
    dims: list[str],
    where: str,
) -> ArrayNode:
    chunks = node.keys.chunk_shape
    shape = [b - a for a, b in zip(lo, hi, strict=True)]
    for axis, (a, b, c, size) in enumerate(zip(lo, hi, chunks, node.keys.shape, strict=True)):
        if a % c or (b % c and b != size):
            if len(dims) == 1 and int(np.prod(node.keys.shape)) * 16 <= SMALL_COORDINATE:
                values = read_values(store, h.root, node.path)[a:b]  # type: ignore[arg-type]
                return rewrite_array(store, node, shape, values)
            raise IncompatibleDatasetsError(
                f"{where}: the slice {a}:{b} of {dims[axis]!r} does not fall on chunk boundaries "
                f"(chunk size {c}); use multiples of {c} (or the end), or subset with xarray and "
                "re-write with `to_ipld_zarr`"
            )
    target = with_shape(node, shape, None)
    lo_c = tuple(a // c for a, c in zip(lo, chunks, strict=True))
    hi_c = tuple(-(-b // c) for b, c in zip(hi, chunks, strict=True))
    source = Source(node.tiling, node.manifest, offset=tuple(-x for x in lo_c), lo=lo_c, hi=hi_c)
    return target.with_manifest(assemble(io, target.tiling, [source], what=where))


def _rename_tokens(value: Any, mapping: Mapping[str, str]) -> Any:
    return " ".join(mapping.get(t, t) for t in value.split()) if isinstance(value, str) else value


def rename(
    root: CID | str,
    mapping: Mapping[str, str],
    blockstore: BlockstoreLike = None,
    *,
    group: str = "",
) -> CID:
    """Rename variables and/or dimensions (like ``Dataset.rename``); updates
    ``dimension_names`` and CF ``coordinates`` attributes."""
    store = resolve_blockstore(blockstore)
    h = Hierarchy.load(store, root)
    arrays = h.arrays(group)
    known = set(arrays) | {d for n in arrays.values() for d in dims_of(n, "")}
    unknown = set(mapping) - known
    if unknown:
        raise ValueError(f"cannot rename {sorted(unknown)}: no such variable or dimension")
    if bad := sorted(new for new in mapping.values() if "/" in new or new in ("", ".", "..")):
        raise ValueError(f"cannot rename to {bad}: a name has no '/' (use move for paths)")
    for name, node in arrays.items():
        new = mapping.get(name, name)
        if new != name and new in arrays and new not in mapping:
            raise IncompatibleDatasetsError(f"cannot rename {name!r} to {new!r}: it exists")
        doc = dict(node.doc)
        doc["dimension_names"] = [mapping.get(d, d) for d in dims_of(node, name)]
        attrs = attrs_of(node)
        if "coordinates" in attrs:
            attrs["coordinates"] = _rename_tokens(attrs["coordinates"], mapping)
        renamed = with_attrs(ArrayNode(doc, node.manifest, join_path(group, new)), attrs)
        del h.nodes[join_path(group, name)]
        h.nodes[join_path(group, new)] = renamed
    return to_cid(h.write())


def drop_vars(
    root: CID | str,
    names: Iterable[str],
    blockstore: BlockstoreLike = None,
    *,
    group: str = "",
    errors: str = "raise",
) -> CID:
    """Remove variables; CF ``coordinates`` attributes that name them are updated."""
    store = resolve_blockstore(blockstore)
    h = Hierarchy.load(store, root)
    arrays = h.arrays(group)
    drop = set(names)
    if errors == "raise" and drop - set(arrays):
        raise ValueError(f"cannot drop {sorted(drop - set(arrays))}: no such variable")
    for name in drop & set(arrays):
        del h.nodes[join_path(group, name)]
    for name, node in h.arrays(group).items():
        attrs = attrs_of(node)
        if isinstance(attrs.get("coordinates"), str):
            kept = [t for t in attrs["coordinates"].split() if t not in drop]
            if kept != attrs["coordinates"].split():
                if kept:
                    attrs["coordinates"] = " ".join(kept)
                else:
                    del attrs["coordinates"]
                h.nodes[join_path(group, name)] = with_attrs(node, attrs)
    return to_cid(h.write())


def assign_attrs(
    root: CID | str,
    attrs: Mapping[str, Any],
    blockstore: BlockstoreLike = None,
    *,
    variable: str | None = None,
    group: str = "",
) -> CID:
    """Set attributes of the group (or of ``variable``); a None value deletes a key."""
    store = resolve_blockstore(blockstore)
    h = Hierarchy.load(store, root)
    path = join_path(group, variable) if variable is not None else group
    node = h.nodes.get(path)
    if node is None:
        raise ValueError(f"no variable or group at {'/' + path!r}")
    current = attrs_of(node)
    for key, value in attrs.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    if isinstance(node, GroupNode) and node.doc is None:
        node = GroupNode(dict(_NEW_GROUP), node.members, node.path)
    h.nodes[path] = with_attrs(node, current)
    return to_cid(h.write())


def regroup(
    datasets: Mapping[str, CID | str],
    blockstore: BlockstoreLike = None,
    *,
    attrs: Mapping[str, Any] | None = None,
) -> CID:
    """A new root whose groups are whole datasets: ``{"era5": cid1, "cmip6": cid2}``.

    Each dataset keeps its root node as it is (linked, not copied)."""
    store = resolve_blockstore(blockstore)
    nodes: dict[str, Node] = {"": GroupNode(dict(_NEW_GROUP, attributes=dict(attrs or {})), {})}
    for name, cid in datasets.items():
        for path, node in Hierarchy.load(store, cid).nodes.items():
            nodes[join_path(name, path) if path else name] = node
    return to_cid(Hierarchy(store, nodes).write())


def move(root: CID | str, source: str, destination: str, blockstore: BlockstoreLike = None) -> CID:
    """Move a group or array (and everything under it) to another path."""
    store = resolve_blockstore(blockstore)
    h = Hierarchy.load(store, root)
    source, destination = source.strip("/"), destination.strip("/")
    if source not in h.nodes or not source:
        raise ValueError(f"nothing to move at {'/' + source!r}")
    if destination in h.nodes:
        raise ValueError(f"{'/' + destination!r} already exists")
    if destination.startswith(source + "/"):
        raise ValueError("cannot move a node into itself")
    for path, node in h.subtree(source).items():
        del h.nodes[path]
        h.nodes[destination + path[len(source) :]] = node
    parent = destination.rpartition("/")[0]
    while parent and parent not in h.nodes:  # new intermediate groups are explicit zarr groups
        h.nodes[parent] = GroupNode(dict(_NEW_GROUP), {}, parent)
        parent = parent.rpartition("/")[0]
    return to_cid(h.write())
