"""The chunk manifest: a tree of DAG-CBOR lists over the tiles of :mod:`._tiling`.

A node is a plain list, in C order over the cells (leaves) or child tiles (inner nodes) it
covers, clipped to the grid; each item is a link or null. A node whose items are all null is
not written: its parent holds null instead, and an empty manifest is null. The tree is
therefore a pure function of the set of (chunk index → link).

:func:`assemble` is the one engine behind building, updating, merging, shifting and
subsetting manifests. It reuses a source node by link wherever that node covers exactly the
tile being built — same tile shapes below, same position, same clipped extent — so merging
partial manifests over disjoint regions, concatenating along aligned tiles and appending
rewrite only the nodes on the seams.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from math import prod
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag._leafbytes import merge_leaf_bytes
from ipldwrite.dag._lru import LRU
from ipldwrite.dag._tiling import Tiling
from ipldwrite.errors import FormatError, MergeConflictError
from ipldwrite.ipld import DAG_CBOR, Link, LinkLabel, decode, encode, link_str, to_cid

__all__ = [
    "NodeIO",
    "Source",
    "assemble",
    "iter_entries",
    "lookup",
    "read_region",
]

Entry = Link | None
Index = tuple[int, ...]
_ENTRY_TYPES = frozenset({Link, type(None)})


class NodeIO:
    """Reads and writes manifest nodes through a blockstore, keeping recent decoded nodes."""

    def __init__(self, blockstore: Blockstore, *, cache_nodes: int = 64) -> None:
        self.blockstore = blockstore
        # A merge or a window reads the same few inner nodes once per child it descends
        # into: ``cache_nodes`` decoded nodes (at most 4096 items each) are kept.
        self._cache: LRU[bytes, list[Entry]] = LRU(cache_nodes)
        self.reads = 0
        self.writes = 0

    def read(self, link: Link, length: int) -> list[Entry]:
        key = link.cid_bytes
        node = self._cache.get(key)
        if node is None:
            what = LinkLabel("manifest node ", link)
            value = decode(self.blockstore.get(link), what=what)
            self.reads += 1
            # A cheap structural check: every item must be a link or null.
            types = set(map(type, value)) if isinstance(value, list) else {type(value)}
            if not isinstance(value, list) or not types <= _ENTRY_TYPES:
                raise FormatError(f"{what} is not a list of links and nulls")
            # By type, not value.count(None): comparing every link with None costs a
            # Python-level __eq__ per entry (a third of a concat's time).
            if types <= {type(None)}:
                # Writers put null in the parent instead: a second CID for the same manifest.
                raise FormatError(
                    f"{what} holds only nulls; writers never write such a node (its parent "
                    "holds null instead), so this manifest is not in canonical form"
                )
            node = self._cache.put(key, value)
        if len(node) != length:
            raise FormatError(
                f"manifest node {link_str(link)} has {len(node)} items where the array's "
                f"tiling needs {length}; the array metadata and its manifest disagree"
            )
        return node

    def read_bytes(self, link: Link) -> bytes:
        """A node's encoded bytes, undecoded (for :mod:`._leafbytes`)."""
        data = self.blockstore.get(link)
        self.reads += 1
        return data if isinstance(data, bytes) else bytes(data)

    def write_bytes(self, data: bytes) -> Link:
        """Store an already encoded node (canonical DAG-CBOR, as :meth:`write` makes)."""
        self.writes += 1
        return self.blockstore.put(data, DAG_CBOR)

    def write(self, entries: list[Entry]) -> Link:
        data = encode(entries)
        link = self.blockstore.put(data, DAG_CBOR)
        self.writes += 1
        self._cache.put(link.cid_bytes, entries)
        return link


def _flat(coords: Sequence[int], extent: Sequence[int]) -> int:
    pos = 0
    for c, e in zip(coords, extent, strict=True):
        pos = pos * e + c
    return pos


def _ravel(coords: npt.NDArray[np.int64], extent: Sequence[int]) -> npt.NDArray[np.intp]:
    """Flat C-order positions of the rows of ``coords`` in a node of ``extent``."""
    if not extent:
        # A 0-d array's one cell: numpy would give a scalar here, and assigning the
        # updates through a scalar index would store the whole array in that cell.
        return np.zeros(len(coords), dtype=np.intp)
    flat: npt.NDArray[np.intp] = np.ravel_multi_index(tuple(coords.T), tuple(extent))
    return flat


