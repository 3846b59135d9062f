"""A dataset's metadata nodes, by path, to edit and write back. Chunks are never touched."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from zarr.buffer import cpu

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import ArrayNode, DatasetReader, GroupNode, Node, write_tree
from ipldwrite.dag._metadata import from_ipld_value
from ipldwrite.errors import FormatError, IncompatibleDatasetsError
from ipldwrite.ipld import Link, link_str, to_link
from ipldwrite.store import IPLDStore

log = logging.getLogger("ipldwrite.ops")


@dataclass
class Hierarchy:
    blockstore: Blockstore
    nodes: dict[str, Node]
    root: Link | None = None

    @classmethod
    def load(cls, blockstore: Blockstore, root: object) -> Hierarchy:
        link = to_link(root)
        return cls(blockstore, dict(DatasetReader(blockstore, link).walk()), link)

    @property
    def label(self) -> str:
        return link_str(self.root) if self.root is not None else "a new dataset"

    def group(self, path: str) -> GroupNode:
        node = self.nodes.get(path)
        if not isinstance(node, GroupNode):
            raise IncompatibleDatasetsError(
                f"{self.label} has no group at {'/' + path!r}"
                + (" (it is an array)" if isinstance(node, ArrayNode) else "")
            )
        return node

    def children(self, path: str) -> dict[str, Node]:
        prefix = f"{path}/" if path else ""
        return {
            p[len(prefix) :]: n
            for p, n in self.nodes.items()
            if p.startswith(prefix) and p != path and "/" not in p[len(prefix) :]
        }

    def arrays(self, path: str) -> dict[str, ArrayNode]:
        self.group(path)
        return {k: v for k, v in self.children(path).items() if isinstance(v, ArrayNode)}

    def subtree(self, path: str) -> dict[str, Node]:
        prefix = f"{path}/"
        return {p: n for p, n in self.nodes.items() if p == path or p.startswith(prefix)}

    def write(self) -> Link:
        root = write_tree(self.blockstore, self.nodes)
        log.info("wrote %s: %d groups and arrays, no chunk copied", link_str(root), len(self.nodes))
        return root


def dims_of(node: ArrayNode, where: str) -> list[str]:
    dims = node.doc.get("dimension_names")
    if dims is None and node.doc.get("shape") == []:
        return []  # xarray writes no dimension_names for 0-d variables
    if not isinstance(dims, list) or any(not isinstance(d, str) for d in dims):
        raise FormatError(
            f"{where} has no dimension_names: it was not written by xarray, so it cannot be "
            "joined by dimension"
        )
    return dims


def with_shape(node: ArrayNode, shape: list[int], manifest: Link | None) -> ArrayNode:
    doc = dict(node.doc)
    doc["shape"] = shape
    return ArrayNode(doc, manifest, node.path, node.order)


def read_values(blockstore: Blockstore, root: Link, path: str) -> npt.NDArray[Any]:
    """Read one (small) array's stored values, as zarr decodes them (no CF decoding)."""
    array = zarr.open_array(IPLDStore(blockstore, root), path=path, mode="r", zarr_format=3)
    return np.asarray(array[...])


def rewrite_array(
    blockstore: Blockstore,
    node: ArrayNode,
    shape: list[int],
    values: npt.NDArray[Any],
    chunk_shape: tuple[int, ...] | None = None,
) -> ArrayNode:
    """``node``'s metadata with a new shape (and chunk shape) and freshly written values.

    For small coordinate arrays whose chunks cannot be joined by link; zarr encodes them
    exactly as a direct write would.
    """
    doc = from_ipld_value(dict(node.doc, shape=shape))
    if chunk_shape is not None:
        grid = doc["chunk_grid"]
        doc["chunk_grid"] = dict(
            grid, configuration=dict(grid["configuration"], chunk_shape=list(chunk_shape))
        )
    if node.order is not None:
        doc["attributes"] = {k: doc["attributes"][k] for k in node.order}
    store = IPLDStore(blockstore, read_only=False)
    name = "a"
    store.set_sync(f"{name}/zarr.json", cpu.Buffer.from_bytes(json.dumps(doc).encode()))
    zarr.open_array(store, path=name, mode="r+", zarr_format=3)[...] = values
    written = DatasetReader(blockstore, to_link(store.commit())).node(name)
    assert isinstance(written, ArrayNode)
    return ArrayNode(written.doc, written.manifest, node.path, written.order)
