from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.blockstore._location import car_location
from ipldwrite.errors import CarError, ReadOnlyError
from ipldwrite.ipld import Link, link_str
from ipldwrite.ipld._car import (
    CarLayout,
    iter_sections,
    multihash_of,
    read_index,
    read_layout,
    read_section_with,
)

__all__ = ["CarSetBlockstore", "car_files"]

CarSource = str | os.PathLike[str]
_EMPTY_U64: Final = np.empty(0, dtype=np.uint64)
_EMPTY_U32: Final = np.empty(0, dtype=np.uint32)
#: The most a remote read fetches ahead to get a whole section in one request (a block is
#: at most 2 MiB; a sparser index than the file's sections means "do not guess").
_MAX_PREFETCH: Final = (2 << 20) + 4096


def _filesystem(location: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    """(fsspec filesystem or None for plain local files, path)."""
    return car_location(location, storage_options)


def car_files(fs: Any, directory: str) -> list[str]:
    """The CAR files directly inside ``directory``, sorted; temporary files are skipped."""
    if fs is None:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        return sorted(
            os.path.join(directory, n) for n in names if n.endswith(".car") and n[0] != "."
        )
    if not fs.exists(directory):
        return []
    paths = fs.ls(directory, detail=False)
    return sorted(p for p in paths if p.endswith(".car") and p.rpartition("/")[2][0] != ".")


def _prefix(digest: bytes) -> int:
    """The key of the lookup table: a digest's first 8 bytes as a big-endian integer."""
    return int.from_bytes(digest[:8].ljust(8, b"\0"), "big")


@dataclass(frozen=True, slots=True)
class _Table:
    """Every indexed block of the set: sorted digest prefixes → (CAR number, section offset).

    About 20 bytes a block, in three numpy arrays, so millions of blocks stay cheap.
    """

    keys: npt.NDArray[np.uint64]
    cars: npt.NDArray[np.uint32]
    offsets: npt.NDArray[np.uint64]

    def candidates(self, key: int) -> Iterator[tuple[int, int]]:
        lo = int(np.searchsorted(self.keys, np.uint64(key), side="left"))
        hi = int(np.searchsorted(self.keys, np.uint64(key), side="right"))
        for i in range(lo, hi):
            yield int(self.cars[i]), int(self.offsets[i])


class CarSetBlockstore(Blockstore):
    """Many CAR files read as one blockstore (read-only): a sharded export, or the CARs a
    distributed write left in a directory.

    ``cars`` is a directory (every ``*.car`` directly in it), one CAR, or a list of CARs;
    local paths or fsspec URLs (``s3://…``, with ``storage_options``). Nothing is read until
    the first lookup, which reads each CAR's header and CARv2 index (CARv1 files, and
    indexes of other codecs, are scanned once for section offsets) into one sorted table of
    about 20 bytes a block: data stays on disk and every read is one ``pread`` (or one
    range request). Each lookup checks that the section it lands on holds the CID asked for;
    an index that points elsewhere raises :class:`CarError` naming the file, the CID and the
    offset ("wrong index"). A block in several CARs is read from the first.

    Given a directory, a miss re-lists it and picks up CARs that appeared since (tasks of a
    distributed write add them as they finish). Pickling carries only the locations.
    """

    shared_between_processes = True
    supports_listing = True

    def __init__(
        self,
        cars: CarSource | Iterable[CarSource],
        *,
        verify: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(verify=verify, read_only=True)
        options = dict(storage_options or {})
        self.storage_options = options
        self._directory: str | None = None
        if isinstance(cars, str | os.PathLike):
            location = os.fspath(cars)
            fs, path = _filesystem(location, options)
            is_dir = os.path.isdir(path) if fs is None else fs.isdir(path)
            if is_dir or not location.endswith(".car"):
                self._directory = path
                paths: list[str] = []
            else:
                paths = [path]
        else:
            paths = []
            fs = None
            for i, item in enumerate(cars):
                item_fs, path = _filesystem(os.fspath(item), options)
                if i and type(item_fs) is not type(fs):
                    raise ValueError("all CARs of a CarSetBlockstore must be on one filesystem")
                fs = item_fs
                paths.append(path)
        self._fs = fs
        self._requested = paths
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._paths: list[str] = []
        self._layouts: list[CarLayout] = []
        self._parts: list[tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]] = []
        self._starts: list[npt.NDArray[np.uint64]] = []  # each CAR's section offsets, sorted
        self._table: _Table | None = None

    # -- loading --------------------------------------------------------------------------------
    def _loaded(self) -> _Table:
        table = self._table
        if table is not None:
            return table
        with self._lock:
            if self._table is None:
                wanted = self._requested if self._directory is None else self._listing()
                self._add(wanted)
            assert self._table is not None
            return self._table

    def _listing(self) -> list[str]:
        assert self._directory is not None
        return car_files(self._fs, self._directory)

    def refresh(self) -> bool:
        """Pick up CARs that appeared in the directory since; True if there were any."""
        if self._directory is None:
            return False
        self._loaded()
        with self._lock:
            known = set(self._paths)
            new = [p for p in self._listing() if p not in known]
            if new:
                self._add(new)
            return bool(new)

    def _add(self, paths: list[str]) -> None:
        """Read the headers and indexes of ``paths`` and rebuild the table (under the lock)."""
        for path in paths:
            number = len(self._paths)
            layout, keys, offsets = self._index(path)
            self._paths.append(path)
            self._layouts.append(layout)
            self._parts.append((keys, np.full(len(keys), number, dtype=np.uint32), offsets))
            self._starts.append(np.unique(offsets))
        if self._parts:
            keys = np.concatenate([p[0] for p in self._parts])
            order = np.argsort(keys, kind="stable")  # stable: equal keys keep CAR order
            table = _Table(
                keys[order],
                np.concatenate([p[1] for p in self._parts])[order],
                np.concatenate([p[2] for p in self._parts])[order],
            )
        else:
            table = _Table(_EMPTY_U64, _EMPTY_U32, _EMPTY_U64)
        self._table = table

    def _open(self, path: str) -> Any:
        return open(path, "rb") if self._fs is None else self._fs.open(path, "rb")

    def _index(self, path: str) -> tuple[CarLayout, npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        with self._open(path) as f:
            layout = read_layout(f, path)
            index = read_index(f, layout)
            if index is None:
                keys: list[int] = []
                offsets: list[int] = []
                for section in iter_sections(f, layout):
                    keys.append(_prefix(multihash_of(section.link)[1]))
                    offsets.append(section.offset)
                return (
                    layout,
                    np.array(keys, dtype=np.uint64),
                    np.array(offsets, dtype=np.uint64),
                )
        key_parts = [_EMPTY_U64]
        offset_parts = [_EMPTY_U64]
        for bucket in index.buckets.values():
            width = bucket.width
            rows = np.frombuffer(bucket.entries, dtype=np.uint8).reshape(-1, width)
            head = np.zeros((len(rows), 8), dtype=np.uint8)
            digest_length = width - 8
            head[:, : min(8, digest_length)] = rows[:, : min(8, digest_length)]
            key_parts.append(head.view(">u8").ravel().astype(np.uint64))
            relative = rows[:, digest_length:].copy().view("<u8").ravel().astype(np.uint64)
            offset_parts.append(relative + np.uint64(layout.payload_offset))
        return layout, np.concatenate(key_parts), np.concatenate(offset_parts)

    # -- reading --------------------------------------------------------------------------------
    def _reader(
        self, path: str, number: int | None = None, offset: int = 0
    ) -> tuple[Callable[[int, int], bytes], Callable[[], None]]:
        """A ``pread(length, offset)`` over ``path`` and its closer. Remote, with the CAR's
        ``number`` and a section's ``offset``: the whole section is fetched in one range
        request (it ends where the index's next section starts), not its head then data."""
        if self._fs is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            return (lambda n, at: os.pread(fd, n, at)), (lambda: os.close(fd))
        fs = self._fs

        def fetch(n: int, at: int) -> bytes:
            return fs.cat_file(path, start=at, end=at + n)  # type: ignore[no-any-return]

        if number is None:
            return fetch, lambda: None
        starts = self._starts[number]
        after = int(np.searchsorted(starts, np.uint64(offset), side="right"))
        end = int(starts[after]) if after < len(starts) else self._layouts[number].payload_end
        if not 0 < end - offset <= _MAX_PREFETCH:
            return fetch, lambda: None  # a sparse index: fetch what the section says
        section = fetch(end - offset, offset)

        def pread(n: int, at: int) -> bytes:
            if offset <= at and at + n <= end:
                return section[at - offset : at - offset + n]
            return fetch(n, at)

        return pread, lambda: None

    def _find(self, link: Link, want_data: bool) -> tuple[int, bytes | None] | None:
        """(data length, data or None) of ``link``'s block, or None if no CAR holds it."""
        found = self._search(link, want_data)
        if found is None and self._directory is not None and self.refresh():
            found = self._search(link, want_data)
        return found

    def _search(self, link: Link, want_data: bool) -> tuple[int, bytes | None] | None:
        table = self._loaded()
        digest = multihash_of(link)[1]
        key = _prefix(digest)
        for number, offset in table.candidates(key):
            path = self._paths[number]
            pread, close = self._reader(path, number if want_data else None, offset)
            try:
                try:
                    at, data_offset, length = read_section_with(
                        pread, offset, self._layouts[number]
                    )
                except CarError as exc:
                    raise CarError(
                        f"{path}: wrong index: it places a block with digest prefix "
                        f"{digest[:8].hex()} (asked for {link_str(link)}) at byte {offset}, "
                        f"where {exc}. Rebuild the CAR's index or export the CAR again."
                    ) from None
                if at.cid_bytes != link.cid_bytes:
                    if _prefix(multihash_of(at)[1]) != key:
                        raise CarError(
                            f"{path}: wrong index: it places a block with digest prefix "
                            f"{digest[:8].hex()} (asked for {link_str(link)}) at byte {offset}, "
                            f"which holds {link_str(at)}. Rebuild the CAR's index or export "
                            "the CAR again."
                        )
                    continue  # another codec over the same multihash, or a prefix collision
                if not want_data:
                    return length, None
                data = pread(length, data_offset)
            finally:
                close()
            if len(data) != length:
                raise CarError(f"{path} shrank while open: block {link_str(link)} is cut short")
            return length, data
        return None

    def _get(self, link: Link) -> bytes | None:
        found = self._find(link, True)
        return None if found is None else found[1]

    def _has(self, link: Link) -> bool:
        return self._find(link, False) is not None

    def _size(self, link: Link) -> int | None:
        found = self._find(link, False)
        return None if found is None else found[0]

    def _put(self, link: Link, data: BlockData) -> None:
        raise ReadOnlyError(
            f"{self!r} is read-only; import its CARs into a writable blockstore to add blocks"
        )

    def where(self, link: Link) -> int | None:
        """The position in :attr:`paths` of the first CAR holding ``link`` (no refresh)."""
        table = self._loaded()
        digest = multihash_of(link)[1]
        for number, offset in table.candidates(_prefix(digest)):
            pread, close = self._reader(self._paths[number])
            try:
                at, _, _ = read_section_with(pread, offset, self._layouts[number])
            except CarError:
                continue  # reported by a read; here only "which CAR" matters
            finally:
                close()
            if at.cid_bytes == link.cid_bytes:
                return number
        return None

    def _iter_links(self) -> Iterator[Link]:
        self._loaded()
        seen: set[bytes] = set()
        for path, layout in zip(list(self._paths), list(self._layouts), strict=True):
            with self._open(path) as f:
                for section in iter_sections(f, layout):
                    if section.link.cid_bytes not in seen:
                        seen.add(section.link.cid_bytes)
                        yield section.link

    # -- describing -----------------------------------------------------------------------------
    @property
    def paths(self) -> list[str]:
        """The CAR files read, in lookup order."""
        self._loaded()
        return list(self._paths)

    @property
    def roots(self) -> list[Link]:
        """The roots the CAR headers name, each once, in file order."""
        self._loaded()
        out: dict[bytes, Link] = {}
        for layout in self._layouts:
            for root in layout.roots:
                out.setdefault(root.cid_bytes, root)
        return list(out.values())

    def __getstate__(self) -> dict[str, Any]:
        return {
            "directory": self._directory,
            "requested": self._requested,
            "fs": self._fs,
            "storage_options": self.storage_options,
            "verify": self.verify,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Indexes are re-read where the store lands (a Dask worker), never shipped.
        Blockstore.__init__(self, verify=state["verify"], read_only=True)
        self.storage_options = state["storage_options"]
        self._directory = state["directory"]
        self._requested = state["requested"]
        self._fs = state["fs"]
        self._init_state()

    def _identity(self) -> tuple[Any, ...]:
        return (self._directory, tuple(self._requested), self._fs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CarSetBlockstore) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((CarSetBlockstore, self._directory, tuple(self._requested)))

    def __repr__(self) -> str:
        if self._directory is not None:
            return f"CarSetBlockstore({self._directory!r})"
        return f"CarSetBlockstore({len(self._requested)} CARs)"
