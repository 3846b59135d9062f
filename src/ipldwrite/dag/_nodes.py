"""Group and array nodes: the zarr hierarchy as DAG-CBOR (docs/spec.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from ipldwrite.dag._metadata import ChunkKeys, attribute_order
from ipldwrite.dag._tiling import Tiling
from ipldwrite.errors import FormatError
from ipldwrite.ipld import Link, LinkLabel

__all__ = [
    "FORMAT_VERSION",
    "ArrayNode",
    "GroupNode",
    "Node",
    "check_member_name",
    "node_from_ipld",
]

#: The version of the zarr-on-IPLD format these classes read and write (docs/spec.md).
FORMAT_VERSION: Final = 1


def check_member_name(name: str, where: object) -> str:
    # "zarr.json" would collide with the node's own metadata key.
    if not name or "/" in name or name in (".", "..", "zarr.json"):
        raise FormatError(
            f"{where}: {name!r} is not a valid zarr node name (no '/'; not empty, '.', '..' "
            "or 'zarr.json')"
        )
    return name


@dataclass(frozen=True, eq=True)
class ArrayNode:
    """A zarr v3 array: its zarr.json document and the root of its chunk manifest."""

    doc: dict[str, Any]
    manifest: Link | None
    path: str = field(default="", compare=False)
    order: list[str] | None = None  # attribute key order, when not canonical

    @cached_property
    def keys(self) -> ChunkKeys:
        return ChunkKeys.from_doc(self.doc, self.path)

    @cached_property
    def tiling(self) -> Tiling:
        return Tiling.for_grid(self.keys.grid)

    def to_ipld(self) -> dict[str, Any]:
        tiling = self.tiling
        value = {
            "v": FORMAT_VERSION,
            "type": "array",
            "zarr": self.doc,
            "manifest": {
                "grid": list(tiling.grid),
                "tiles": tiling.to_ipld(),
                "root": self.manifest,
            },
        }
        return _with_order(value, self.order)

    def with_manifest(self, manifest: Link | None) -> ArrayNode:
        return ArrayNode(self.doc, manifest, self.path, self.order)


@dataclass(frozen=True, eq=True)
class GroupNode:
    """A zarr v3 group (``doc`` is None for a path with members but no zarr.json)."""

    doc: dict[str, Any] | None
    members: dict[str, Link]
    path: str = field(default="", compare=False)
    order: list[str] | None = None  # attribute key order, when not canonical

    def to_ipld(self) -> dict[str, Any]:
        value = {
            "v": FORMAT_VERSION,
            "type": "group",
            "zarr": self.doc,
            "members": dict(sorted(self.members.items())),
        }
        return _with_order(value, self.order)


def _with_order(value: dict[str, Any], order: list[str] | None) -> dict[str, Any]:
    if order is not None:
        value["attribute_order"] = order
    return value


def _order_from(value: dict[str, Any], doc: Any, where: object) -> list[str] | None:
    if "attribute_order" not in value:
        return None
    order = value["attribute_order"]
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    if not isinstance(order, list) or not isinstance(attrs, dict) or sorted(order) != sorted(attrs):
        raise FormatError(f"{where}: attribute_order does not list the attribute keys")
    if attribute_order({"attributes": dict.fromkeys(order)}) is None:
        raise FormatError(
            f"{where}: attribute_order is redundant (the keys are already in DAG-CBOR order); "
            "writers omit it, so this node is not in canonical form"
        )
    return order


#: The keys of each node kind; anything else makes a second CID for the same dataset.
_KEYS: Final = {
    "group": frozenset({"v", "type", "zarr", "members", "attribute_order"}),
    "array": frozenset({"v", "type", "zarr", "manifest", "attribute_order"}),
}
_MANIFEST_KEYS: Final = frozenset({"grid", "tiles", "root"})


def _check_keys(keys: Any, allowed: frozenset[str], where: object, what: str) -> None:
    unknown = sorted(set(keys) - allowed)
    if unknown:
        raise FormatError(
            f"{where}: unknown {what} keys {unknown}; zarr-on-IPLD version {FORMAT_VERSION} "
            f"nodes hold only {sorted(allowed)}, so this node is not in canonical form"
        )


Node = ArrayNode | GroupNode


def node_from_ipld(value: Any, link: Link, path: str) -> Node:
    """Validate a decoded block as a group or array node."""
    where = LinkLabel("node ", link, f" at {path or '/'!r}")
    if not isinstance(value, dict) or value.get("type") not in ("group", "array"):
        raise FormatError(f"{where} is not a zarr-on-IPLD group or array node")
    if value.get("v") != FORMAT_VERSION:
        raise FormatError(
            f"{where} has format version {value.get('v')!r}; this ipldwrite reads version "
            f"{FORMAT_VERSION}. Upgrade ipldwrite."
        )
    _check_keys(value, _KEYS[value["type"]], where, "node")
    doc = value.get("zarr")
    if value["type"] == "group":
        members = value.get("members")
        if (doc is not None and not isinstance(doc, dict)) or not isinstance(members, dict):
            raise FormatError(f"{where}: a group needs 'zarr' (map or null) and 'members' (map)")
        for name, member in members.items():
            check_member_name(name, where)
            if not isinstance(member, Link):
                raise FormatError(f"{where}: member {name!r} is not a link")
        if "zarr" not in value:
            raise FormatError(f"{where}: a group needs 'zarr' (map or null)")
        return GroupNode(doc, members, path, _order_from(value, doc, where))
    manifest = value.get("manifest")
    if not isinstance(doc, dict) or not isinstance(manifest, dict):
        raise FormatError(f"{where}: an array needs 'zarr' and 'manifest' maps")
    _check_keys(manifest, _MANIFEST_KEYS, where, "manifest")
    if "root" not in manifest:
        raise FormatError(f"{where}: the manifest needs 'root' (a link, or null)")
    root = manifest["root"]
    if root is not None and not isinstance(root, Link):
        raise FormatError(f"{where}: manifest root is not a link")
    node = ArrayNode(doc, root, path, _order_from(value, doc, where))
    tiling = node.tiling
    if manifest.get("grid") != list(tiling.grid) or manifest.get("tiles") != tiling.to_ipld():
        raise FormatError(
            f"{where}: manifest grid/tiles {manifest.get('grid')}/{manifest.get('tiles')} do not "
            f"match the array metadata (expected {list(tiling.grid)}/{tiling.to_ipld()})"
        )
    if tiling.empty and root is not None:
        raise FormatError(f"{where}: an array with no chunks (a zero-length grid) has root null")
    return node
