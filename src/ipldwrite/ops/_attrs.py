"""Attributes of nodes, and how attributes of several datasets combine.

The policies are xarray's ``combine_attrs``, so users meet no surprises:

* ``"override"``: the first input's attributes;
* ``"drop"``: none;
* ``"identical"``: all inputs must have identical attributes;
* ``"no_conflicts"``: the union; a key with different values is an error;
* ``"drop_conflicts"``: the union, keys with different values dropped.

Whatever the policy, the attributes that say how stored values decode (CF's ``units``,
``calendar``, ``scale_factor``…) must agree for arrays being joined: taking one input's
``units`` for another's numbers would silently change the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from ipldwrite.dag import ArrayNode, GroupNode
from ipldwrite.dag._metadata import attribute_order
from ipldwrite.errors import IncompatibleDatasetsError

CombineAttrs = Literal["override", "drop", "identical", "no_conflicts", "drop_conflicts"]

#: Attributes that change the meaning of stored values.
DECODING_ATTRS: Final = frozenset(
    {
        "units",
        "calendar",
        "scale_factor",
        "add_offset",
        "_FillValue",
        "missing_value",
        "dtype",
        "_Unsigned",
        "compression",
    }
)


def attrs_of(node: ArrayNode | GroupNode) -> dict[str, Any]:
    """A node's attributes in their written order."""
    attrs = dict((node.doc or {}).get("attributes") or {})
    if node.order is not None:
        return {k: attrs[k] for k in node.order}
    return attrs


def with_attrs(node: ArrayNode | GroupNode, attrs: dict[str, Any]) -> Any:
    """The node with its attributes replaced (order kept as given)."""
    doc = dict(node.doc or {"zarr_format": 3, "node_type": "group"})
    doc["attributes"] = dict(attrs)
    order = attribute_order({"attributes": attrs})
    if isinstance(node, ArrayNode):
        return ArrayNode(doc, node.manifest, node.path, order)
    return GroupNode(doc, node.members, node.path, order)


def combine(all_attrs: Sequence[dict[str, Any]], policy: CombineAttrs, what: str) -> dict[str, Any]:
    if policy == "drop":
        return {}
    if policy == "override":
        return dict(all_attrs[0])
    if policy == "identical":
        for n, attrs in enumerate(all_attrs[1:], 2):
            if attrs != all_attrs[0]:
                key = next(
                    k for k in {*attrs, *all_attrs[0]} if attrs.get(k) != all_attrs[0].get(k)
                )
                raise IncompatibleDatasetsError(
                    f"{what}: attributes differ between input 1 and input {n} (first difference: "
                    f"{key!r}); combine_attrs='identical' requires them equal. Use "
                    "combine_attrs='override', 'drop_conflicts' or 'no_conflicts'."
                )
        return dict(all_attrs[0])
    out: dict[str, Any] = {}
    dropped: set[str] = set()
    for n, attrs in enumerate(all_attrs, 1):
        for key, value in attrs.items():
            if key in dropped:
                continue
            if key in out and out[key] != value:
                if policy == "no_conflicts":
                    raise IncompatibleDatasetsError(
                        f"{what}: attribute {key!r} is {out[key]!r} in an earlier input but "
                        f"{value!r} in input {n}. Use combine_attrs='drop_conflicts' or "
                        "'override', or make them agree with ipldwrite.ops.assign_attrs."
                    )
                del out[key]
                dropped.add(key)
            else:
                out.setdefault(key, value)
    return out


def check_decoding_attrs(all_attrs: Sequence[dict[str, Any]], what: str) -> None:
    for n, attrs in enumerate(all_attrs[1:], 2):
        for key in DECODING_ATTRS:
            if attrs.get(key) != all_attrs[0].get(key):
                raise IncompatibleDatasetsError(
                    f"{what}: {key!r} is {all_attrs[0].get(key)!r} in input 1 but "
                    f"{attrs.get(key)!r} in input {n}, so the same stored numbers mean "
                    "different values. Re-write one input with the other's encoding (e.g. "
                    f"encoding={{'time': {{'{key}': ...}}}}) before joining."
                )
