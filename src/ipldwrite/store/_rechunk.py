"""zarr's automatic chunking, and re-chunking a staged array to it.

A single ``to_zarr`` lets zarr choose the chunks of a numpy-backed variable that has no
``chunks`` encoding (``chunks="auto"``). An append that grows such an array keeps its old
chunks in a directory store; ipldwrite re-chunks it to what a single write of the whole
dataset picks, so both give one root (docs/notes-chunking-rule.md).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import zarr
from zarr.buffer import default_buffer_prototype
from zarr.storage import MemoryStore

from ipldwrite._compat.zarr_api import ArrayV3Metadata, array_from_metadata
from ipldwrite.dag import join_path
from ipldwrite.store._store import IPLDStore

__all__ = ["auto_chunks", "is_auto_chunked", "rechunk_to_auto"]


def auto_chunks(shape: tuple[int, ...], data_type: Any) -> tuple[int, ...]:
    """The chunk shape zarr picks for ``chunks="auto"``, asked of zarr itself (its rule,
    an h5py-style size heuristic, is zarr's business and may change between versions).
    ``data_type`` is a zarr v3 data type (its JSON form, or anything zarr takes)."""
    if hasattr(data_type, "to_json"):  # a zarr data type object (ArrayV3Metadata's)
        data_type = data_type.to_json(zarr_format=3)
    return _auto_chunks(tuple(shape), json.dumps(data_type, sort_keys=True, default=str))


# A pure function of its arguments; asking zarr creates an array in memory (~1 ms), and
# joins ask once per variable and input. Bounded: a process sees few distinct shapes.
@functools.lru_cache(maxsize=512)
def _auto_chunks(shape: tuple[int, ...], data_type_json: str) -> tuple[int, ...]:
    data_type = json.loads(data_type_json)
    array = zarr.create_array(
        MemoryStore(), shape=shape, dtype=data_type, chunks="auto", zarr_format=3
    )
    return tuple(array.chunks)


def _metadata(store: IPLDStore, path: str) -> ArrayV3Metadata | None:
    found = store.get_sync(join_path(path, "zarr.json"))
    if found is None:
        return None
    doc = json.loads(found.to_bytes())
    if doc.get("node_type") != "array":
        return None
    return ArrayV3Metadata.from_dict(doc)


def is_auto_chunked(store: IPLDStore, path: str) -> bool:
    """Whether the array at ``path`` has the chunks zarr picks automatically for its shape
    and data type, in one regular grid without sharding."""
    meta = _metadata(store, path)
    if meta is None or any(c.to_dict().get("name") == "sharding_indexed" for c in meta.codecs):
        return False
    return tuple(meta.chunks) == auto_chunks(tuple(meta.shape), meta.data_type)


def rechunk_to_auto(store: IPLDStore, path: str) -> None:
    """Rewrite the array at ``path`` of a writable store with zarr's automatic chunks for
    its (new) shape: same metadata otherwise, same values, chunks encoded by zarr."""
    meta = _metadata(store, path)
    assert meta is not None  # only arrays chosen by is_auto_chunked get here
    values = zarr.open_array(store, path=path, mode="r", zarr_format=3)[...]
    chunks = auto_chunks(tuple(meta.shape), meta.data_type)
    doc = meta.to_dict()
    doc["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": list(chunks)}}
    new = ArrayV3Metadata.from_dict(doc)
    for key in store.keys_under(f"{path}/"):
        if key != join_path(path, "zarr.json"):
            store.delete_sync(key)  # the old chunk keys name other regions now
    buffers = new.to_buffer_dict(default_buffer_prototype())
    store.set_sync(join_path(path, "zarr.json"), buffers["zarr.json"])
    array_from_metadata(new, store, path)[...] = values
