"""Turn a set of changed zarr keys into a new root CID.

The zarr store stages writes as key → value; this module interprets the resulting key space
as a zarr v3 hierarchy: ``zarr.json`` documents become group and array nodes, every other key
must be a chunk key of the array above it. Only arrays whose metadata or chunks changed get
new manifest nodes, and only along the tiles that changed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag._manifest import NodeIO, Source, assemble
from ipldwrite.dag._metadata import (
    ChunkKeys,
    attribute_order,
    doc_from_json_bytes,
    to_ipld_value,
)
from ipldwrite.dag._nodes import ArrayNode, GroupNode, Node
from ipldwrite.dag._tree import DatasetReader, parent_of, write_node, write_tree
from ipldwrite.errors import FormatError, TimestampedCodecWarning
from ipldwrite.ipld import Link, link_str

__all__ = ["ArrayInDataset", "commit_changes"]

Staged = Mapping[str, bytes | Link | None]
Index = tuple[int, ...]


def _owning_array(key: str, arrays: Mapping[str, Any]) -> tuple[str | None, str]:
    path = key
    while True:
        path, _, _ = path.rpartition("/")
        if path in arrays:
            return path, key[len(path) + 1 :] if path else key
        if not path:
            return ("", key) if "" in arrays else (None, key)


def commit_changes(blockstore: Blockstore, base: Link | None, staged: Staged) -> Link:
    """The root of ``base`` with ``staged`` applied (a None value deletes the key)."""
    base_nodes: dict[str, Node] = {}
    if base is not None:
        base_nodes = dict(DatasetReader(blockstore, base).walk())
    docs, orders = _metadata(base_nodes, staged)
    arrays = {p: d for p, d in docs.items() if d["node_type"] == "array"}
    restaged = {parent_of(key)[0] for key in staged if parent_of(key)[1] == "zarr.json"}
    # Here, not deeper: the warning's stacklevel points at the user's write.
    _warn_about_timestamped_codecs({p: d for p, d in arrays.items() if p in restaged})
    grids = {p: ChunkKeys.from_doc(d, p) for p, d in arrays.items()}
    updates = _chunk_updates(staged, grids)
    io = NodeIO(blockstore)
    nodes: dict[str, Node] = {}
    for path, doc in docs.items():
        if doc["node_type"] == "group":
            nodes[path] = GroupNode(doc, {}, path, orders.get(path))
        else:
            node = ArrayNode(doc, None, path, orders.get(path))
            nodes[path] = _updated_array(io, node, base_nodes.get(path), updates.get(path))
    return write_tree(blockstore, nodes)


def _metadata(
    base_nodes: Mapping[str, Node], staged: Staged
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every node's zarr.json document and attribute order: the base's, with the staged
    zarr.json keys applied (None deletes)."""
    docs: dict[str, dict[str, Any]] = {
        path: node.doc for path, node in base_nodes.items() if node.doc is not None
    }
    orders = {path: node.order for path, node in base_nodes.items()}
    for key, value in staged.items():
        path, name = parent_of(key)
        if name != "zarr.json":
            continue
        if value is None:
            docs.pop(path, None)
        elif isinstance(value, bytes):
            parsed = doc_from_json_bytes(value, key)
            orders[path] = attribute_order(parsed)
            docs[path] = to_ipld_value(parsed, key)
        else:
            raise FormatError(f"{key!r}: metadata must be staged as bytes")
    return docs, orders


def _chunk_updates(
    staged: Staged, grids: Mapping[str, ChunkKeys]
) -> dict[str, dict[Index, Link | None]]:
    """The staged chunk keys, per array path: chunk index → link (None deletes)."""
    updates: dict[str, dict[Index, Link | None]] = {}
    for key, value in staged.items():
        if parent_of(key)[1] == "zarr.json":
            continue
        array_path, rest = _owning_array(key, grids)
        index = grids[array_path].parse(rest) if array_path is not None else None
        if index is None:
            if value is None:
                continue  # deleting a key that the new hierarchy does not hold anyway
            raise _not_a_chunk_key(key, array_path, grids)
        assert array_path is not None  # a parsed index implies an owning array
        if not isinstance(value, Link | None):
            raise FormatError(f"{key!r}: chunks must be staged as links")
        updates.setdefault(array_path, {})[index] = value
    return updates


def _not_a_chunk_key(
    key: str, array_path: str | None, grids: Mapping[str, ChunkKeys]
) -> FormatError:
    if array_path is None:
        return FormatError(
            f"key {key!r} is neither a zarr.json nor a chunk key inside an array. "
            "A zarr-on-IPLD dataset holds only a zarr v3 hierarchy; write other "
            "files elsewhere."
        )
    keys = grids[array_path]
    return FormatError(
        f"key {key!r} is not a chunk key of array {array_path!r} (shape {keys.shape}, "
        f"chunks {keys.chunk_shape}, key encoding {keys.encoding!r} with "
        f"separator {keys.separator!r})"
    )


