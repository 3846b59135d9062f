"""Per-task CARs: a distributed write that needs no shared blockstore.

Each task of :func:`ipldwrite.to_ipld_zarr` buffers the blocks it writes in memory and, once
it knows its partial root, writes them as ONE CAR named ``<root CID>.car`` into a directory
(a local path or any fsspec URL). Merge tasks read their inputs' CARs — they know the CIDs,
hence the names — and write the merged metadata the same way. The directory of CARs is the
dataset: :class:`CarSetBlockstore` over it, or importing every CAR into an IPFS node, reads
it back.

What each CAR holds, for the root ``R`` it is named after: every block of ``R``'s DAG that
is not in the *context* CARs (the template's, and the base dataset's when appending), is not
a chunk that lives in an input's CAR, and was written by this task or is a metadata node of
an input. So a chunk is stored once, in the CAR of the task that encoded it; the metadata
nodes of a partial travel up the merge tree (copied into each merged CAR), and the final
``<root>.car`` holds all metadata outside the template: any one merge reads only its inputs'
CARs and the context, never the whole directory.

Names are roots, so a retried or duplicated task finds its CAR already there and leaves it
(a CAR is written under a temporary name and renamed, or, on object stores, uploaded in one
request: never half there). Two different tasks can only meet on one root if one adds
nothing to the other (an empty region, a merge whose result is one of its inputs); the CAR
already there is then the one to keep.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import Any

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.blockstore._carset import CarSetBlockstore, _filesystem, car_files
from ipldwrite.errors import BlockNotFoundError, ReadOnlyError
from ipldwrite.ipld import DAG_CBOR, Link, Visit, link_str, walk
from ipldwrite.ipld._car import write_car_blocks

__all__ = ["TaskBuffer", "TaskCarBlockstore"]

_counter = itertools.count()


class TaskBuffer(Blockstore):
    """One task's blocks in memory, reading through to the CARs the task may need.

    ``reader`` holds the context CARs first, then the inputs' CARs, so
    ``reader.where(link) < context`` tells a context block from an input's.
    """

    def __init__(
        self,
        reader: CarSetBlockstore,
        context: int,
        context_cars: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reader = reader
        self.context = context
        self.context_cars = tuple(context_cars)  # their paths, for the tasks after a template
        self.blocks: dict[bytes, bytes] = {}

    def _get(self, link: Link) -> bytes | None:
        data = self.blocks.get(link.cid_bytes)
        return data if data is not None else self.reader._get(link)

    def _put(self, link: Link, data: BlockData) -> None:
        self.blocks.setdefault(link.cid_bytes, bytes(data))

    def _has(self, link: Link) -> bool:
        return link.cid_bytes in self.blocks or self.reader._has(link)

    def _size(self, link: Link) -> int | None:
        data = self.blocks.get(link.cid_bytes)
        return len(data) if data is not None else self.reader._size(link)

    def in_context(self, link: Link) -> bool:
        if self.context == 0:
            return False
        where = self.reader.where(link)
        return where is not None and where < self.context

    def car_blocks(self, root: Link) -> Iterator[tuple[Link, bytes]]:
        """The blocks ``root``'s CAR holds (see the module docstring), depth first."""

        def read(visit: Visit) -> bytes | None:
            link = visit.link
            if self.in_context(link):
                return None  # the template's or the base's: its whole subtree is there too
            data = self.blocks.get(link.cid_bytes)
            if data is not None:
                return data
            if link.cid_bytes[1:2] != bytes((DAG_CBOR,)):
                return None  # a chunk in an input's CAR: stored once, where it was encoded
            found = self.reader._get(link)
            if found is None:
                raise BlockNotFoundError(
                    f"block {link_str(link)} of {link_str(root)} is neither written by "
                    f"this task nor in the CARs it reads ({self.reader!r}); a CAR of the "
                    "write is missing from the directory",
                    cid=link,
                )
            return found

        for visit, data in walk([root], read):
            yield visit.link, data