def _child_origins(tiling: Tiling, level: int, origin: Index) -> Iterator[tuple[int, Index]]:
    """(position, origin) of every child slot of a node, in C order."""
    child = tiling.tiles[level - 1]
    extent = tiling.extent(level, origin)
    for pos, coords in enumerate(np.ndindex(*extent)):
        yield pos, tuple(o + c * t for o, c, t in zip(origin, coords, child, strict=True))


def _node_hi(tiling: Tiling, level: int, origin: Index) -> Index:
    return tuple(
        min(o + t, g) for o, t, g in zip(origin, tiling.tiles[level], tiling.grid, strict=True)
    )


def _descend(
    io: NodeIO, tiling: Tiling, root: Link | None, index: Index, level: int
) -> tuple[Entry, Index]:
    """The one descent by position: the link and origin of the node at ``level`` whose tile
    holds ``index`` (a chunk index, or a tile's origin), or None where a link on the way
    is null. Lookups and merges (through :meth:`Source.node`) both use it."""
    node: Entry = root
    origin = (0,) * tiling.ndim
    for lvl in range(tiling.top, level, -1):
        if node is None:
            break
        child = tiling.tiles[lvl - 1]
        extent = tiling.extent(lvl, origin)
        coords = [(i - o) // t for i, o, t in zip(index, origin, child, strict=True)]
        node = io.read(node, prod(extent))[_flat(coords, extent)]
        origin = tuple(o + c * t for o, c, t in zip(origin, coords, child, strict=True))
    return node, origin


def lookup(io: NodeIO, tiling: Tiling, root: Link | None, index: Index) -> Entry:
    """The link of chunk ``index``, or None if that chunk was never written."""
    leaf, origin = _descend(io, tiling, root, index, 0)
    if leaf is None:
        return None
    extent = tiling.extent(0, origin)
    cell = [i - o for i, o in zip(index, origin, strict=True)]
    return io.read(leaf, prod(extent))[_flat(cell, extent)]


def _leaves(
    io: NodeIO, tiling: Tiling, root: Link | None, lo: Index, hi: Index
) -> Iterator[tuple[Index, Index, list[Entry]]]:
    """The one walk over a region: (origin, extent, items) of every leaf that overlaps
    the chunk indices [lo, hi), in C order of the leaves, skipping null subtrees."""
    if root is None:
        return
    stack: list[tuple[int, Index, Link]] = [(tiling.top, (0,) * tiling.ndim, root)]
    while stack:
        level, origin, link = stack.pop()
        extent = tiling.extent(level, origin)
        entries = io.read(link, prod(extent))
        if level == 0:
            yield origin, extent, entries
            continue
        children = []
        for pos, child_origin in _child_origins(tiling, level, origin):
            child = entries[pos]
            if child is None:
                continue
            child_hi = _node_hi(tiling, level - 1, child_origin)
            if all(
                a < h and b > low
                for a, b, low, h in zip(child_origin, child_hi, lo, hi, strict=True)
            ):
                children.append((level - 1, child_origin, child))
        stack.extend(reversed(children))


def iter_entries(io: NodeIO, tiling: Tiling, root: Link | None) -> Iterator[tuple[Index, Link]]:
    """Every (chunk index, link), tile by tile."""
    for origin, extent, entries in _leaves(io, tiling, root, (0,) * tiling.ndim, tiling.grid):
        for coords, entry in zip(np.ndindex(*extent), entries, strict=True):
            if entry is not None:
                yield tuple(o + c for o, c in zip(origin, coords, strict=True)), entry


def _object_array(entries: Sequence[Entry], shape: Sequence[int]) -> npt.NDArray[Any]:
    # fromiter, not ``arr[:] = entries``: numpy then skips probing every item for nesting,
    # which makes it ~5x faster on the 4096-entry lists a merge reads by the thousand.
    return np.fromiter(entries, dtype=object, count=len(entries)).reshape(tuple(shape))


def read_region(
    io: NodeIO, tiling: Tiling, root: Link | None, lo: Index, hi: Index
) -> npt.NDArray[Any]:
    """The links of the chunks in [lo, hi) as an object array (None where never written)."""
    out = np.empty(tuple(h - low for low, h in zip(lo, hi, strict=True)), dtype=object)
    if out.size == 0:
        return out
    for origin, extent, entries in _leaves(io, tiling, root, lo, hi):
        node_hi = _node_hi(tiling, 0, origin)
        ilo = [max(a, b) for a, b in zip(lo, origin, strict=True)]
        ihi = [min(a, b) for a, b in zip(hi, node_hi, strict=True)]
        cells = _object_array(entries, extent)
        src = tuple(slice(a - o, b - o) for a, b, o in zip(ilo, ihi, origin, strict=True))
        dst = tuple(slice(a - low, b - low) for a, b, low in zip(ilo, ihi, lo, strict=True))
        out[dst] = cells[src]
    return out


@dataclass(frozen=True)
class Source:
    """One input to :func:`assemble`: a manifest, placed at ``offset`` in the target grid.

    Only its cells in the window [lo, hi) (source coordinates; default: its whole grid) are
    taken. ``label`` names it in conflict messages (anything printable, rendered only then).
    """

    tiling: Tiling
    root: Link | None
    offset: Index | None = None
    lo: Index | None = None
    hi: Index | None = None
    label: object = "input"
    _window: tuple[Index, Index, Index] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.tiling.ndim
        offset = self.offset or (0,) * n
        lo = self.lo or (0,) * n
        hi = self.hi or self.tiling.grid
        object.__setattr__(self, "_window", (offset, lo, hi))

    def to_source(self, target: Index) -> Index:
        """Target-grid chunk coordinates in this source's own grid."""
        return tuple(t - f for t, f in zip(target, self._window[0], strict=True))

    def holds_tile(self, origin: Index, hi: Index, tile: Index) -> bool:
        """Whether the target node [origin, hi) with tile shape ``tile`` is, inside this
        source's window, exactly one of its own tiles of that shape (same clipped extent),
        so that its node there can be taken by link."""
        offset, lo_w, hi_w = self._window
        for o, h, off, t, g, wl, wh in zip(
            origin, hi, offset, tile, self.tiling.grid, lo_w, hi_w, strict=True
        ):
            src = o - off
            if src % t or src < wl or src - o + h > wh or min(src + t, g) - src != h - o:
                return False
        return True

    def overlap(self, lo: Index, hi: Index) -> tuple[Index, Index] | None:
        """The part of the target region [lo, hi) this source covers, if any."""
        offset, wl, wh = self._window
        ilo = tuple(max(a, w + f) for a, w, f in zip(lo, wl, offset, strict=True))
        ihi = tuple(min(b, w + f) for b, w, f in zip(hi, wh, offset, strict=True))
        return (ilo, ihi) if all(a < b for a, b in zip(ilo, ihi, strict=True)) else None

    def node(self, io: NodeIO, level: int, origin: Index) -> Entry:
        """The link of this source's node at ``level`` whose tile starts at ``origin``."""
        return _descend(io, self.tiling, self.root, origin, level)[0]


def assemble(
    io: NodeIO,
    target: Tiling,
    sources: Sequence[Source] = (),
    updates: Mapping[Index, Entry] | None = None,
    *,
    what: str = "array",
) -> Link | None:
    """Build the manifest over ``target`` holding the union of ``sources`` and ``updates``.

    Sources must agree where they overlap (equal links merge silently, as idempotent retries
    do); different links for one chunk raise :class:`MergeConflictError`. ``updates`` win
    over sources, and a None update deletes a chunk.
    """
    if target.empty:
        return None
    live = [s for s in sources if s.root is not None]
    ndim = target.ndim
    if updates:
        idx = np.array(list(updates.keys()), dtype=np.int64).reshape(len(updates), ndim)
        vals = np.fromiter(updates.values(), dtype=object, count=len(updates))
        if ((idx < 0) | (idx >= np.array(target.grid))).any():
            bad = tuple(int(i) for i in idx[((idx < 0) | (idx >= target.grid)).any(axis=1)][0])
            raise FormatError(f"{what}: chunk index {bad} is outside the chunk grid {target.grid}")
    else:
        idx = np.empty((0, ndim), dtype=np.int64)
        vals = np.empty(0, dtype=object)
    builder = _Builder(io, target, what)
    return builder.build(target.top, (0,) * ndim, live, idx, vals)


class _Builder:
    def __init__(self, io: NodeIO, target: Tiling, what: str) -> None:
        self.io = io
        self.target = target
        self.what = what
        # How many levels, from the leaves up, a source's tiles share with the target's,
        # by the source's tile shapes (all that decides it).
        self._compat: dict[tuple[Index, ...], int] = {}

    def _aligned(self, s: Source, level: int, origin: Index, hi: Index) -> bool:
        compat = self._compat.get(s.tiling.tiles)
        if compat is None:
            compat = self._compat[s.tiling.tiles] = s.tiling.compatible_levels(self.target)
        if level >= compat or level > s.tiling.top:
            return False
        return s.holds_tile(origin, hi, self.target.tiles[level])

    def build(
        self,
        level: int,
        origin: Index,
        sources: list[Source],
        idx: npt.NDArray[np.int64],
        vals: npt.NDArray[Any],
        known: Sequence[Entry] | None = None,
    ) -> Entry:
        """The node at ``level`` whose tile starts at ``origin``.

        ``known`` holds each source's node here (in the order of ``sources``), when the
        parent already read them: merges then never walk down from a source's root again.
        """
        hi = _node_hi(self.target, level, origin)
        keep = [n for n, s in enumerate(sources) if s.overlap(origin, hi) is not None]
        relevant = [sources[n] for n in keep]
        if not relevant and not len(idx):
            return None
        if not len(idx) and all(self._aligned(s, level, origin, hi) for s in relevant):
            if known is not None:
                links: list[Entry] = [known[n] for n in keep]
            else:
                links = [s.node(self.io, level, s.to_source(origin)) for s in relevant]
            nodes = [(s, link) for s, link in zip(relevant, links, strict=True) if link is not None]
            distinct = {link.cid_bytes: link for _, link in nodes}
            if len(distinct) <= 1:
                return next(iter(distinct.values()), None)
            if level > 0:
                return self._merge_aligned(level, origin, nodes)
            return self._merge_leaves(origin, hi, nodes)
        if level == 0:
            return self._leaf(origin, hi, relevant, idx, vals)
        tiling = self.target
        child_tile = tiling.tiles[level - 1]
        extent = tiling.extent(level, origin)
        groups: dict[int, npt.NDArray[np.intp]] = {}
        if len(idx):
            coords = (idx - np.array(origin)) // np.array(child_tile)
            flat = _ravel(coords, extent)
            order = np.argsort(flat, kind="stable")
            keys, starts = np.unique(flat[order], return_index=True)
            bounds = [*starts[1:], len(order)]
            groups = {int(k): order[s:e] for k, s, e in zip(keys, starts, bounds, strict=True)}
        entries: list[Entry] = []
        none: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
        for pos, child_origin in _child_origins(tiling, level, origin):
            sel = groups.get(pos, none)
            entries.append(self.build(level - 1, child_origin, relevant, idx[sel], vals[sel]))
        if all(e is None for e in entries):
            return None
        return self.io.write(entries)

    def _merge_aligned(self, level: int, origin: Index, nodes: list[tuple[Source, Link]]) -> Entry:
        """Sources whose nodes here all have the target's layout: decide every child from
        their lists, and descend only where two or more of them hold different children.
        This keeps a merge proportional to the contested nodes, not to the tile count."""
        length = self.target.node_length(level, origin)
        lists = [(s, self.io.read(link, length)) for s, link in nodes]
        none: npt.NDArray[Any] = np.empty(0)
        empty_idx = np.empty((0, self.target.ndim), dtype=np.int64)
        entries: list[Entry] = []
        for pos, child_origin in _child_origins(self.target, level, origin):
            kids = [(s, entries_[pos]) for s, entries_ in lists if entries_[pos] is not None]
            distinct = {link.cid_bytes for _, link in kids}  # type: ignore[union-attr]
            if len(distinct) <= 1:
                entries.append(kids[0][1] if kids else None)
                continue
            entries.append(
                self.build(
                    level - 1,
                    child_origin,
                    [s for s, _ in kids],
                    empty_idx,
                    none,
                    [link for _, link in kids],
                )
            )
        if all(e is None for e in entries):
            return None
        return self.io.write(entries)

    def _conflict(self, chunk: Index, first: Source, a: Link, second: Source, b: Link) -> NoReturn:
        raise MergeConflictError(
            f"{self.what}: chunk {chunk} differs between {first.label} ({link_str(a)}) and "
            f"{second.label} ({link_str(b)}). Two writes produced different bytes for the same "
            "chunk: make the regions disjoint, or re-run the write that is wrong.",
            path=self.what,
            cids=(to_cid(a), to_cid(b)),
        )

    def _merge_leaves(self, origin: Index, hi: Index, leaves: list[tuple[Source, Link]]) -> Entry:
        """Union of aligned sources' own leaves here, all laid out as the target's leaf:
        one vectorised pass over a (sources × cells) array, the merge tree's hot loop."""
        extent = tuple(h - o for o, h in zip(origin, hi, strict=True))
        length = prod(extent)
        merged = merge_leaf_bytes([self.io.read_bytes(link) for _, link in leaves], length)
        if merged is not None:
            return self.io.write_bytes(merged)
        lists = [self.io.read(link, length) for _, link in leaves]
        cells = np.fromiter(
            chain.from_iterable(lists), dtype=object, count=len(lists) * length
        ).reshape(len(lists), length)
        # Truthiness, not ``!= None``: links have no __bool__, so this runs in C without
        # calling Link.__eq__ once per cell (6x faster on full leaves).
        present = cells.astype(bool)
        owner = present.argmax(axis=0)
        for pos in np.flatnonzero(present.sum(axis=0) > 1):
            holders = np.flatnonzero(present[:, pos])
            first = int(owner[pos])
            for other in holders:
                if cells[other, pos] != cells[first, pos]:
                    chunk = tuple(
                        int(c) + o
                        for c, o in zip(np.unravel_index(pos, extent), origin, strict=True)
                    )
                    self._conflict(
                        chunk,
                        leaves[first][0],
                        cells[first, pos],
                        leaves[int(other)][0],
                        cells[other, pos],
                    )
        if not present.any():  # only a foreign, non-canonical all-null node gets here
            return None
        entries: list[Entry] = cells[owner, np.arange(length)].tolist()
        return self.io.write(entries)

    def _leaf(
        self,
        origin: Index,
        hi: Index,
        sources: list[Source],
        idx: npt.NDArray[np.int64],
        vals: npt.NDArray[Any],
    ) -> Entry:
        """Build a leaf cell by cell from the sources' regions and the updates."""
        extent = tuple(h - o for o, h in zip(origin, hi, strict=True))
        out = np.empty(extent, dtype=object)
        owner = np.full(extent, -1, dtype=np.int32)
        for n, s in enumerate(sources):
            ilo, ihi = s.overlap(origin, hi) or (origin, origin)
            cells = read_region(self.io, s.tiling, s.root, s.to_source(ilo), s.to_source(ihi))
            dst = tuple(slice(a - o, b - o) for a, b, o in zip(ilo, ihi, origin, strict=True))
            present = cells.astype(bool)  # links are truthy: no Link.__eq__ per cell
            # The Ellipsis keeps these views for 0-d arrays too (out[()] is the item).
            window: Any = (*dst, Ellipsis)
            view, owners = out[window], owner[window]
            clash = present & (owners >= 0)
            if clash.any():
                for at in zip(*np.nonzero(clash), strict=True):
                    if view[at] != cells[at]:
                        chunk = tuple(
                            int(a) + d.start + o for a, d, o in zip(at, dst, origin, strict=True)
                        )
                        other = sources[int(owners[at])]
                        self._conflict(chunk, other, view[at], s, cells[at])
            view[present] = cells[present]
            owners[present] = n
        if len(idx):
            flat = _ravel(idx - np.array(origin), extent)
            out.reshape(-1)[flat] = vals
        entries: list[Entry] = out.reshape(-1).tolist()
        if all(e is None for e in entries):
            return None
        return self.io.write(entries)
