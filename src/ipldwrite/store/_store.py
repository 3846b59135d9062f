"""A zarr v3 store over a zarr-on-IPLD DAG."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from multiformats import CID
from zarr.abc.buffer import Buffer, BufferPrototype
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.buffer import default_buffer_prototype

from ipldwrite.blockstore import Blockstore, default_blockstore, resolve_blockstore
from ipldwrite.dag import (
    LRU,
    ArrayNode,
    DatasetReader,
    GroupNode,
    NodeIO,
    chunk_size,
    commit_changes,
    iter_entries,
    join_path,
    lookup,
    parent_of,
    read_chunk,
    render_zarr_json,
    write_chunk,
)
from ipldwrite.errors import BlockError
from ipldwrite.ipld import Link, link_str, to_cid, to_link

__all__ = ["IPLDStore", "default_blockstore", "resolve_blockstore"]


class _View:
    """Read access to the keys of a committed dataset."""

    def __init__(self, blockstore: Blockstore, root: Link) -> None:
        self.blockstore = blockstore
        self.reader = DatasetReader(blockstore, root)
        self._io = NodeIO(blockstore, cache_nodes=256)
        self._io_lock = threading.Lock()
        # zarr reads a node's zarr.json again for every array and group it opens, and
        # rendering goes through zarr's metadata classes: the view (one root, so a path
        # names one node) keeps what it rendered, for up to 1024 nodes.
        self._rendered: LRU[str, bytes] = LRU(1024)

    def locate(self, key: str) -> bytes | Link | None:
        """Rendered metadata bytes, a chunk link, or None if the key does not exist."""
        path, node, rest = self.reader.resolve(key)
        if rest == "zarr.json":
            if node is None or node.doc is None:
                return None
            doc, order = node.doc, node.order
            return self._rendered.get_or_make(path, lambda _: render_zarr_json(doc, order))
        if isinstance(node, ArrayNode):
            index = node.keys.parse(rest)
            if index is not None:
                with self._io_lock:
                    return lookup(self._io, node.tiling, node.manifest, index)
        return None

    def array_keys(self, path: str, node: ArrayNode) -> Iterator[str]:
        with self._io_lock:
            entries = [index for index, _ in iter_entries(self._io, node.tiling, node.manifest)]
        for index in entries:
            yield join_path(path, node.keys.format(index))

    def keys(self, prefix: str = "") -> Iterator[str]:
        for path, node in self.reader.walk():
            node_prefix = f"{path}/" if path else ""
            if not (node_prefix.startswith(prefix) or prefix.startswith(node_prefix)):
                continue
            if node.doc is not None:
                yield join_path(path, "zarr.json")
            if isinstance(node, ArrayNode):
                yield from self.array_keys(path, node)

    def list_dir(self, path: str) -> set[str]:
        node_path, node, rest = self.reader.resolve(path)
        if isinstance(node, GroupNode):
            if rest:
                return set()
            names = set(node.members)
            if node.doc is not None:
                names.add("zarr.json")
            return names
        if isinstance(node, ArrayNode):
            names = set()
            if not rest:
                names.add("zarr.json")
                if node.manifest is not None and node.keys.encoding == "default":
                    names.add("c")
                    return names
            inner = f"{path}/" if path else ""
            for key in self.array_keys(node_path, node):
                if key.startswith(inner):
                    names.add(key[len(inner) :].split("/")[0])
            return names
        return set()


@contextmanager
def _needed_for(key: str) -> Iterator[None]:
    """Name the zarr key in a block error raised while reading it: the CID alone does not
    tell the user which variable and chunk are damaged."""
    try:
        yield
    except BlockError as exc:
        if exc.key is not None:
            raise
        raise type(exc)(f"{exc} (needed for zarr key {key!r})", cid=exc.cid, key=key) from exc


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[len(data) - byte_range.suffix :] if byte_range.suffix else b""
    raise TypeError(f"Unexpected byte_range, got {byte_range!r}")


class IPLDStore(Store):
    """A zarr v3 store whose contents are a zarr-on-IPLD DAG in a blockstore.

    Opened on a root CID it reads that dataset (read-only by default). Opened writable it
    stages every write — chunks go to the blockstore at once as raw blocks (or UnixFS file
    DAGs when bigger than a block), the key → link mapping stays in memory — and
    :meth:`commit` turns the staged key space into a new root CID. Nothing a reader can
    reach changes until then; blocks written by a writer that never commits are
    unreferenced garbage, never a half-written dataset.

    Parameters
    ----------
    blockstore
        A :class:`~ipldwrite.blockstore.Blockstore`, a directory path, or None for the
        embedded default (see :func:`default_blockstore`).
    root
        The dataset to read or to update (a CID or its string); None for a new dataset.
    read_only
        Defaults to True when ``root`` is given, False otherwise.
    """

    supports_consolidated_metadata = False  # the DAG is already one read per node

    def __init__(
        self,
        blockstore: Blockstore | str | os.PathLike[str] | None = None,
        root: CID | str | Link | None = None,
        *,
        read_only: bool | None = None,
    ) -> None:
        super().__init__(read_only=root is not None if read_only is None else read_only)
        self.blockstore = resolve_blockstore(blockstore)
        self._root: Link | None = to_link(root) if root is not None else None
        self._staged: dict[str, bytes | Link | None] = {}
        self._lock = threading.Lock()
        self._view_cache: _View | None = None

    # -- identity ------------------------------------------------------------------------
    @property
    def root(self) -> CID | None:
        """The CID this store reads (the last commit, or the dataset it was opened on)."""
        return to_cid(self._root) if self._root is not None else None

    def __eq__(self, other: object) -> bool:
        # By value, as zarr's own stores compare: zarr (and its StoreTests) expect a store
        # to equal an unpickled copy of itself and one opened with the same arguments.
        return (
            isinstance(other, IPLDStore)
            and self.blockstore == other.blockstore
            and self._root == other._root
            and self.read_only == other.read_only
            and self._staged == other._staged
        )

    def __hash__(self) -> int:
        # Only what never changes after construction (the root and the staged keys do):
        # equal stores share their blockstore, so they hash alike, and a store keeps its
        # hash across writes and commits.
        return hash((IPLDStore, self.blockstore))

    def __repr__(self) -> str:
        # zarr calls str(store) for every node it opens: link_str is ~60x cheaper than
        # building a multiformats.CID (same text).
        state = f"root={link_str(self._root)}" if self._root is not None else "new dataset"
        mode = "read-only" if self.read_only else f"writable, {len(self._staged)} staged keys"
        return f"IPLDStore({self.blockstore!r}, {state}, {mode})"

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            state = self.__dict__.copy()
            state["_staged"] = dict(self._staged)
        del state["_lock"]
        state["_view_cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def with_read_only(self, read_only: bool = False) -> IPLDStore:
        clone = type(self)(self.blockstore, self._root, read_only=read_only)
        clone._staged = self._staged  # the same staging area: the same "location"
        return clone

    @property
    def supports_writes(self) -> bool:
        return True

    @property
    def supports_deletes(self) -> bool:
        return True

    @property
    def supports_listing(self) -> bool:
        return True

    def _view(self) -> _View | None:
        if self._root is None:
            return None
        view = self._view_cache
        if view is None or view.reader.root != self._root:
            view = self._view_cache = _View(self.blockstore, self._root)
        return view

    # -- reading -------------------------------------------------------------------------
    def locate(self, key: str) -> bytes | Link | None:
        with self._lock:
            if key in self._staged:
                return self._staged[key]
        view = self._view()
        return view.locate(key) if view is not None else None

    def get_sync(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        if byte_range is not None and not isinstance(
            byte_range, RangeByteRequest | OffsetByteRequest | SuffixByteRequest
        ):
            raise TypeError(f"Unexpected byte_range, got {byte_range!r}")
        with _needed_for(key):
            data = self._read(key, byte_range)
        if data is None:
            return None
        return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    def _read(self, key: str, byte_range: ByteRequest | None) -> bytes | None:
        found = self.locate(key)
        if found is None:
            return None
        if isinstance(found, bytes):
            data = _slice(found, byte_range)
        elif byte_range is None:
            data = read_chunk(self.blockstore, found)
        elif isinstance(byte_range, RangeByteRequest):
            data = read_chunk(self.blockstore, found, byte_range.start, byte_range.end)
        elif isinstance(byte_range, OffsetByteRequest):
            data = read_chunk(self.blockstore, found, byte_range.offset)
        else:
            size = chunk_size(self.blockstore, found)
            data = read_chunk(self.blockstore, found, max(0, size - byte_range.suffix))
            data = data if byte_range.suffix else b""
        return data

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        # docstring inherited
        if not self._is_open:
            await self._open()
        return await asyncio.to_thread(self.get_sync, key, prototype, byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        # docstring inherited
        requests = list(key_ranges)
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in requests)))

    async def exists(self, key: str) -> bool:
        # docstring inherited
        with _needed_for(key):
            return await asyncio.to_thread(self.locate, key) is not None

    async def getsize(self, key: str) -> int:
        # docstring inherited
        with _needed_for(key):
            found = await asyncio.to_thread(self.locate, key)
            if found is None:
                raise FileNotFoundError(key)
            if isinstance(found, bytes):
                return len(found)
            return await asyncio.to_thread(chunk_size, self.blockstore, found)

    # -- writing -------------------------------------------------------------------------
    def set_sync(self, key: str, value: Buffer) -> None:
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(f"expected a zarr Buffer for {key!r}, got {type(value).__name__}")
        staged: bytes | Link
        if parent_of(key)[1] == "zarr.json":
            staged = value.to_bytes()
        else:
            # No copy: hashing and writing read zarr's buffer in place.
            staged = write_chunk(self.blockstore, memoryview(value.as_buffer_like()))
        with self._lock:
            self._staged[key] = staged

    async def set(self, key: str, value: Buffer) -> None:
        # docstring inherited
        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(self.set_sync, key, value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        # docstring inherited
        if not await self.exists(key):
            await self.set(key, value)

    def delete_sync(self, key: str) -> None:
        self._check_writable()
        with self._lock:
            if self._root is None:
                self._staged.pop(key, None)
            else:
                self._staged[key] = None

    async def delete(self, key: str) -> None:
        # docstring inherited
        self._check_writable()
        self.delete_sync(key)

    async def clear(self) -> None:
        # docstring inherited
        self._check_writable()
        with self._lock:
            self._staged.clear()
            self._root = None

    # -- listing -------------------------------------------------------------------------
    def keys_under(self, prefix: str = "") -> list[str]:
        with self._lock:
            staged = dict(self._staged)
        view = self._view()
        keys = [k for k, v in staged.items() if v is not None and k.startswith(prefix)]
        if view is not None:
            keys.extend(k for k in view.keys(prefix) if k.startswith(prefix) and k not in staged)
        return keys

    async def list(self) -> AsyncIterator[str]:
        # docstring inherited
        for key in await asyncio.to_thread(self.keys_under):
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        # docstring inherited
        for key in await asyncio.to_thread(self.keys_under, prefix):
            yield key

    def children(self, prefix: str) -> Sequence[str]:
        """The names directly under ``prefix`` (what :meth:`list_dir` yields), synchronously."""
        path = prefix.rstrip("/")
        inner = f"{path}/" if path else ""
        with self._lock:
            staged = dict(self._staged)
        view = self._view()
        names = {
            k[len(inner) :].split("/")[0]
            for k, v in staged.items()
            if v is not None and k.startswith(inner)
        }
        if view is not None:
            if any(v is None and k.startswith(inner) for k, v in staged.items()):
                # Deletions may empty a directory: count only keys that survive.
                names.update(k[len(inner) :].split("/")[0] for k in self.keys_under(inner))
            else:
                names.update(view.list_dir(path))
        return sorted(names)

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        # docstring inherited
        for name in await asyncio.to_thread(self.children, prefix):
            yield name

    # -- committing ----------------------------------------------------------------------
    def staged(self) -> dict[str, bytes | Link | None]:
        """The uncommitted writes: key → metadata bytes, chunk link, or None (deleted)."""
        with self._lock:
            return dict(self._staged)

    def commit(self) -> CID:
        """Write the staged changes as a new dataset and return its root CID.

        Raises :class:`~ipldwrite.errors.FormatError` (and writes no root) when the staged
        keys are not a zarr v3 hierarchy.
        """
        self._check_writable()
        with self._lock:
            staged = dict(self._staged)
        root = commit_changes(self.blockstore, self._root, staged)
        with self._lock:
            for key, value in staged.items():
                if self._staged.get(key, ...) is value:
                    del self._staged[key]
            self._root = root
        return to_cid(root)
