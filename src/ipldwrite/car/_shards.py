"""Sharded CAR export: a dataset as a directory of CARv2 files of bounded size.

Upload services and object stores cap object sizes, and one 500 GB CAR cannot be read in
parallel. :func:`export_car_shards` splits the blocks of a DAG over CARv2 files (each with a
MultihashIndexSorted index, each at most ``max_bytes``), plus a small root CAR holding the
metadata nodes; :class:`~ipldwrite.blockstore.CarSetBlockstore` reads the directory back as
one blockstore, and importing every file into an IPFS node gives it the whole DAG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from ipldwrite.blockstore._base import BlockGetter
from ipldwrite.blockstore._location import car_location
from ipldwrite.car._export import dag_blocks
from ipldwrite.ipld import DAG_CBOR, IDENTITY, SHA2_256, Link, link_str, to_link, varint
from ipldwrite.ipld._car import PRAGMA, V2_HEADER_SIZE, CarWriter, encode_v1_header, multihash_of

__all__ = ["DEFAULT_SHARD_BYTES", "ShardSummary", "car_cid", "export_car_shards"]

#: Default upper bound of each CAR file: 64 MiB, small enough to upload and fetch in one go.
DEFAULT_SHARD_BYTES: Final = 64 << 20
#: The multicodec of a CAR file, as upload services name shards (``bagbaiera…``).
CAR_CODEC: Final = 0x0202
# File names this module writes: a base32 CID and ".car", nothing that can leave the directory.
_NAME: Final = re.compile(r"b[a-z2-7]+\.car")
_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class ShardSummary:
    """What :func:`export_car_shards` wrote."""

    # URLs (str) when written to an object store
    directory: Path | str
    root: Link
    root_car: Path | str  # "<root CID>.car": the root and the metadata nodes
    shards: tuple[Path | str, ...]  # "<CAR CID>.car": the chunk blocks, in DAG order
    blocks: int  # sections written over all files (each block once)
    data_bytes: int  # total size of the blocks' data
    sizes: tuple[int, ...]  # file sizes: the root CAR's, then each shard's
    max_bytes: int

    @property
    def files(self) -> tuple[Path | str, ...]:
        return (self.root_car, *self.shards)

    def __str__(self) -> str:
        return (
            f"wrote {len(self.files)} CARs to {self.directory} for root {link_str(self.root)}: "
            f"{self.blocks} blocks, {sum(self.sizes)} bytes, largest {max(self.sizes)} bytes"
        )


def car_cid(digest: bytes) -> Link:
    """The CID of a CAR file whose sha2-256 is ``digest`` (codec ``car``, 0x0202)."""
    return Link(b"\x01" + varint(CAR_CODEC) + bytes((SHA2_256, 32)) + digest)


def _index_size(widths: dict[tuple[int, int], int]) -> int:
    """Bytes of a MultihashIndexSorted index with ``widths[(code, width)]`` entries."""
    codes = {code for code, _ in widths}
    size = len(varint(0x0401)) + 4 + 12 * len(codes)
    return size + sum(12 + width * count for (_, width), count in widths.items())


class _ShardFile:
    """One CARv2 being written under a temporary name, with its size known at every step."""

    def __init__(self, directory: Path, root: Link) -> None:
        self.tmp = directory / f".shard.{os.getpid()}-{next(_counter)}.tmp"
        self.file: IO[bytes] = open(self.tmp, "xb")  # noqa: SIM115 - closed in finish()
        self.writer = CarWriter(self.file, [root], version=2)
        self.payload = len(encode_v1_header([root]))
        self.widths: dict[tuple[int, int], int] = {}
        self.blocks = 0

    def size_with(self, link: Link, data: bytes) -> int:
        """The file's size if ``link`` were added now."""
        code, digest = multihash_of(link)
        widths = dict(self.widths)
        if code != IDENTITY:
            key = (code, len(digest) + 8)
            widths[key] = widths.get(key, 0) + 1
        section = len(link.cid_bytes) + len(data)
        return (
            len(PRAGMA)
            + V2_HEADER_SIZE
            + self.payload
            + len(varint(section))
            + section
            + _index_size(widths)
        )

    def add(self, link: Link, data: bytes) -> None:
        code, digest = multihash_of(link)
        if code != IDENTITY:
            key = (code, len(digest) + 8)
            self.widths[key] = self.widths.get(key, 0) + 1
        section = len(link.cid_bytes) + len(data)
        self.payload += len(varint(section)) + section
        self.writer.add(link, data)
        self.blocks += 1

    def finish(self) -> int:
        size = self.writer.finish()
        self.file.flush()
        os.fsync(self.file.fileno())  # the rename must not land before the data
        self.file.close()
        return size

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


def _target(directory: Path, name: str) -> Path:
    """``directory / name``, after checking it cannot be anywhere else."""
    target = directory / name
    if not _NAME.fullmatch(name) or target.resolve().parent != directory:
        raise ValueError(f"refusing to write {name!r}: not a CAR name inside {directory}")
    return target


def upload(fs: Any, directory: str, local: Path | str) -> str:
    """Put the local file ``local`` into ``directory`` on ``fs`` under its name; its URL.
    An object store publishes the object once the upload completes: never half there."""
    target = f"{directory.rstrip('/')}/{os.path.basename(local)}"
    fs.put_file(os.fspath(local), target)
    return str(fs.unstrip_protocol(target))