class TaskCarBlockstore(Blockstore):
    """A directory of CAR files (local path or fsspec URL) as the home of datasets.

    Pass it, or the string ``"car:<directory or URL>"``, to :func:`ipldwrite.to_ipld_zarr`:
    every write task then writes its own CAR into the directory and no blockstore is shared
    between workers (see the module docstring). As a blockstore it is read-only and reads
    every CAR in the directory as one (a :class:`CarSetBlockstore`), picking up new CARs
    as they appear; ``open_ipld_zarr(root, "car:<dir>")`` reads a dataset written so.
    ``storage_options`` go to fsspec for a URL (``resolve_blockstore("car:s3://…",
    storage_options=…)`` passes them too). ``ipldwrite pack`` (:func:`~ipldwrite.car.
    pack_car_directory`) turns a finished write's task CARs into a few CARv2 shards.
    """

    supports_listing = True

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        verify: bool = True,
        hasher: str = "sha2-256",
        max_block_size: int = 1 << 20,
        _context: Sequence[str] = (),
    ) -> None:
        super().__init__(
            verify=verify, hasher=hasher, max_block_size=max_block_size, read_only=True
        )
        self.url = os.fspath(url)
        self.storage_options = dict(storage_options or {})
        self._fs, self.path = _filesystem(self.url, self.storage_options)
        self.context = tuple(_context)  # CAR names every task reads (template, base)
        self._reader: CarSetBlockstore | None = None
        # An in-memory filesystem lives in one process: workers elsewhere would not see it.
        self.shared_between_processes = getattr(self._fs, "protocol", None) not in (
            "memory",
            ("memory",),
        )

    # -- the read-only blockstore over the whole directory --------------------------------------
    def _all(self) -> CarSetBlockstore:
        if self._reader is None:
            self._reader = CarSetBlockstore(
                self.url, verify=self.verify, storage_options=self.storage_options
            )
        return self._reader

    def _get(self, link: Link) -> bytes | None:
        return self._all()._get(link)

    def _has(self, link: Link) -> bool:
        return self._all()._has(link)

    def _size(self, link: Link) -> int | None:
        return self._all()._size(link)

    def _iter_links(self) -> Iterator[Link]:
        return self._all().iter_links()

    def _put(self, link: Link, data: BlockData) -> None:
        self._check_writable()

    def _check_writable(self) -> None:
        raise ReadOnlyError(
            f"{self!r} takes blocks one CAR per task: write with "
            f"to_ipld_zarr(ds, 'car:{self.url}'), or into another blockstore and "
            "export_car_shards it here"
        )

    # -- the writer's side ----------------------------------------------------------------------
    def car_path(self, root: Link) -> str:
        name = f"{link_str(root)}.car"
        return os.path.join(self.path, name) if self._fs is None else f"{self.path}/{name}"

    def existing(self) -> list[str]:
        """The CAR files in the directory now."""
        return car_files(self._fs, self.path)

    def with_context(self, cars: Sequence[str]) -> TaskCarBlockstore:
        """A copy whose tasks read ``cars`` (paths in this directory) besides their inputs."""
        return TaskCarBlockstore(
            self.url,
            storage_options=self.storage_options,
            verify=self.verify,
            hasher=self.hasher,
            max_block_size=self.max_block_size,
            _context=cars,
        )

    def open_task(self, inputs: Sequence[Link] = ()) -> TaskBuffer:
        """A fresh buffer for one task that reads the context and ``inputs``' CARs."""
        own = [self.car_path(r) for r in inputs]
        cars = [*self.context, *(p for p in dict.fromkeys(own) if p not in self.context)]
        reader = CarSetBlockstore(
            [self._url_of(p) for p in cars],
            verify=self.verify,
            storage_options=self.storage_options,
        )
        return TaskBuffer(
            reader,
            len(self.context),
            self.context,
            hasher=self.hasher,
            max_block_size=self.max_block_size,
            verify=self.verify,
        )

    def finish_task(self, buffer: Blockstore, root: Link) -> str:
        """Write ``<root>.car`` from ``buffer`` (what :meth:`open_task` gave) unless it
        exists; return its path."""
        if not isinstance(buffer, TaskBuffer):
            raise TypeError(f"finish_task takes the buffer open_task gave, not {buffer!r}")
        path = self.car_path(root)
        if self._exists(path):
            return path  # a retry, or a root another task completed already
        blocks = list(buffer.car_blocks(root))
        if self._fs is None:
            os.makedirs(self.path, exist_ok=True)
            tmp = os.path.join(self.path, f".{link_str(root)}.{os.getpid()}-{next(_counter)}.tmp")
            try:
                with open(tmp, "xb") as f:
                    write_car_blocks(f.write, [root], blocks)
                    f.flush()
                    os.fsync(f.fileno())  # the rename must not land before the data
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        else:
            # Object stores publish a file when its upload completes: no partial CAR is
            # ever visible under the final name.
            self._fs.makedirs(self.path, exist_ok=True)
            with self._fs.open(path, "wb") as f:
                write_car_blocks(f.write, [root], blocks)
        return path

    def open_write(self, base: Link | None = None) -> TaskBuffer:
        """The template's buffer; writing on top of ``base`` reads every CAR there now
        (the base's template and chunks live in CARs named after other roots)."""
        return self.with_context(self.existing() if base is not None else []).open_task()

    def finish_write(self, task: Blockstore, roots: Sequence[Link]) -> TaskCarBlockstore:
        """Write one CAR per root (the template's, and the partials' base's when a region
        write has one); the tasks read them (and the base's CARs) as context."""
        if not isinstance(task, TaskBuffer):
            raise TypeError(f"finish_write takes the buffer open_write gave, not {task!r}")
        made = [self.finish_task(task, root) for root in roots]
        return self.with_context([*made, *(p for p in task.context_cars if p not in made)])

    def _exists(self, path: str) -> bool:
        return os.path.exists(path) if self._fs is None else bool(self._fs.exists(path))

    def _url_of(self, path: str) -> str:
        if self._fs is None:
            return path
        return self._fs.unstrip_protocol(path)  # type: ignore[no-any-return]

    # -- plumbing -------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reader"] = None  # indexes are re-read where the store lands
        return state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskCarBlockstore) and (self.url, self.context) == (
            other.url,
            other.context,
        )

    def __hash__(self) -> int:
        return hash((TaskCarBlockstore, self.url, self.context))

    def __repr__(self) -> str:
        return f"TaskCarBlockstore({self.url!r})"
