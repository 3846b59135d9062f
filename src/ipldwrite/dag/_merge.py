"""Merging partial datasets: the union of their key spaces, by rewriting metadata only.

Merge is associative, commutative and idempotent: a node that every input links to
identically is reused by its link without being read; a group's members are the union of the
inputs' members; an array's manifest is the union of the inputs' manifests (see
:func:`~ipldwrite.dag.assemble`). The same zarr.json in two inputs merges silently;
different documents for one node, or different chunks for one index, are a
:class:`MergeConflictError` that names the path and the CIDs involved.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag._manifest import NodeIO, Source, assemble
from ipldwrite.dag._nodes import ArrayNode, GroupNode, Node
from ipldwrite.dag._tree import join_path, load_node, write_node
from ipldwrite.errors import MergeConflictError
from ipldwrite.ipld import Link, LinkLabel, to_cid

__all__ = ["merge_datasets"]


def merge_datasets(blockstore: Blockstore, roots: Sequence[Link], *, kind: str = "dataset") -> Link:
    """The root of the union of the datasets ``roots``; errors name them "<kind> <CID>"."""
    if not roots:
        raise ValueError("merge_datasets needs at least one root")
    return _Merger(blockstore).merge("", [(r, LinkLabel(f"{kind} ", r)) for r in roots])


class _Merger:
    def __init__(self, blockstore: Blockstore) -> None:
        self.blockstore = blockstore
        self.io = NodeIO(blockstore)
        self._links: tuple[Link, ...] = ()  # the nodes being merged, for conflict errors

    def merge(self, path: str, inputs: list[tuple[Link, object]]) -> Link:
        distinct: dict[bytes, tuple[Link, object]] = {}
        for link, label in inputs:
            distinct.setdefault(link.cid_bytes, (link, label))
        if len(distinct) == 1:
            return next(iter(distinct.values()))[0]
        links = tuple(link for link, _ in distinct.values())
        nodes = [
            (load_node(self.blockstore, link, path), label) for link, label in distinct.values()
        ]
        where = f"/{path}" if path else "the root group"
        first, first_label = nodes[0]
        for node, label in nodes[1:]:
            if type(node) is not type(first):
                raise MergeConflictError(
                    f"{where} is a {_kind(first)} in {first_label} but a {_kind(node)} in {label}",
                    path=f"/{path}",
                    cids=tuple(map(to_cid, links)),
                )
        self._links = links
        if isinstance(first, ArrayNode):
            return self._merge_arrays(path, where, nodes)  # type: ignore[arg-type]
        return self._merge_groups(path, where, nodes)  # type: ignore[arg-type]

    def _check_same_metadata(self, where: str, nodes: Sequence[tuple[Node, object]]) -> None:
        known = [(n, label) for n, label in nodes if n.doc is not None]
        for node, label in known[1:]:
            ref, ref_label = known[0]
            if node.doc != ref.doc or node.order != ref.order:
                raise MergeConflictError(
                    f"{where} has different zarr.json metadata in {ref_label} and {label}"
                    f"{_doc_difference(ref, node)}. Partial writes of one dataset must share "
                    "the same template; datasets with different metadata are joined with "
                    "ipldwrite.ops (concat, merge), not merged.",
                    path=where if where.startswith("/") else "/",
                    cids=tuple(map(to_cid, self._links)),
                )

    def _merge_groups(self, path: str, where: str, nodes: list[tuple[GroupNode, object]]) -> Link:
        self._check_same_metadata(where, nodes)
        doc_node = next((n for n, _ in nodes if n.doc is not None), nodes[0][0])
        members: dict[str, list[tuple[Link, object]]] = {}
        for node, label in nodes:
            for name, link in node.members.items():
                members.setdefault(name, []).append((link, label))
        merged = {
            name: self.merge(join_path(path, name), links)
            for name, links in sorted(members.items())
        }
        return write_node(self.blockstore, GroupNode(doc_node.doc, merged, path, doc_node.order))

    def _merge_arrays(self, path: str, where: str, nodes: list[tuple[ArrayNode, object]]) -> Link:
        self._check_same_metadata(where, nodes)
        first = nodes[0][0]
        sources = [Source(n.tiling, n.manifest, label=label) for n, label in nodes]
        manifest = assemble(self.io, first.tiling, sources, what=f"array {where}")
        return write_node(self.blockstore, first.with_manifest(manifest))


def _kind(node: Node) -> str:
    return "array" if isinstance(node, ArrayNode) else "group"


def _doc_difference(a: Node, b: Node) -> str:
    if a.doc is None or b.doc is None:
        return ""
    keys = sorted(k for k in set(a.doc) | set(b.doc) if a.doc.get(k) != b.doc.get(k))
    if not keys:
        return " (attribute order)"
    key = keys[0]
    return f" (first difference: {key!r} is {a.doc.get(key)!r} vs {b.doc.get(key)!r})"