def export_car_shards(
    root: object,
    blockstore: BlockGetter,
    directory: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_SHARD_BYTES,
    storage_options: dict[str, Any] | None = None,
) -> ShardSummary:
    """Write the DAG under ``root`` as CARv2 files of at most ``max_bytes`` in ``directory``.

    * ``<root CID>.car`` holds the root block and the metadata nodes (dag-cbor: group,
      array and manifest nodes), in depth-first order, as long as they fit; a dataset whose
      metadata alone exceeds ``max_bytes`` continues it in the shards.
    * ``<CAR CID>.car`` files (``bagbaiera…``: codec car, sha2-256 of the file, as upload
      services name shards) hold everything else in depth-first order, each filled up to
      ``max_bytes``, index included.

    Every file names the dataset root as its single root, holds each block at most once
    (no block is in two files) and is indexed. Names are content-derived and checked to
    stay inside ``directory`` (created if needed). Files are written under temporary names
    and renamed when complete; on an error, the files this call created are removed.
    Blocks are hashed on the way out, as :func:`~ipldwrite.car.export_car` does.

    ``directory`` may be a URL fsspec reaches (``s3://…``, with ``storage_options``): the
    files are written locally, then uploaded, the root CAR last.
    """
    root_link = to_link(root)
    if max_bytes < 4096:
        raise ValueError(f"max_bytes={max_bytes}: a CAR shard needs room for at least 4 KiB")
    fs, where = car_location(directory, storage_options, write=True)
    if fs is not None:
        return _export_and_upload(root_link, blockstore, fs, where, max_bytes)
    target_dir = Path(where)
    if target_dir.exists() and not target_dir.is_dir():
        raise NotADirectoryError(f"{target_dir} is not a directory; give the shards' directory")
    target_dir.mkdir(parents=True, exist_ok=True)
    files = _ShardSet(target_dir.resolve(), root_link, max_bytes)
    try:
        for link, data in dag_blocks(blockstore, root_link):
            if multihash_of(link)[0] != IDENTITY:  # the CID carries the data, as export_car does
                files.add(link, data)
        root_car, root_size = files.finish()
    except BaseException:
        files.discard()
        raise
    return ShardSummary(
        directory=files.directory,
        root=root_link,
        root_car=root_car,
        shards=tuple(p for p, _ in files.shards),
        blocks=files.blocks,
        data_bytes=files.data_bytes,
        sizes=(root_size, *(s for _, s in files.shards)),
        max_bytes=max_bytes,
    )


def _export_and_upload(
    root: Link, blockstore: BlockGetter, fs: Any, where: str, max_bytes: int
) -> ShardSummary:
    """Export to a local temporary directory, then upload every file, the root CAR last."""
    with tempfile.TemporaryDirectory(prefix="ipldwrite-shards-") as tmp:
        local = export_car_shards(root, blockstore, tmp, max_bytes=max_bytes)
        uploaded = [upload(fs, where, p) for p in (*local.shards, local.root_car)]
    return dataclasses.replace(
        local,
        directory=fs.unstrip_protocol(where),
        root_car=uploaded[-1],
        shards=tuple(uploaded[:-1]),
    )


class _ShardSet:
    """The files of one sharded export: the root CAR (``head``), which takes metadata nodes
    while they fit, and the shard being filled. Published files are renamed to their final,
    content-derived names; :meth:`discard` removes everything this export wrote."""

    def __init__(self, directory: Path, root: Link, max_bytes: int) -> None:
        self.directory = directory
        self.root = root
        self.max_bytes = max_bytes
        self.created: list[Path] = []
        self.open_files: list[_ShardFile] = []
        self.shards: list[tuple[Path, int]] = []
        self.blocks = self.data_bytes = 0
        self.current: _ShardFile | None = None
        self.head = self._open()

    def _open(self) -> _ShardFile:
        shard = _ShardFile(self.directory, self.root)
        self.open_files.append(shard)
        return shard

    def _publish(self, shard: _ShardFile, name: str | None) -> tuple[Path, int]:
        size = shard.finish()
        final = _target(self.directory, name or f"{link_str(car_cid(_file_digest(shard.tmp)))}.car")
        if not final.exists():
            self.created.append(final)
        os.replace(shard.tmp, final)
        self.open_files.remove(shard)
        return final, size

    def add(self, link: Link, data: bytes) -> None:
        self.blocks += 1
        self.data_bytes += len(data)
        is_node = link.cid_bytes[1:2] == bytes((DAG_CBOR,)) or link == self.root
        if is_node and self.head.size_with(link, data) <= self.max_bytes:
            self.head.add(link, data)
            return
        if self.current is not None and self.current.size_with(link, data) > self.max_bytes:
            self.shards.append(self._publish(self.current, None))
            self.current = None
        if self.current is None:
            self.current = self._open()
            if self.current.size_with(link, data) > self.max_bytes:
                raise ValueError(
                    f"max_bytes={self.max_bytes} is too small for block {link_str(link)} of "
                    f"{len(data)} bytes; use at least a few MiB"
                )
        self.current.add(link, data)

    def finish(self) -> tuple[Path, int]:
        """Publish the last shard, then the root CAR; the root CAR's path and size."""
        if self.current is not None:
            self.shards.append(self._publish(self.current, None))
        return self._publish(self.head, f"{link_str(self.root)}.car")

    def discard(self) -> None:
        for shard in self.open_files:
            shard.discard()
        for path in self.created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
