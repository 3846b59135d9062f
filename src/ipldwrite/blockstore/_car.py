from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.blockstore._location import car_location, url_scheme
from ipldwrite.errors import CarError, ReadOnlyError, UnsupportedBlockstoreError
from ipldwrite.ipld import Link, link_str
from ipldwrite.ipld._car import (
    CarIndex,
    CarLayout,
    iter_sections,
    multihash_of,
    read_index,
    read_layout,
    read_section_at,
)


class CarBlockstore(Blockstore):
    """The blocks of a CARv1 or CARv2 file, read in place (read-only).

    A CARv2 index (IndexSorted or MultihashIndexSorted) is used as it is; each lookup checks
    that the offset it gives holds a section for the CID asked for, and raises
    :class:`CarError` ("wrong index") if not. Without a usable index, opening scans the file
    once and keeps each block's offset (never its data) in memory.

    Reads use ``os.pread``: no shared file position, so threads need no lock (``close``
    only once no reads are in flight). Pickling carries only the path and ``verify``; the
    copy reopens the file when first used, as a Dask worker's would.
    """

    # Every process that can open the path reads the same immutable file.
    shared_between_processes = True
    supports_listing = True

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True) -> None:
        text = os.fspath(path)
        if url_scheme(text) not in (None, "file"):
            raise UnsupportedBlockstoreError(
                f"CarBlockstore reads local files, and {text!r} is a URL: read it in place "
                "with CarSetBlockstore(url, storage_options=…) or resolve_blockstore(url) "
                "(a range request per block), or download it first",
                url=text,
            )
        self._init(Path(car_location(text)[1]), verify)
        self._open()  # a damaged file fails here, not at the first read

    def _init(self, path: Path, verify: bool) -> None:
        super().__init__(verify=verify, read_only=True)
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._layout: CarLayout | None = None
        self._index: CarIndex | None = None
        # CID bytes → data offset << 32 | data length: one int per block rather than a
        # tuple, since a CAR can hold millions of blocks. Section lengths are below 2**32.
        self._offsets: dict[bytes, int] | None = None

    # -- opening --------------------------------------------------------------------------------
    def _open(self) -> int:
        """The file descriptor, opening (and scanning or index-reading) on first use."""
        fd = self._fd
        if fd is not None:
            return fd
        with self._lock:
            return self._fd if self._fd is not None else self._load()

    def _load(self) -> int:
        with open(self.path, "rb") as f:
            layout = read_layout(f, str(self.path))
            # The index is ~40 bytes a block, held as the file's own bytes.
            index = read_index(f, layout)
            offsets = None if index is not None else self._scan(f, layout)
        self._layout = layout
        self._index = index
        self._offsets = offsets
        # Set last: other threads skip the lock once they see a descriptor.
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        return self._fd

    @staticmethod
    def _scan(f: IO[bytes], layout: CarLayout) -> dict[bytes, int]:
        offsets: dict[bytes, int] = {}
        for section in iter_sections(f, layout):
            # setdefault: a duplicated block keeps its first section, as go-car's reader does.
            offsets.setdefault(
                section.link.cid_bytes, section.data_offset << 32 | section.data_length
            )
        return offsets

    @property
    def layout(self) -> CarLayout:
        self._open()
        assert self._layout is not None
        return self._layout

    @property
    def roots(self) -> list[Link]:
        """The roots the CAR header names."""
        return list(self.layout.roots)

    @property
    def version(self) -> int:
        return self.layout.version

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> CarBlockstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    # -- the contract ---------------------------------------------------------------------------
    def _locate(self, link: Link) -> tuple[int, int] | None:
        """(data offset, data length) of ``link``'s block, or None if the CAR lacks it."""
        fd = self._open()
        if self._offsets is not None:
            packed = self._offsets.get(link.cid_bytes)
            return None if packed is None else (packed >> 32, packed & 0xFFFFFFFF)
        assert self._index is not None
        code, digest = multihash_of(link)
        layout = self.layout
        for relative in self._index.lookup(code, digest):
            offset = layout.payload_offset + relative
            try:
                found, data_offset, data_length = read_section_at(fd, offset, layout)
            except CarError as exc:
                raise CarError(
                    f"{self.path}: wrong index: it places block {link_str(link)} at payload "
                    f"offset {relative} (byte {offset}), where {exc}. Rebuild the CAR's index "
                    "or open a CARv1 copy."
                ) from None
            if found.cid_bytes == link.cid_bytes:
                return data_offset, data_length
            if multihash_of(found) != (code, digest):
                raise CarError(
                    f"{self.path}: wrong index: it places block {link_str(link)} at payload "
                    f"offset {relative} (byte {offset}), which holds {link_str(found)}. "
                    "Rebuild the CAR's index or open a CARv1 copy."
                )
            # Same multihash under another codec: a different block for us; keep looking.
        return None

    def _get(self, link: Link) -> bytes | None:
        # docstring inherited
        place = self._locate(link)
        if place is None:
            return None
        data_offset, data_length = place
        data = os.pread(self._open(), data_length, data_offset)
        if len(data) != data_length:
            raise CarError(f"{self.path} shrank while open: block {link_str(link)} is cut short")
        return data

    def _has(self, link: Link) -> bool:
        return self._locate(link) is not None

    def _size(self, link: Link) -> int | None:
        place = self._locate(link)  # the section's length: no data is read
        return None if place is None else place[1]

    def _put(self, link: Link, data: BlockData) -> None:
        raise ReadOnlyError(f"{self!r} is read-only; import the CAR into a writable blockstore")

    def _iter_links(self) -> Iterator[Link]:
        self._open()
        if self._offsets is not None:
            return (Link(raw) for raw in list(self._offsets))
        return self._iter_indexed()

    def _iter_indexed(self) -> Iterator[Link]:
        # An index holds multihashes, not CIDs: the codecs are only in the sections.
        seen: set[bytes] = set()
        with open(self.path, "rb") as f:
            for section in iter_sections(f, self.layout):
                if section.link.cid_bytes not in seen:
                    seen.add(section.link.cid_bytes)
                    yield section.link

    # -- plumbing -------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "verify": self.verify}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Reopened lazily by the first read: unpickling happens wherever the store travels
        # (a Dask worker), and the offsets are rebuilt there rather than shipped.
        self._init(state["path"], state["verify"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CarBlockstore) and self.path == other.path

    def __hash__(self) -> int:
        return hash((CarBlockstore, self.path))

    def __repr__(self) -> str:
        return f"CarBlockstore({str(self.path)!r})"
