from __future__ import annotations

import base64
import contextlib
import errno
import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.errors import FormatError, InvalidCIDError
from ipldwrite.ipld import Link, link_from_bytes, link_str

_MARKER = "ipldwrite-blockstore.json"
_LAYOUT = {"format": "ipldwrite-blockstore", "version": 1, "layout": "next-to-last/2"}
_counter = itertools.count()


def _name(link: Link) -> str:
    return "b" + base64.b32encode(link.cid_bytes).decode("ascii").rstrip("=").lower()


class DirectoryBlockstore(Blockstore):
    """One file per block under a directory: the embedded default.

    Layout: ``<path>/blocks/<two characters>/<CID in base32>``, sharded by the two characters
    before the last one of the CID string (the "next-to-last/2" scheme of Kubo's flatfs).

    Writes are atomic: a block is written to a temporary file in its shard directory and
    renamed into place, so a killed writer never leaves a partial block under a valid name,
    and concurrent writers of the same block (other processes, other machines on a shared
    filesystem) race harmlessly: both rename identical bytes. ``durable=True`` also fsyncs
    every block before the rename, for power-loss safety at the cost of throughput.
    """

    shared_between_processes = True
    supports_listing = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = False,
        create: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser().absolute()
        self.durable = durable
        self._blocks = self.path / "blocks"
        marker = self.path / _MARKER
        if marker.exists():
            try:
                layout = json.loads(marker.read_text())
            except ValueError:
                raise FormatError(
                    f"{marker} is not valid JSON; is this an ipldwrite blockstore?"
                ) from None
            if layout.get("version") != 1:
                raise FormatError(f"{marker}: unsupported blockstore layout {layout!r}")
        elif self.path.exists() and any(self.path.iterdir()):
            raise FormatError(
                f"{self.path} exists, is not empty and is not an ipldwrite blockstore (no "
                f"{_MARKER}). Choose an empty or new directory."
            )
        elif not create or self.read_only:
            raise FileNotFoundError(f"no ipldwrite blockstore at {self.path}")
        else:
            self._blocks.mkdir(parents=True, exist_ok=True)
            tmp = marker.with_name(f".{_MARKER}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(_LAYOUT, indent=2) + "\n")
            os.replace(tmp, marker)

    def _file(self, link: Link) -> tuple[str, str]:
        name = _name(link)
        shard = os.path.join(self._blocks, name[-3:-1])
        return shard, os.path.join(shard, name)

    def _get(self, link: Link) -> bytes | None:
        try:
            with open(self._file(link)[1], "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _has(self, link: Link) -> bool:
        return os.path.exists(self._file(link)[1])

    def _size(self, link: Link) -> int | None:
        try:
            return os.stat(self._file(link)[1]).st_size
        except FileNotFoundError:
            return None

    def _put(self, link: Link, data: BlockData) -> None:
        shard, final = self._file(link)
        try:
            # Content-addressed: a file of the right size holds these bytes, unless the disk
            # damaged it. The size costs nothing over an existence check (one stat) and
            # catches the damage a crash or a full disk leaves (0-byte or cut-short files);
            # a same-size bit flip is caught on read (verify) and fixed by repair_block.
            if os.stat(final).st_size == len(data):
                return
        except FileNotFoundError:
            pass
        self._write(shard, final, link, data)

    def _replace(self, link: Link, data: BlockData) -> None:
        self._write(*self._file(link), link, data)

    def remove(self, link: Link) -> bool:
        """Delete block ``link``'s file (for ``gc``: never while a writer may need it).
        Returns False if it was absent."""
        self._check_writable()
        try:
            os.unlink(self._file(link)[1])
        except FileNotFoundError:
            return False
        return True

    def _write(self, shard: str, final: str, link: Link, data: BlockData) -> None:
        tmp = os.path.join(shard, f".{os.getpid()}-{threading.get_ident()}-{next(_counter)}.tmp")
        try:
            f = open(tmp, "wb")  # noqa: SIM115 -- closed by the with below
        except FileNotFoundError:
            # The first block of this shard: create its directory only now, instead of
            # checking for it on every put (a syscall per block on a fresh store). One
            # mkdir, not os.makedirs: blocks/ exists, and makedirs costs 3x the syscall.
            try:
                os.mkdir(shard)
            except FileExistsError:
                pass  # another writer made it first
            except FileNotFoundError:
                os.makedirs(shard, exist_ok=True)  # blocks/ itself was removed
            f = open(tmp, "wb")  # noqa: SIM115
        try:
            with f:
                f.write(data)
                if self.durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                # Nothing was renamed into place: the store holds no partial block and
                # stays usable. Say which block and where, not only "No space left".
                raise OSError(
                    exc.errno,
                    f"cannot write block {link_str(link)} into {self.path}: "
                    f"{exc.strerror or exc}. No partial block was left; free space (or fix "
                    "the device) and write again: blocks already stored are reused.",
                ) from exc
            raise

    def _iter_links(self) -> Iterator[Link]:
        if not self._blocks.exists():
            return
        for shard in sorted(os.scandir(self._blocks), key=lambda e: e.name):
            if not shard.is_dir():
                continue
            for entry in sorted(os.scandir(shard.path), key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue  # a temporary file of a writer that is (or was) still writing
                body = entry.name[1:].upper()
                try:
                    yield link_from_bytes(base64.b32decode(body + "=" * (-len(body) % 8)))
                except (ValueError, InvalidCIDError):
                    continue  # not one of our files

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DirectoryBlockstore)
            and self.path == other.path
            and self.read_only == other.read_only
            and self.hasher == other.hasher
        )

    def __hash__(self) -> int:
        return hash((DirectoryBlockstore, self.path))

    def __repr__(self) -> str:
        return f"DirectoryBlockstore({str(self.path)!r})"