def _updated_array(
    io: NodeIO, node: ArrayNode, old: Node | None, changes: Mapping[Index, Link | None] | None
) -> ArrayNode:
    """``node`` (new metadata, no manifest yet) with the manifest of ``old`` (the base's
    node at its path, if any) where its chunk keys still apply, and ``changes`` on top."""
    same_metadata = isinstance(old, ArrayNode) and (old.doc, old.order) == (node.doc, node.order)
    if isinstance(old, ArrayNode) and same_metadata and not changes:
        return old
    sources = []
    if isinstance(old, ArrayNode) and old.manifest is not None:
        old_keys, new_keys = old.keys, node.keys
        if (old_keys.encoding, old_keys.separator, len(old_keys.shape)) == (
            new_keys.encoding,
            new_keys.separator,
            len(new_keys.shape),
        ):
            # Same key strings name the same chunks; chunks now outside the grid drop out.
            hi = tuple(min(a, b) for a, b in zip(old.tiling.grid, node.tiling.grid, strict=True))
            sources.append(Source(old.tiling, old.manifest, hi=hi, label="the base dataset"))
    root = assemble(io, node.tiling, sources, changes, what=f"array {node.path!r}")
    return node.with_manifest(root)


@dataclass(frozen=True)
class ArrayInDataset:
    """The array at ``path`` in a dataset, with the groups above it.

    A write task changes the chunks of one array and nothing else, so its commit rewrites
    that array's manifest, the array node and its ancestors, and links every other node of
    the template as it is: :meth:`with_chunks` gives the same root as
    :func:`commit_changes` would, without walking or re-encoding the whole template.
    """

    path: str
    node: ArrayNode
    ancestors: tuple[GroupNode, ...]  # the parent first, the root group last

    @classmethod
    def load(cls, blockstore: Blockstore, root: Link, path: str) -> ArrayInDataset:
        reader = DatasetReader(blockstore, root)
        node = reader.node(path)
        if not isinstance(node, ArrayNode):
            raise FormatError(
                f"dataset {link_str(root)} has no array at {path!r}; write into one of its "
                "arrays (the template a write plan committed)"
            )
        ancestors = []
        at = path
        while at:
            at = parent_of(at)[0]
            group = reader.node(at)
            assert isinstance(group, GroupNode)  # it holds the array
            ancestors.append(group)
        return cls(path, node, tuple(ancestors))

    def with_chunks(
        self, blockstore: Blockstore, chunks: Mapping[tuple[int, ...], Link | None]
    ) -> Link:
        """The root of this dataset with ``chunks`` (index → link; None deletes) applied."""
        node = self.node
        sources = []
        if node.manifest is not None:
            sources.append(Source(node.tiling, node.manifest, label="the base dataset"))
        manifest = assemble(
            NodeIO(blockstore), node.tiling, sources, chunks, what=f"array {self.path!r}"
        )
        return self._with_manifest(blockstore, manifest)

    def without_chunks(self, blockstore: Blockstore, lo: Index, hi: Index) -> Link:
        """The root of this dataset with the chunks in [lo, hi) (chunk indices) removed.

        The base of a write's partial datasets: a chunk that a write task overwrites must
        come from that task alone, or merging its partial with the others, which hold the
        old chunk, would be a conflict. Built from windows of the old manifest around the
        region, so untouched tiles are linked as they are.
        """
        node = self.node
        grid = node.tiling.grid
        lo = tuple(max(0, min(a, g)) for a, g in zip(lo, grid, strict=True))
        hi = tuple(max(a, min(b, g)) for a, b, g in zip(lo, hi, grid, strict=True))
        if node.manifest is None or any(a == b for a, b in zip(lo, hi, strict=True)):
            return self._with_manifest(blockstore, node.manifest)
        sources = [
            Source(node.tiling, node.manifest, lo=box_lo, hi=box_hi, label="the base dataset")
            for box_lo, box_hi in _complement(grid, lo, hi)
        ]
        manifest = assemble(NodeIO(blockstore), node.tiling, sources, what=f"array {self.path!r}")
        return self._with_manifest(blockstore, manifest)

    def _with_manifest(self, blockstore: Blockstore, manifest: Link | None) -> Link:
        """Write this array with ``manifest``, then its ancestors; the new root."""
        link = write_node(blockstore, self.node.with_manifest(manifest))
        child = self.path
        for group in self.ancestors:
            name = parent_of(child)[1]
            members = {**group.members, name: link}
            link = write_node(blockstore, GroupNode(group.doc, members, group.path, group.order))
            child = group.path
        return link


def _complement(grid: Index, lo: Index, hi: Index) -> Iterator[tuple[Index, Index]]:
    """Disjoint boxes covering ``grid`` outside the box [lo, hi) (at most two per axis)."""
    for axis in range(len(grid)):
        inside_lo, inside_hi = lo[:axis], hi[:axis]
        rest_lo, rest_hi = (0,) * (len(grid) - axis - 1), grid[axis + 1 :]
        for a, b in ((0, lo[axis]), (hi[axis], grid[axis])):
            if a < b:
                yield (*inside_lo, a, *rest_lo), (*inside_hi, b, *rest_hi)


def _codec_names(value: Any) -> Iterator[str]:
    """Every codec name in a codec list, including those nested in sharding's."""
    if isinstance(value, dict):
        if isinstance(value.get("name"), str):
            yield value["name"]
        for item in value.values():
            yield from _codec_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _codec_names(item)


def _warn_about_timestamped_codecs(arrays: Mapping[str, dict[str, Any]]) -> None:
    gzipped = sorted(
        p or "/" for p, doc in arrays.items() if "gzip" in _codec_names(doc.get("codecs"))
    )
    if gzipped:
        warnings.warn(
            f"arrays {gzipped} use the gzip codec, whose output holds the time of writing "
            "(the gzip header's MTIME): the same data written in another second gets other "
            "chunk CIDs and another root. Use zstd (zarr's default) for reproducible roots.",
            TimestampedCodecWarning,
            stacklevel=4,
        )
