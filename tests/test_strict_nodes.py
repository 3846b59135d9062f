"""Readers refuse every node the writer would not produce byte for byte (issue 10), so
one logical dataset has exactly one CID."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import xarray as xr

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import DatasetReader, NodeIO, iter_entries
from ipldwrite.dag._nodes import ArrayNode
from ipldwrite.errors import FormatError
from ipldwrite.ipld import DAG_CBOR, Link, decode, encode, link_str, to_link
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr


def written() -> tuple[MemoryBlockstore, Link]:
    store = MemoryBlockstore()
    ds = xr.Dataset({"v": ("x", np.arange(8.0), {"b": 1, "a": 2})}, attrs={"title": "t"})
    return store, to_link(to_ipld_zarr(ds, store, encoding={"v": {"chunks": (2,)}}))


def rewrite_v(store: MemoryBlockstore, root: Link, edit: Callable[[dict[str, Any]], None]) -> Link:
    """A root whose array node 'v' is replaced by an edited copy of it (everything else kept)."""
    group = decode(store.get(root))
    node = decode(store.get(group["members"]["v"]))
    edit(node)
    group["members"]["v"] = store.put(encode(node), DAG_CBOR)
    return store.put(encode(group), DAG_CBOR)


def load_all(store: MemoryBlockstore, root: Link) -> None:
    open_ipld_zarr(root, store).load()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda n: n.update(extra=1), r"unknown node keys \['extra'\]"),
        (lambda n: n["manifest"].update(note="x"), r"unknown manifest keys \['note'\]"),
        (lambda n: n["manifest"].pop("root"), "needs 'root'"),
        (lambda n: n.update(attribute_order=["b"]), "does not list the attribute keys"),
    ],
)
def test_array_nodes_with_extra_or_missing_fields_are_refused(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    store, root = written()
    bad = rewrite_v(store, root, edit)
    with pytest.raises(FormatError, match=message) as info:
        load_all(store, bad)
    v = decode(store.get(bad))["members"]["v"]
    assert link_str(v) in str(info.value)


def test_a_redundant_attribute_order_is_refused() -> None:
    store, root = written()
    node = decode(store.get(decode(store.get(root))["members"]["v"]))
    keys = list(node["zarr"]["attributes"])  # DAG-CBOR order, as decoded
    bad = rewrite_v(store, root, lambda n: n.update(attribute_order=keys))
    with pytest.raises(FormatError, match="attribute_order is redundant"):
        load_all(store, bad)


def test_unknown_group_keys_are_refused() -> None:
    store, root = written()
    group = decode(store.get(root))
    group["comment"] = "hi"
    bad = store.put(encode(group), DAG_CBOR)
    with pytest.raises(FormatError, match=rf"node {link_str(bad)}.*unknown node keys"):
        load_all(store, bad)


def test_all_null_manifest_nodes_are_refused() -> None:
    store, root = written()
    node = DatasetReader(store, root).node("v")
    assert isinstance(node, ArrayNode)
    assert len(list(iter_entries(NodeIO(store), node.tiling, node.manifest))) == 4
    nulls = store.put(encode([None] * 4), DAG_CBOR)
    bad = rewrite_v(store, root, lambda n: n["manifest"].update(root=nulls))
    with pytest.raises(FormatError, match=rf"manifest node {link_str(nulls)} holds only nulls"):
        load_all(store, bad)


def test_an_empty_array_with_a_manifest_root_is_refused() -> None:
    store = MemoryBlockstore()
    root = to_link(to_ipld_zarr(xr.Dataset({"v": ("x", np.zeros(0))}), store))
    leaf = store.put(encode([None]), DAG_CBOR)
    bad = rewrite_v(store, root, lambda n: n["manifest"].update(root=leaf))
    with pytest.raises(FormatError, match=r"no chunks.*root null"):
        DatasetReader(store, bad).node("v")
