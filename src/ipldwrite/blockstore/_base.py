"""The blockstore contract: where blocks live.

One small abstract base with real defaults: a backend implements ``_get``, ``_put`` and
``_has`` (plus ``_iter_links`` if it can list, and ``_size`` if it can tell a block's size
without reading it) and inherits hashing, size limits, identity CIDs, verification and the
batch variants. Consumers type against the least they need:
the CAR exporter takes a :class:`BlockGetter`, a chunk writer a :class:`BlockPutter`.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Final, Protocol, runtime_checkable

from ipldwrite.errors import (
    BlockNotFoundError,
    BlockTooLargeError,
    CorruptBlockError,
    ReadOnlyError,
)
from ipldwrite.ipld import IDENTITY, RAW, Link, compute_link, link_str, parse_cid_bytes
from ipldwrite.ipld import verify_block as _verify

__all__ = [
    "DEFAULT_MAX_BLOCK_SIZE",
    "HARD_MAX_BLOCK_SIZE",
    "MIN_MAX_BLOCK_SIZE",
    "BlockData",
    "BlockGetter",
    "BlockPutter",
    "Blockstore",
    "DagImporter",
    "check_block_limit",
]

#: 1 MiB, envelope included: what every IPFS implementation accepts (Kubo ≤ 0.39 refuses more).
DEFAULT_MAX_BLOCK_SIZE: Final = 1 << 20
#: The Bitswap ceiling; no configuration may go above it.
HARD_MAX_BLOCK_SIZE: Final = 2 << 20
#: Manifest nodes are up to ~170 KiB (docs/spec.md); a limit below this could not hold them.
MIN_MAX_BLOCK_SIZE: Final = 256 << 10


def check_block_limit(limit: int) -> int:
    if not MIN_MAX_BLOCK_SIZE <= limit <= HARD_MAX_BLOCK_SIZE:
        raise ValueError(
            f"max_block_size={limit} is outside [{MIN_MAX_BLOCK_SIZE}, {HARD_MAX_BLOCK_SIZE}]: "
            "blocks above 2 MiB cannot travel over Bitswap and manifest nodes need 256 KiB"
        )
    return limit


#: What ``put`` accepts: backends that keep the data copy it, so a view of a reusable
#: buffer (zarr hands out its encode buffers) is safe and saves a copy per chunk.
BlockData = bytes | memoryview


@runtime_checkable
class BlockGetter(Protocol):
    def get(self, link: Link) -> bytes: ...


@runtime_checkable
class BlockPutter(Protocol):
    def put(self, data: BlockData, codec: int = RAW) -> Link: ...


@runtime_checkable
class DagImporter(Protocol):
    """A store that takes whole DAGs in one request and pins them (an IPFS node's RPC
    API): what ``ipldwrite push`` needs besides the blockstore contract."""

    def import_car(self, car: bytes | IO[bytes]) -> list[Link]: ...

    def pin(self, root: object) -> None: ...


class Blockstore(ABC):
    """Content-addressed block storage.

    Parameters
    ----------
    max_block_size
        Blocks larger than this are refused with :class:`BlockTooLargeError`.
    hasher
        Multihash for new blocks: ``"sha2-256"`` (default) or ``"blake3"``.
    verify
        Re-hash every block on read and raise :class:`CorruptBlockError` on a mismatch
        (default). A CID must never name wrong data: a flipped bit on disk, a truncated
        file or another block saved under the wrong name would otherwise reach the user as
        wrong values. sha2-256 costs ~0.6 ms per MiB, next to a zstd decode; pass
        ``verify=False`` only for a store you trust (``benchmarks/bench_read.py`` measures
        the difference). Blocks given with their link (:meth:`put_block`) are checked too.
    """

    #: Whether Dask workers in other processes (or machines) see the same blocks.
    shared_between_processes: bool = False
    supports_listing: bool = False

    def __init__(
        self,
        *,
        max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
        hasher: str = "sha2-256",
        verify: bool = True,
        read_only: bool = False,
    ) -> None:
        self.max_block_size = check_block_limit(max_block_size)
        compute_link(b"", hasher=hasher)  # refuse unknown hashers now, not at the first put
        self.hasher = hasher
        self.verify = verify
        self.read_only = read_only

    # -- what a backend implements --------------------------------------------------------
    @abstractmethod
    def _get(self, link: Link) -> bytes | None:
        """The block's bytes, or None if absent."""

    @abstractmethod
    def _put(self, link: Link, data: BlockData) -> None:
        """Store ``data`` under ``link``; the caller has already hashed and size-checked it."""

    @abstractmethod
    def _has(self, link: Link) -> bool: ...

    def _iter_links(self) -> Iterator[Link]:
        raise io.UnsupportedOperation(
            f"{type(self).__name__} cannot list its blocks (see supports_listing)"
        )

    def _size(self, link: Link) -> int | None:
        """The block's size in bytes, or None if absent. Backends that know sizes without
        reading the data (file metadata, an index) override this."""
        data = self._get(link)
        return None if data is None else len(data)

    # -- the contract ---------------------------------------------------------------------
    def get(self, link: Link) -> bytes:
        """The bytes of block ``link``; :class:`BlockNotFoundError` if absent."""
        raw = link.cid_bytes
        if raw[2:3] == b"\x00" or raw[1:2] == b"\x00":  # cheap pre-check before parsing
            parts = parse_cid_bytes(raw)
            if parts.hash_code == IDENTITY:
                return parts.digest
        data = self._get(link)
        if data is None:
            raise self._not_found(link)
        # An empty block has one CID: checking it costs nothing, and a 0-byte file left by
        # a full disk must not reach a decompressor as "valid" input, even unverified.
        if self.verify or not data:
            _verify(link, data)
        return data

    def size(self, link: Link) -> int:
        """The size in bytes of block ``link`` (what a UnixFS Tsize counts), read from the
        backend's metadata where it can; :class:`BlockNotFoundError` if absent."""
        raw = link.cid_bytes
        if raw[2:3] == b"\x00" or raw[1:2] == b"\x00":
            parts = parse_cid_bytes(raw)
            if parts.hash_code == IDENTITY:
                return len(parts.digest)
        size = self._size(link)
        if size is None:
            raise self._not_found(link)
        return size

    def _not_found(self, link: Link) -> BlockNotFoundError:
        return BlockNotFoundError(
            f"block {link_str(link)} is not in {self!r}. It may live in another blockstore: "
            "import the CAR that holds it (`ipldwrite import-car`) or open the dataset "
            "with the blockstore it was written to.",
            cid=link,
        )

    def put(self, data: BlockData, codec: int = RAW) -> Link:
        """Hash ``data`` as a block of ``codec``, store it, return its link."""
        link = compute_link(data, codec, self.hasher)
        self._store(link, data)  # just hashed: no second check
        return link

    def put_block(self, link: Link, data: BlockData) -> None:
        """Store a block whose link the caller computed (verified when ``verify`` is set)."""
        self.check_put(link, data)
        self._put(link, data)

    def check_put(self, link: Link, data: BlockData) -> None:
        """What :meth:`put_block` checks before storing: (with ``verify``) hashing to
        ``link``, writable, within the size limit. Backends that send blocks in batches
        check them all before sending any."""
        if self.verify:
            _verify(link, data)
        self._check_writable()
        self._check_size(link, data)

    def repair_block(self, link: Link, data: BlockData) -> bool:
        """Store ``data`` under ``link`` even where a copy exists, unless that copy is sound.

        ``put`` trusts a stored copy of the same size (re-reading and hashing every
        deduplicated block would cost as much as writing it); this reads the stored copy,
        hashes it and replaces it when it is missing or corrupt. ``data`` itself is always
        checked. Returns True when it wrote.
        """
        _verify(link, data)
        self._check_writable()
        stored = self._get(link)
        if stored is not None:
            try:
                _verify(link, stored)
                return False
            except CorruptBlockError:
                pass
        self._check_size(link, data)
        self._replace(link, data)
        return True

    def _replace(self, link: Link, data: BlockData) -> None:
        """Overwrite the stored copy of ``link`` (damaged or absent). Default: ``_put``,
        right for backends whose ``_put`` overwrites."""
        self._put(link, data)

    def _store(self, link: Link, data: BlockData) -> None:
        self._check_writable()
        self._check_size(link, data)
        self._put(link, data)

    def _check_size(self, link: Link, data: BlockData) -> None:
        if len(data) > self.max_block_size:
            raise BlockTooLargeError(
                f"block {link_str(link)} is {len(data)} bytes, above the limit of "
                f"{self.max_block_size}. Larger zarr chunks are split into UnixFS file DAGs "
                "automatically; for other blocks, reduce their size.",
                cid=link,
            )

    def has(self, link: Link) -> bool:
        return self._has(link)

    def get_many(self, links: Iterable[Link]) -> Iterator[tuple[Link, bytes]]:
        for link in links:
            yield link, self.get(link)

    def put_many(self, blocks: Iterable[tuple[Link, bytes]]) -> None:
        for link, data in blocks:
            self.put_block(link, data)

    def has_many(self, links: Iterable[Link]) -> list[bool]:
        return [self._has(link) for link in links]

    def iter_links(self) -> Iterator[Link]:
        """Every block's link, where the backend can list (``supports_listing``)."""
        return self._iter_links()

    # -- the per-task hook ------------------------------------------------------------------
    # What a backend needs around one write or merge task (a buffer flushed as one CAR, a
    # batch uploaded concurrently, a connection pool per worker) goes through these two
    # methods, so the writer above never names a backend.
    def open_task(self, inputs: Sequence[Link] = ()) -> Blockstore:
        """The blockstore one task writes through; ``inputs`` are the roots it will read
        (a merge task's partial datasets). Default: this blockstore itself."""
        return self

    def finish_task(self, task: Blockstore, root: Link) -> str | None:
        """Make durable what ``task`` (from :meth:`open_task`) wrote, now that the task's
        result is ``root``; return a name for it where the backend has one (a CAR's path).
        Called only after the task succeeded. Default: nothing to do."""
        return None

    # A write's first phase (the template: hierarchy, metadata, numpy-backed variables)
    # runs on the client, before any task; these two bracket it the same way.
    def open_write(self, base: Link | None = None) -> Blockstore:
        """The blockstore the client writes a write's template through; ``base`` is the
        dataset written on top of, if any. Default: :meth:`open_task`."""
        return self.open_task(() if base is None else (base,))

    def finish_write(self, task: Blockstore, roots: Sequence[Link]) -> Blockstore:
        """Make durable what ``task`` (from :meth:`open_write`) wrote: the DAGs under
        ``roots`` (the template first, then the partials' base where a region write has
        one). Return the blockstore the write's tasks receive. Default: :meth:`finish_task`
        on the template (it makes everything the task holds durable), then this blockstore."""
        self.finish_task(task, roots[0])
        return self

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{self!r} is read-only; open a writable blockstore to add blocks")

    def __contains__(self, link: object) -> bool:
        return isinstance(link, Link) and self._has(link)
