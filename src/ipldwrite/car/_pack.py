"""Pack a finished per-task-CAR write into a few CARv2 shards, in place.

A write to ``car:<directory>`` leaves one CAR per task: opening the dataset then reads the
header and index of every one of them (O(tasks) requests on an object store). Packing
rewrites the DAGs of the given roots with :func:`export_car_shards` (bounded, indexed
CARv2 files: the root and metadata in ``<root>.car``, chunks in ``bagbaiera….car``) and
removes the task CARs, so opening costs O(shards) requests.

Order keeps every root readable at every moment: the shards go up first, then each root
CAR replaces the task write's ``<root>.car`` (an object store swaps it in one request; a
local file is renamed over), and only then are the task CARs removed. Give every root the
directory should keep: CARs not needed by them are removed. Pack while nobody writes to or
reads the directory (a reader holding the old ``<root>.car``'s index would see "wrong
index" errors and must reopen).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipldwrite.blockstore._carset import CarSetBlockstore, car_files
from ipldwrite.blockstore._location import car_location
from ipldwrite.car._shards import DEFAULT_SHARD_BYTES, export_car_shards, upload
from ipldwrite.errors import CarError
from ipldwrite.ipld import Link, link_str, to_link

__all__ = ["PackSummary", "pack_car_directory"]


@dataclass(frozen=True, slots=True)
class PackSummary:
    """What :func:`pack_car_directory` did."""

    directory: str
    roots: tuple[Link, ...]
    written: tuple[str, ...]  # the CAR files the directory now holds for ``roots``
    removed: tuple[str, ...]  # the task CARs removed
    blocks: int  # sections written (a block shared by two roots is in both roots' shards)
    size: int  # bytes of the written files

    def __str__(self) -> str:
        roots = ", ".join(link_str(r) for r in self.roots)
        return (
            f"packed {roots} into {len(self.written)} CARv2 files ({self.blocks} blocks, "
            f"{self.size} bytes); removed {len(self.removed)} task CARs"
        )


def pack_car_directory(
    directory: str | os.PathLike[str],
    roots: Iterable[object],
    *,
    max_bytes: int = DEFAULT_SHARD_BYTES,
    storage_options: dict[str, Any] | None = None,
) -> PackSummary:
    """Rewrite the datasets ``roots`` of a per-task-CAR directory (a local path or an
    fsspec URL, with ``storage_options``) as CARv2 shards of at most ``max_bytes``, and
    remove the task CARs (see the module docstring)."""
    links = [to_link(r) for r in roots]
    if not links:
        raise ValueError("pack needs the root CID(s) of the dataset(s) to keep")
    location = os.fspath(directory)
    fs, where = car_location(location, storage_options, write=True)
    before = car_files(fs, where)
    if not before:
        raise CarError(f"no CAR files in {location!r}: nothing to pack")
    reader = CarSetBlockstore(location, storage_options=storage_options)
    # Locally the new files are written beside the old ones (same filesystem: renames).
    staging = tempfile.TemporaryDirectory(
        prefix=".pack-", dir=where if fs is None else None, ignore_cleanup_errors=True
    )
    with staging as tmp:
        summaries = [
            export_car_shards(link, reader, Path(tmp, link_str(link)), max_bytes=max_bytes)
            for link in links
        ]
        shards = {os.path.basename(p): p for s in summaries for p in s.shards}
        heads = {os.path.basename(s.root_car): s.root_car for s in summaries}
        written = [_publish(fs, where, p) for p in (*shards.values(), *heads.values())]
    keep = {os.path.basename(p) for p in written}
    removed = [p for p in before if os.path.basename(p) not in keep]
    for path in removed:
        if fs is None:
            os.unlink(path)
        else:
            fs.rm_file(path)
    sizes = {
        os.path.basename(p): size
        for s in summaries
        for p, size in zip(s.files, s.sizes, strict=True)
    }
    return PackSummary(
        directory=location,
        roots=tuple(links),
        written=tuple(written),
        removed=tuple(removed if fs is None else [fs.unstrip_protocol(p) for p in removed]),
        blocks=sum(s.blocks for s in summaries),
        size=sum(sizes.values()),
    )


def _publish(fs: Any, directory: str, local: Path | str) -> str:
    if fs is not None:
        return upload(fs, directory, local)
    target = os.path.join(directory, os.path.basename(local))
    os.replace(local, target)
    return target
