"""Reading and writing the hierarchy of group and array nodes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag._nodes import ArrayNode, GroupNode, Node, check_member_name, node_from_ipld
from ipldwrite.errors import FormatError
from ipldwrite.ipld import DAG_CBOR, Link, LinkLabel, decode, encode

__all__ = [
    "MAX_HIERARCHY_DEPTH",
    "DatasetReader",
    "check_depth",
    "join_path",
    "parent_of",
    "write_node",
    "write_tree",
]

#: Deepest group/array path (in names) read or written. Real hierarchies are a few levels;
#: a hostile DAG 10,000 groups deep cost quadratic time to write and overflowed Python's
#: stack on export, so deeper ones are refused by name (docs/spec.md, Limits).
MAX_HIERARCHY_DEPTH = 256


def check_depth(path: str, where: object = "") -> None:
    if path.count("/") >= MAX_HIERARCHY_DEPTH:
        raise FormatError(
            f"{where or 'the hierarchy'}: {path[:60]!r}… is nested deeper than "
            f"{MAX_HIERARCHY_DEPTH} groups; zarr-on-IPLD refuses such hierarchies"
        )


def join_path(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def parent_of(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def write_node(blockstore: Blockstore, node: Node) -> Link:
    return blockstore.put(encode(node.to_ipld()), DAG_CBOR)


def load_node(blockstore: Blockstore, link: Link, path: str) -> Node:
    value = decode(blockstore.get(link), what=LinkLabel("node ", link, f" at {path or '/'!r}"))
    return node_from_ipld(value, link, path)


class DatasetReader:
    """Resolves paths in the hierarchy under one root, caching decoded nodes (thread-safe)."""

    def __init__(self, blockstore: Blockstore, root: Link) -> None:
        self.blockstore = blockstore
        self.root = root
        self._nodes: dict[str, Node | None] = {}
        self._lock = threading.Lock()

    def node(self, path: str) -> Node | None:
        with self._lock:
            if path in self._nodes:
                return self._nodes[path]
        if path == "":
            node: Node | None = load_node(self.blockstore, self.root, "")
        else:
            check_depth(path, LinkLabel("dataset ", self.root))
            parent_path, name = parent_of(path)
            parent = self.node(parent_path)
            link = parent.members.get(name) if isinstance(parent, GroupNode) else None
            node = load_node(self.blockstore, link, path) if link is not None else None
        with self._lock:
            self._nodes[path] = node
        return node

    def resolve(self, key_path: str) -> tuple[str, Node | None, str]:
        """The deepest node along ``key_path``: (its path, node, the rest of the key)."""
        parts = key_path.split("/") if key_path else []
        path = ""
        node = self.node("")
        for i, part in enumerate(parts):
            if not isinstance(node, GroupNode) or part not in node.members:
                return path, node, "/".join(parts[i:])
            path = join_path(path, part)
            node = self.node(path)
        return path, node, ""

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every node, parents before children, members in name order."""
        stack = [""]
        while stack:
            path = stack.pop()
            node = self.node(path)
            if node is None:
                continue
            yield path, node
            if isinstance(node, GroupNode):
                stack.extend(join_path(path, name) for name in sorted(node.members, reverse=True))


def write_tree(blockstore: Blockstore, nodes: Mapping[str, Node]) -> Link:
    """Write a hierarchy given as path → node (group members are filled in here).

    Paths without a node but with descendants become groups without zarr.json, so any set
    of paths yields exactly one tree: the root is a function of the nodes alone.
    """
    children: dict[str, dict[str, str]] = {"": {}}
    for node_path in nodes:
        check_depth(node_path)
        path = node_path
        while path:
            parent, name = parent_of(path)
            check_member_name(name, f"path {path!r}")
            children.setdefault(parent, {})[name] = path
            children.setdefault(path, {})
            path = parent
    links: dict[str, Link] = {}
    for path in sorted(children, key=lambda p: -p.count("/") if p else 1):
        node = nodes.get(path)
        kids = children[path]
        if isinstance(node, ArrayNode):
            if kids:
                raise FormatError(
                    f"array {path!r} has children {sorted(kids)}: zarr arrays cannot contain "
                    "nodes. Move them to a group."
                )
            links[path] = write_node(blockstore, node)
            continue
        doc = node.doc if isinstance(node, GroupNode) else None
        order = node.order if isinstance(node, GroupNode) else None
        members = {name: links[child] for name, child in kids.items()}
        links[path] = write_node(blockstore, GroupNode(doc, members, path, order))
    return links[""]
