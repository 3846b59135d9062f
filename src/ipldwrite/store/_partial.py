"""One Dask task's write: a region of one array, as a partial dataset of its own."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ipldwrite._compat.zarr_api import ArrayV3Metadata, array_from_metadata, task_pipeline
from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import LRU, ArrayInDataset, render_zarr_json
from ipldwrite.errors import FormatError
from ipldwrite.ipld import Link
from ipldwrite.store._store import IPLDStore

__all__ = ["partials_base", "write_region"]


@dataclass
class _Target:
    array: ArrayInDataset
    metadata: ArrayV3Metadata
    pipelines: dict[int, Any] = field(default_factory=dict)  # by chunk_threads

    def pipeline(self, chunk_threads: int) -> Any:
        if chunk_threads not in self.pipelines:
            self.pipelines[chunk_threads] = task_pipeline(self.metadata, chunk_threads)
        return self.pipelines[chunk_threads]


class _Targets:
    """Per process: the template's array (its nodes, parsed zarr metadata and codec
    pipelines) by (template CID, path), for the last ``size`` of them. A write task would
    otherwise re-read and re-parse the template for every block; content addressing makes
    the cache exact: a CID never changes. It belongs to the process, not to a store: every
    task gets its own copy of the blockstore (unpickled from the graph), while the tasks a
    worker runs share one template."""

    def __init__(self, size: int = 32) -> None:
        self._entries: LRU[tuple[bytes, str], _Target] = LRU(size)

    def get(self, blockstore: Blockstore, base: Link, path: str) -> _Target:
        key = (base.cid_bytes, path)
        found = self._entries.get(key)
        if found is not None:
            return found
        array = ArrayInDataset.load(blockstore, base, path)
        doc = json.loads(render_zarr_json(array.node.doc, array.node.order))
        entry = _Target(array, ArrayV3Metadata.from_dict(doc))
        return self._entries.put(key, entry)


_targets = _Targets()


def write_region(
    blockstore: Blockstore,
    template: Link,
    path: str,
    selection: tuple[slice, ...],
    data: npt.NDArray[Any],
    *,
    write_empty_chunks: bool = False,
    chunk_threads: int | None = None,
    base: Link | None = None,
) -> Link:
    """Write ``data`` into ``selection`` of the array at ``path`` on top of ``template``.

    zarr does the encoding (codecs, fill-value handling, empty-chunk skipping), exactly as a
    sequential ``to_zarr`` would, so the chunk blocks — and therefore the root — are the
    same whoever writes them. The result is the template plus this region's chunks: only
    the array's manifest, its node and the groups above it are new. ``chunk_threads``
    encode the chunks in parallel (default: one per CPU; 1 when Dask keeps every thread
    busy with other write tasks).

    ``base`` (default: ``template``) is the dataset the partial is committed on, when
    that is not the one existing chunks are read from: for a write over existing chunks,
    the template without the chunks the write's tasks overwrite (see
    :meth:`~ipldwrite.dag.ArrayInDataset.without_chunks`). Its array must have the
    template's metadata.
    """
    target = _targets.get(blockstore, base or template, path)
    store = IPLDStore(blockstore, template, read_only=False)
    array = array_from_metadata(
        target.metadata,
        store,
        path,
        write_empty_chunks=write_empty_chunks,
        pipeline=target.pipeline(chunk_threads or os.cpu_count() or 1),
    )
    array[selection] = np.asarray(data)
    chunks: dict[tuple[int, ...], Link | None] = {}
    prefix = f"{path}/" if path else ""
    keys = target.array.node.keys
    for key, value in store.staged().items():
        index = keys.parse(key[len(prefix) :]) if key.startswith(prefix) else None
        if index is None or isinstance(value, bytes):
            raise FormatError(f"writing a region of {path!r} staged {key!r}, not a chunk")
        chunks[index] = value
    return target.array.with_chunks(blockstore, chunks)


def partials_base(
    blockstore: Blockstore, template: Link, writes: Iterable[tuple[str, tuple[slice, ...] | None]]
) -> Link:
    """The dataset a write's partials are committed on: ``template`` without the existing
    chunks that the lazy ``writes`` (array path, region; None: all of it) overwrite.

    Each overwritten chunk then comes from the one task that writes it, so a region
    overwrite or an append onto a partly filled last chunk merges like a fresh write,
    while two tasks that write one chunk differently still conflict. The tasks read
    existing chunks (to fill in partly written ones) from the template itself.
    """
    root = template
    for path, region in writes:
        array = ArrayInDataset.load(blockstore, root, path)
        if array.node.manifest is None:
            continue
        keys = array.node.keys
        lo, hi = [], []
        for n, (size, chunk) in enumerate(zip(keys.shape, keys.chunk_shape, strict=True)):
            start, stop, _ = (region[n] if region else slice(None)).indices(size)
            lo.append(start // chunk)
            hi.append(-(-stop // chunk) if stop > start else start // chunk)
        root = array.without_chunks(blockstore, tuple(lo), tuple(hi))
    return root
