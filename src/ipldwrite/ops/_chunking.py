"""The canonical chunking of variables that a join, a subset or an append produces.

A single ``to_zarr`` of a dataset chunks each variable either as its encoding or Dask says
(kept by every piece of a split, so joins link its chunks), or, for a numpy-backed variable
without encoding chunks, with zarr's automatic chunking *for the whole array's shape*. The
pieces of a split then each carry the automatic chunking of their own shape, and the joined
dataset must get the automatic chunking of the joined shape (docs/spec.md, "Canonical
chunking"). zarr's heuristic is asked of zarr itself (:func:`ipldwrite.store.auto_chunks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ipldwrite.dag import ArrayNode
from ipldwrite.store import auto_chunks

#: Arrays up to this many bytes (at 16 bytes per element) may be re-encoded by a join.
SMALL_COORDINATE = 1 << 20


def is_auto_chunked(node: ArrayNode) -> bool:
    """Whether ``node`` is chunked as zarr's automatic chunking would chunk it."""
    return node.keys.chunk_shape == auto_chunks(tuple(node.keys.shape), node.doc["data_type"])


def is_dimension_coordinate(node: ArrayNode, name: str) -> bool:
    return node.doc.get("dimension_names") == [name]


def coordinate_like(arrays: Mapping[str, ArrayNode], group_attrs: Mapping[str, Any]) -> set[str]:
    """Names of the variables that are coordinates as CF and xarray see them: dimension
    coordinates, those named in a ``coordinates`` attribute (of a variable or the group),
    and bounds named in a ``bounds`` attribute."""
    names = {name for name, node in arrays.items() if is_dimension_coordinate(node, name)}
    for attrs in [group_attrs, *((n.doc.get("attributes") or {}) for n in arrays.values())]:
        for key in ("coordinates", "bounds"):
            if isinstance(attrs.get(key), str):
                names.update(attrs[key].split())
    return names


def may_reencode(node: ArrayNode, name: str, shape: Sequence[int], chunks: Sequence[int]) -> bool:
    """Whether a join may re-encode this variable's values to reach ``chunks``: only small
    arrays that are automatically chunked (numpy-backed) or dimension coordinates. Data
    chunked on purpose is never re-encoded behind the user's back."""
    n = 1
    for s in shape:
        n *= s
    if n * 16 > SMALL_COORDINATE:
        return False
    automatic = auto_chunks(tuple(shape), node.doc["data_type"])
    return is_dimension_coordinate(node, name) or tuple(chunks) == automatic


_VARIABLE_LENGTH = frozenset({"string", "bytes"})


def canonical_chunks(
    nodes: Sequence[ArrayNode],
    shape: Sequence[int],
    *,
    linkable: bool,
    coordinate: bool,
    axis: int | None = None,
) -> tuple[int, ...] | None:
    """The chunk shape a single write of the result (of ``shape``) gives, decided from the
    inputs'. ``linkable``: the inputs share one chunk shape, and the result's chunks are
    whole chunks of the inputs (joins along chunk boundaries, windows on them). ``axis``:
    the join axis (None for a subset of one input).

    * Linkable inputs keep their chunk shape: the variable was chunked by its encoding or
      by Dask, and its chunks are linked as they are.
    * Inputs that are each chunked automatically for their own shape were numpy-backed: the
      result gets the automatic chunking of its shape. A ``coordinate`` (coordinate-like:
      indexes, which xarray never backs by Dask, auxiliary coordinates, bounds) whose inputs are
      all automatically chunked is always taken to be numpy-backed, even when it is linkable; so
      is a variable-length (object) array, which xarray loads before writing even when Dask
      backs it, and an empty one (ipldwrite loads those as ``to_zarr`` does). A data variable is
      taken to be numpy-backed only when its inputs' chunks cannot come from one chosen chunk
      shape (all inputs but the last sharing it, the last no longer along ``axis``, as pieces
      cut from one Dask-chunked variable are).
    * Otherwise the chunk shape the inputs share (but for a shorter last input), else None
      (no single write of the result gives these inputs).
    """
    shapes = [n.keys.chunk_shape for n in nodes]
    chosen = _one_choice(shapes, axis)
    auto = all(is_auto_chunked(n) for n in nodes)
    # xarray loads Dask-backed object (variable-length) arrays before writing them, and
    # ipldwrite loads size-0 ones as to_zarr does, so both are always written numpy-backed.
    data_type = nodes[0].doc.get("data_type")
    numpy_backed = (
        coordinate or (isinstance(data_type, str) and data_type in _VARIABLE_LENGTH) or 0 in shape
    )
    if auto and (numpy_backed or not (linkable or chosen)):
        return auto_chunks(tuple(shape), nodes[0].doc["data_type"])
    return shapes[0] if chosen else None


def _one_choice(shapes: Sequence[tuple[int, ...]], axis: int | None) -> bool:
    """Whether chunk shapes could all come from one chosen chunk shape (``shapes[0]``)."""
    first, last = shapes[0], shapes[-1]
    if any(s != first for s in shapes[:-1]):
        return False
    return all(
        a == b or (ax == axis and a < b) for ax, (a, b) in enumerate(zip(last, first, strict=True))
    )
