"""One Dask task's write: a region of one array, as a partial dataset of its own."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from zarr.core.array_spec import parse_array_config
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.storage import StorePath

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import ArrayInDataset, render_zarr_json
from ipldwrite.errors import FormatError
from ipldwrite.ipld import Link
from ipldwrite.store._store import IPLDStore

__all__ = ["write_region"]


class _Targets:
    """Per process: the template's array (its nodes and parsed zarr metadata) by
    (template CID, path). A write task would otherwise re-read and re-parse the template
    for every block; content addressing makes the cache exact: a CID never changes."""

    def __init__(self, size: int = 32) -> None:
        self._entries: OrderedDict[tuple[bytes, str], tuple[ArrayInDataset, ArrayV3Metadata]]
        self._entries = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(
        self, blockstore: Blockstore, template: Link, path: str
    ) -> tuple[ArrayInDataset, ArrayV3Metadata]:
        key = (template.cid_bytes, path)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        target = ArrayInDataset.load(blockstore, template, path)
        doc = json.loads(render_zarr_json(target.node.doc, target.node.order))
        entry = (target, ArrayV3Metadata.from_dict(doc))
        with self._lock:
            self._entries[key] = entry
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry


_targets = _Targets()


def write_region(
    blockstore: Blockstore,
    template: Link,
    path: str,
    selection: tuple[slice, ...],
    data: npt.NDArray[Any],
    *,
    write_empty_chunks: bool = False,
) -> Link:
    """Write ``data`` into ``selection`` of the array at ``path`` on top of ``template``.

    zarr does the encoding (codecs, fill-value handling, empty-chunk skipping), exactly as a
    sequential ``to_zarr`` would, so the chunk blocks — and therefore the root — are the
    same whoever writes them. The result is the template plus this region's chunks: only
    the array's manifest, its node and the groups above it are new.
    """
    target, metadata = _targets.get(blockstore, template, path)
    store = IPLDStore(blockstore, template, read_only=False)
    config = parse_array_config({"write_empty_chunks": write_empty_chunks})
    array = zarr.Array(zarr.AsyncArray(metadata, StorePath(store, path), config))
    array[selection] = np.asarray(data)
    chunks: dict[tuple[int, ...], Link | None] = {}
    prefix = f"{path}/" if path else ""
    keys = target.node.keys
    for key, value in store.staged().items():
        index = keys.parse(key[len(prefix) :]) if key.startswith(prefix) else None
        if index is None or isinstance(value, bytes):
            raise FormatError(f"writing a region of {path!r} staged {key!r}, not a chunk")
        chunks[index] = value
    return target.with_chunks(blockstore, chunks)
