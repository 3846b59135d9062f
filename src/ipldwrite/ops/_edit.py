"""Merge, subset, rename, drop, set attributes, regroup and move: metadata rewrites only."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from multiformats import CID

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import (
    ArrayNode,
    GroupNode,
    Node,
    NodeIO,
    Source,
    assemble,
    join_path,
    parent_of,
    read_region,
)
from ipldwrite.errors import IncompatibleDatasetsError, MergeConflictError
from ipldwrite.ipld import Link, link_str, to_cid
from ipldwrite.ops._attrs import CombineAttrs, attrs_of, combine, with_attrs
from ipldwrite.ops._chunking import canonical_chunks, coordinate_like, may_reencode
from ipldwrite.ops._hierarchy import Hierarchy, dims_of, read_values, rewrite_array
from ipldwrite.store import resolve_blockstore

BlockstoreLike = Blockstore | str | None
#: Attributes that xarray's CF encoders add after the user's own (and "coordinates").
_ENCODER_ATTRS = frozenset({"_FillValue", "missing_value", "scale_factor", "add_offset", "dtype"})
_NEW_GROUP: dict[str, Any] = {"zarr_format": 3, "node_type": "group", "attributes": {}}


def merge(
    cids: Sequence[CID | str],
    blockstore: BlockstoreLike = None,
    *,
    group: str = "",
    combine_attrs: CombineAttrs = "no_conflicts",
) -> CID:
    """The union of the variables of datasets that share their coordinates.

    Every path is checked: a group, array or attribute present in several inputs must be
    identical in all of them (same node, so same metadata and same chunks — checked by
    CID, never by reading data), and identical subtrees are shared. Only the group at
    ``group`` differs in kind: its members are the union of the inputs', and its
    attributes combine as xarray's ``combine_attrs`` (default ``"no_conflicts"``) combines
    them, in the order ``xr.merge`` gives (first input's keys first), so the root equals
    that of ``xr.merge`` of the inputs, then a write. Any other difference is a
    :class:`MergeConflictError` naming the path and both node CIDs.
    """
    store = resolve_blockstore(blockstore)
    inputs = [Hierarchy.load(store, cid) for cid in cids]
    if not inputs:
        raise ValueError("merge needs at least one dataset")
    out = _union(store, inputs, group)
    groups = [h.group(group) for h in inputs]
    _check_group_metadata(inputs, groups, group)
    all_attrs = [attrs_of(g) for g in groups]
    attrs = combine(
        [{k: v for k, v in a.items() if k != "coordinates"} for a in all_attrs],
        combine_attrs,
        f"group {'/' + group!r}",
    )
    attrs.update(_global_coordinates(out, group, all_attrs))
    out.nodes[group] = with_attrs(groups[0], attrs)
    return to_cid(out.write())


def _union(store: Blockstore, inputs: list[Hierarchy], group: str) -> Hierarchy:
    """Every node of every input, by path; a path that two inputs hold differently is a
    :class:`MergeConflictError` (the group at ``group`` and its ancestors excepted: their
    members are the union, from write_tree)."""
    out = Hierarchy(store, {})
    owner: dict[str, Hierarchy] = {}
    prefix = f"{group}/" if group else ""
    for h in inputs:
        h.group(group)
        for path, node in sorted(h.nodes.items()):  # parents first: report the top difference
            existing = out.nodes.setdefault(path, node)
            owner.setdefault(path, h)
            # The group and its ancestors get their members from write_tree: compare the rest.
            structural = path == group or prefix.startswith(f"{path}/") or not path
            if structural and isinstance(node, GroupNode) and isinstance(existing, GroupNode):
                same = path == group or (existing.doc, existing.order) == (node.doc, node.order)
            else:
                same = existing == node
            if not same:
                a, b = _link_at(owner[path], path), _link_at(h, path)
                raise MergeConflictError(
                    f"{'/' + path!r} differs between the inputs ({owner[path].label}: "
                    f"{link_str(a)}, {h.label}: {link_str(b)}): merge joins datasets whose "
                    "shared groups, variables and attributes are identical. Rename one "
                    "(ipldwrite.ops.rename), drop it, or concat instead.",
                    path="/" + path,
                    cids=(to_cid(a), to_cid(b)),
                )
    return out


def _check_group_metadata(inputs: list[Hierarchy], groups: list[GroupNode], group: str) -> None:
    """The merged group's zarr.json, but for its attributes, must be the same in all inputs."""
    docs = [{k: v for k, v in (g.doc or {}).items() if k != "attributes"} for g in groups]
    for h, doc in zip(inputs[1:], docs[1:], strict=True):
        if doc != docs[0]:
            a, b = _link_at(inputs[0], group), _link_at(h, group)
            raise MergeConflictError(
                f"group {'/' + group!r} has different zarr.json metadata in {inputs[0].label} "
                f"and {h.label}",
                path="/" + group,
                cids=(to_cid(a), to_cid(b)),
            )


def _global_coordinates(
    out: Hierarchy, group: str, all_attrs: list[dict[str, Any]]
) -> dict[str, str]:
    """The group's ``coordinates`` attribute as xarray writes the merged dataset: the
    coordinates that no variable's ``coordinates`` attribute names (an input may have
    listed one there only because its variables did not use it), last, sorted."""
    listed = {t for a in all_attrs for t in str(a.get("coordinates", "")).split()}
    used = {
        t
        for node in out.arrays(group).values()
        for t in str(attrs_of(node).get("coordinates", "")).split()
    }
    rest = sorted(listed - used)
    return {"coordinates": " ".join(rest)} if rest else {}


def _link_at(h: Hierarchy, path: str) -> Link:
    """The CID of the node at ``path``, from its parent's members."""
    if not path:
        assert h.root is not None
        return h.root
    parent, name = parent_of(path)
    node = h.nodes[parent]
    assert isinstance(node, GroupNode)
    return node.members[name]


def isel(
    root: CID | str,
    indexers: Mapping[str, slice | int],
    blockstore: BlockstoreLike = None,
    *,
    group: str = "",
) -> CID:
    """Subset along dimensions with chunk-aligned slices (``{"time": slice(0, 365)}``) or
    integers, which drop the dimension as xarray does (its coordinate becomes a scalar
    coordinate, named in the ``coordinates`` attribute of the variables that had the
    dimension).

    Data variables are windowed by manifest: a slice must start on a chunk boundary and end
    on one (or at the end); an integer needs chunks of 1 along its dimension. Variables
    that a single write of the subset chunks otherwise (:mod:`._chunking`) are re-encoded
    when small and refused when not.
    """
    store = resolve_blockstore(blockstore)
    h = Hierarchy.load(store, root)
    io = NodeIO(store)
    arrays = h.arrays(group)
    missing = set(indexers) - {d for n in arrays.values() for d in dims_of(n, "")}
    if missing:
        raise ValueError(f"dimensions {sorted(missing)} do not exist in the dataset")
    plans = {}
    coordinates = coordinate_like(arrays, attrs_of(h.group(group)))
    for name, node in arrays.items():
        where = f"variable {name!r}"
        lo, hi, drop = _selection(node, indexers, where)
        if lo == [0] * len(lo) and hi == list(node.keys.shape):
            continue
        # Every window is planned before anything is written: a refused isel writes nothing.
        plans[name] = _plan_window(node, name, lo, hi, drop, where, name in coordinates)
    for name, plan in plans.items():
        where = f"variable {name!r}"
        h.nodes[join_path(group, name)] = _window(store, io, h, arrays[name], plan, where)
    scalars = [d for d, sel in indexers.items() if not isinstance(sel, slice) and d in arrays]
    if scalars:
        _name_scalar_coordinates(h, group, scalars)
    return to_cid(h.write())


def _selection(
    node: ArrayNode, indexers: Mapping[str, slice | int], where: str
) -> tuple[list[int], list[int], list[int]]:
    """The window [lo, hi) of ``node`` that ``indexers`` select, and the axes that an
    integer drops."""
    dims = dims_of(node, where)
    lo = [0] * len(dims)
    hi = list(node.keys.shape)
    drop: list[int] = []
    for dim, sel in indexers.items():
        if dim not in dims:
            continue
        axis = dims.index(dim)
        if isinstance(sel, slice):
            start, stop, step = sel.indices(hi[axis])
            if step != 1:
                raise ValueError(
                    f"isel by manifest takes contiguous slices; got step {step} for {dim!r}"
                )
            lo[axis], hi[axis] = start, max(start, stop)
            continue
        i = operator.index(sel)
        if not -hi[axis] <= i < hi[axis]:
            raise IndexError(f"index {i} is out of bounds for {dim!r} of size {hi[axis]}")
        lo[axis] = i % hi[axis]
        hi[axis] = lo[axis] + 1
        drop.append(axis)
    return lo, hi, drop


@dataclass(frozen=True)
class _Window:
    lo: list[int]
    hi: list[int]
    drop: list[int]
    chunks: tuple[int, ...]
    #: The subset is whole chunks of the input, linked as they are (else re-encoded).
    linked: bool


def _plan_window(
    node: ArrayNode,
    name: str,
    lo: list[int],
    hi: list[int],
    drop: list[int],
    where: str,
    coordinate: bool,
) -> _Window:
    """How to window ``node``: by manifest (``linked``: whole chunks, kept as they are) or
    by re-encoding its values, which only small coordinate-like arrays may be."""
    chunks = node.keys.chunk_shape
    shape = [b - a for axis, (a, b) in enumerate(zip(lo, hi, strict=True)) if axis not in drop]
    aligned = all(
        a % c == 0 and (b % c == 0 or b == size) and (axis not in drop or c == 1)
        for axis, (a, b, c, size) in enumerate(zip(lo, hi, chunks, node.keys.shape, strict=True))
    )
    # Dropping an axis keeps a chunk's bytes only when no codec depends on its shape.
    shape_free = not drop or all(
        c.get("name") not in ("transpose", "sharding_indexed") for c in node.doc.get("codecs", [])
    )
    canonical = canonical_chunks(
        [node], shape, linkable=aligned and shape_free, coordinate=coordinate
    )
    assert canonical is not None  # one input always shares its own chunk shape
    if len(canonical) != len(shape):  # the input's own chunks, less the dropped axes
        canonical = tuple(c for axis, c in enumerate(canonical) if axis not in drop)
    kept = tuple(c for axis, c in enumerate(chunks) if axis not in drop)
    linked = aligned and shape_free and canonical == kept
    if not linked and not may_reencode(node, name, shape, canonical):
        dims = dims_of(node, where)
        window = ", ".join(f"{d}[{a}:{b}]" for d, a, b in zip(dims, lo, hi, strict=True))
        why = (
            f"does not fall on chunk boundaries (chunks {chunks})"
            if aligned is False or not shape_free
            else f"is chunked {canonical} by a single write of the subset, not {chunks}"
        )
        raise IncompatibleDatasetsError(
            f"{where}: the selection {window} {why}, so its chunk data would be re-encoded. "
            "Select on chunk boundaries (integers need chunks of 1 along their dimension), "
            "or subset with xarray and re-write with `to_ipld_zarr`"
        )
    return _Window(lo, hi, drop, canonical, linked)


def _window(
    store: Blockstore,
    io: NodeIO,
    h: Hierarchy,
    node: ArrayNode,
    plan: _Window,
    where: str,
) -> ArrayNode:
    lo, hi, drop, chunks = plan.lo, plan.hi, plan.drop, plan.chunks
    keep = [axis for axis in range(len(lo)) if axis not in drop]
    shape = [hi[axis] - lo[axis] for axis in keep]
    old = node.keys.chunk_shape
    doc = dict(node.doc)
    doc["dimension_names"] = [d for axis, d in enumerate(dims_of(node, where)) if axis in keep]
    if not keep:
        del doc["dimension_names"]  # as xarray writes 0-d variables
    if not plan.linked:
        window = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        values = read_values(store, h.root, node.path)[window]  # type: ignore[arg-type]
        renamed = ArrayNode(doc, node.manifest, node.path, node.order)
        return rewrite_array(store, renamed, shape, values.reshape(shape), chunks)
    grid = doc["chunk_grid"]
    doc["chunk_grid"] = dict(
        grid, configuration=dict(grid["configuration"], chunk_shape=list(chunks))
    )
    doc["shape"] = shape
    target = ArrayNode(doc, None, node.path, node.order)
    lo_c = tuple(a // c for a, c in zip(lo, old, strict=True))
    hi_c = tuple(-(-b // c) for b, c in zip(hi, old, strict=True))
    if not drop:
        source = Source(
            node.tiling, node.manifest, offset=tuple(-x for x in lo_c), lo=lo_c, hi=hi_c
        )
        return target.with_manifest(assemble(io, target.tiling, [source], what=where))
    # Dropped axes have chunks of 1: the chunks are the same bytes, at fewer coordinates.
    cells = read_region(io, node.tiling, node.manifest, lo_c, hi_c)
    cells = cells.reshape(tuple(cells.shape[axis] for axis in keep))
    present = np.argwhere(cells.astype(bool))  # links are truthy: no Link.__eq__ per cell
    updates = {tuple(int(i) for i in at): cells[tuple(at)] for at in present}
    return target.with_manifest(assemble(io, target.tiling, updates=updates, what=where))


def _name_scalar_coordinates(h: Hierarchy, group: str, names: list[str]) -> None:
    """Name new scalar coordinates in the ``coordinates`` attribute of every data variable,
    sorted, as xarray's CF encoder writes a dataset with scalar coordinates."""
    arrays = h.arrays(group)
    listed = {t for n in arrays.values() for t in str(attrs_of(n).get("coordinates", "")).split()}
    for name, node in arrays.items():
        if name in names or name in listed or dims_of(node, name) == [name]:
            continue
        attrs = attrs_of(node)
        tokens = set(str(attrs.get("coordinates", "")).split()) | set(names)
        value = " ".join(sorted(tokens))
        if "coordinates" in attrs:
            attrs["coordinates"] = value
        else:
            # xarray adds it to the user's attributes before its encoders add theirs.
            at = next((i for i, k in enumerate(attrs) if k in _ENCODER_ATTRS), len(attrs))
            items = list(attrs.items())
            attrs = dict([*items[:at], ("coordinates", value), *items[at:]])
        h.nodes[join_path(group, name)] = with_attrs(node, attrs)


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
