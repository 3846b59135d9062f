"""The pinned test vectors (docs/spec.md, "Test vectors"): roots and tile shapes of small,
deterministic datasets, generated once. Any change to tiling, node encoding or metadata
handling that moves a root fails here, whatever else passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import LRU, ArrayNode, DatasetReader, NodeIO, _tiling, iter_entries
from ipldwrite.ipld import DAG_PB, parse_cid_bytes, to_link
from ipldwrite.xarray import to_ipld_zarr
from vectors.datasets import VECTORS
from vectors.generate import EXPECTED, describe


def expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text())  # type: ignore[no-any-return]


def test_every_vector_is_pinned() -> None:
    assert set(expected()) == set(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_root_and_tiles(name: str) -> None:
    assert describe(name) == expected()[name]


def test_the_big_chunk_is_a_unixfs_file() -> None:
    store = MemoryBlockstore()
    obj, encoding = VECTORS["big_chunk"]()
    root = to_link(to_ipld_zarr(obj, store, encoding=encoding))
    node = DatasetReader(store, root).node("v")
    assert isinstance(node, ArrayNode)
    [(_, link)] = iter_entries(NodeIO(store), node.tiling, node.manifest)
    assert parse_cid_bytes(link.cid_bytes).codec == DAG_PB


def test_changing_the_tiling_rule_fails_the_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    def first_dimension_first(need: tuple[int, ...], budget: int) -> tuple[int, ...]:
        bits = []
        for n in need:
            bits.append(min(n, budget))
            budget -= bits[-1]
        return tuple(bits)

    monkeypatch.setattr(_tiling, "_allocate", first_dimension_first)
    # An empty cache of tilings for the changed rule; undo() brings back the real one.
    monkeypatch.setattr(_tiling, "_BY_GRID", LRU(1024))
    try:
        assert describe("four_d") != expected()["four_d"]
    finally:
        monkeypatch.undo()
