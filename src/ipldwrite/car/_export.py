"""Moving DAGs in and out of CAR files, and checking CAR files.

Everything streams: one block is in memory at a time, plus a set of the CIDs already seen
(and, for CARv2, the index entries, about 50 bytes a block).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from multiformats import CID

from ipldwrite.blockstore._base import BlockGetter, Blockstore
from ipldwrite.blockstore._location import car_location
from ipldwrite.errors import (
    BlockNotFoundError,
    BlockTooLargeError,
    CarError,
    CodecError,
    CorruptBlockError,
    InvalidCIDError,
    ReadOnlyError,
)
from ipldwrite.ipld import (
    IDENTITY,
    Link,
    Visit,
    digest_of,
    link_str,
    links_of,
    to_cid,
    to_link,
    walk,
)
from ipldwrite.ipld._car import (
    CarLayout,
    CarWriter,
    iter_blocks,
    multihash_of,
    read_index,
    read_layout,
)

log = logging.getLogger("ipldwrite.car")

__all__ = ["CarReport", "CarSummary", "export_car", "import_car", "verify_car"]

_counter = itertools.count()
# A path in an error message is for a human; past this many hops the middle is elided.
_MAX_PATH_SHOWN: Final = 12


@dataclass(frozen=True, slots=True)
class CarSummary:
    """What :func:`export_car` wrote."""

    path: Path | str  # a URL (str) when written to an object store
    root: Link
    version: int
    blocks: int  # sections written (identity CIDs are never written: they carry their data)
    data_bytes: int  # total size of the blocks' data
    size: int  # size of the file

    def __str__(self) -> str:
        return (
            f"wrote CARv{self.version} {self.path} with root {link_str(self.root)}: "
            f"{self.blocks} blocks, {self.size} bytes"
        )


@dataclass(frozen=True, slots=True)
class CarReport:
    """What :func:`verify_car` found. ``ok`` is true when nothing is wrong."""

    path: Path
    version: int
    roots: tuple[Link, ...]
    blocks: int  # sections in the file
    reachable: int  # distinct blocks reached from the roots (identity CIDs included)
    missing: tuple[Link, ...]  # linked to from a reachable block, absent from the file
    unreachable: tuple[Link, ...]  # in the file, not reachable from any root
    corrupt: tuple[Link, ...]  # bytes that do not hash to their CID
    unverifiable: tuple[Link, ...]  # hashed with a function ipldwrite cannot compute
    undecodable: tuple[tuple[Link, str], ...]  # blocks whose links could not be read, and why
    duplicates: int  # sections repeating a CID already seen
    index_errors: tuple[str, ...]  # CARv2 index entries that disagree with the payload

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Every problem, one human-readable line each."""
        out: list[str] = []
        if not self.roots:
            out.append("the CAR names no root")
        out += [f"missing block {link_str(x)}" for x in self.missing]
        out += [f"unreachable block {link_str(x)}" for x in self.unreachable]
        out += [f"corrupt block {link_str(x)}" for x in self.corrupt]
        out += [
            f"cannot check block {link_str(x)}: unsupported multihash 0x{multihash_of(x)[0]:x}"
            for x in self.unverifiable
        ]
        out += [f"undecodable block {link_str(x)}: {why}" for x, why in self.undecodable]
        if self.duplicates:
            out.append(f"{self.duplicates} duplicate sections")
        out += self.index_errors
        return out


# -- export -------------------------------------------------------------------------------------


def _path_str(path: list[Link]) -> str:
    names = [link_str(x) for x in path]
    if len(names) > _MAX_PATH_SHOWN:
        half = _MAX_PATH_SHOWN // 2
        names = [*names[:half], f"… {len(names) - 2 * half} more …", *names[-half:]]
    return " → ".join(names)


def _reader(blockstore: BlockGetter, root: Link) -> Callable[[Visit], bytes]:
    """How export reads a block: verified, errors naming the path from the root to it."""

    def read(visit: Visit) -> bytes:
        link = visit.link
        code, digest = multihash_of(link)
        if code == IDENTITY:  # the CID carries the data; a BlockGetter need not know that
            return digest
        try:
            data = blockstore.get(link)
        except BlockNotFoundError as exc:
            raise BlockNotFoundError(
                f"cannot export {link_str(root)}: block {link_str(link)} is not in "
                f"{blockstore!r} (path from the root: {_path_str(visit.trail())}). Nothing was "
                "written. Import the CAR or open the blockstore that holds the missing block, "
                "then export again.",
                cid=link,
            ) from exc
        # Hash on the way out: a corrupt block copied into a CAR would spread to every reader.
        if digest_of(code, data) != digest:
            raise CorruptBlockError(
                f"cannot export {link_str(root)}: block {link_str(link)} in {blockstore!r} is "
                f"corrupt (path from the root: {_path_str(visit.trail())}). Nothing was "
                "written. Restore the block from a good copy and export again.",
                cid=link,
            )
        return data

    return read


def dag_blocks(blockstore: BlockGetter, root: Link) -> Iterator[tuple[Link, bytes]]:
    """Every block reachable from ``root`` once, in the order a CAR holds them (depth first,
    parents before children), each hash-checked."""
    for visit, data in walk([root], _reader(blockstore, root)):
        yield visit.link, data


def _temporary(path: Path) -> tuple[Path, IO[bytes]]:
    """A new file next to ``path``: same filesystem, so the final rename is atomic."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{next(_counter)}.tmp")
    return tmp, open(tmp, "xb")


def export_car(
    root: object,
    blockstore: BlockGetter,
    path: str | os.PathLike[str],
    *,
    version: int = 1,
    storage_options: dict[str, Any] | None = None,
) -> CarSummary:
    """Write the DAG under ``root`` to a CAR file at ``path``.

    The CAR names exactly one root and holds every block reachable from it once, in depth
    first pre-order (parents before children, links in the order the block lists them), so
    streaming readers can process it as it arrives. ``version=2`` adds a CARv2 wrapper with
    a MultihashIndexSorted index for random access. Identity CIDs are not written (their
    CID is their data), as go-car does.

    Every block is hashed on the way out. The file is written under a temporary name and
    renamed at the end: an error (a missing block raises :class:`BlockNotFoundError`
    naming the CID and its path from the root) leaves nothing at ``path``.

    ``path`` may be a URL fsspec reaches (``s3://…``, with ``storage_options``): the CAR is
    written to a local temporary file, then uploaded in one go (an object store publishes
    it only once complete).
    """
    if version not in (1, 2):
        raise ValueError(f"version={version}: CAR version must be 1 or 2")
    fs, where = car_location(path, storage_options, write=True)
    if fs is not None:
        with tempfile.TemporaryDirectory(prefix="ipldwrite-car-") as staging:
            local = export_car(root, blockstore, Path(staging, "upload.car"), version=version)
            fs.put_file(str(local.path), where)
        return dataclasses.replace(local, path=fs.unstrip_protocol(where))
    root_link = to_link(root)
    target = Path(where)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory; give the path of the CAR file")
    tmp, f = _temporary(target)
    try:
        with f:
            writer = CarWriter(f, [root_link], version=version)
            data_bytes = 0
            for link, data in dag_blocks(blockstore, root_link):
                if multihash_of(link)[0] == IDENTITY:
                    continue
                writer.add(link, data)
                data_bytes += len(data)
            size = writer.finish()
            f.flush()
            os.fsync(f.fileno())  # the rename must not land before the data
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("exported %d blocks, %d bytes, to %s", writer.blocks, size, target)
    return CarSummary(target, root_link, version, writer.blocks, data_bytes, size)


# -- import -------------------------------------------------------------------------------------


def _checked(f: IO[bytes], layout: CarLayout, name: str) -> Iterator[tuple[Link, bytes]]:
    """Every block of the file, each hash-checked; errors name the CID and the byte offset."""
    for section, data in iter_blocks(f, layout):
        link = section.link
        try:
            code, digest = multihash_of(link)
            ok = digest_of(code, data) == digest
        except InvalidCIDError as exc:
            raise InvalidCIDError(
                f"{name}: block {link_str(link)} (section at byte {section.offset}): {exc}"
            ) from None
        if not ok:
            raise CorruptBlockError(
                f"{name}: block {link_str(link)} in the section at byte {section.offset} is "
                f"corrupt: its {len(data)} bytes hash to a different digest. The CAR is "
                "damaged; export it again from its source.",
                cid=link,
            )
        yield link, data


def import_car(
    path: str | os.PathLike[str],
    blockstore: Blockstore,
    *,
    storage_options: dict[str, Any] | None = None,
) -> CID:
    """Put every block of the CAR at ``path`` into ``blockstore``; return its single root.

    The whole file is read and every block's hash checked first, so a damaged CAR
    (:class:`CorruptBlockError`, :class:`TruncatedCarError`, :class:`CarError`, each naming
    the byte offset) puts nothing. Then a second pass puts the blocks, replacing any stored
    copy that is damaged (:meth:`Blockstore.repair_block`). Identity CIDs need no storage and
    are skipped. ``path`` may be a URL fsspec reaches (with ``storage_options``).
    """
    fs, where = car_location(path, storage_options)
    name = os.fspath(path)
    if blockstore.read_only:
        raise ReadOnlyError(f"{blockstore!r} is read-only; open a writable blockstore to import")
    with open(where, "rb") if fs is None else fs.open(where, "rb") as f:
        layout = read_layout(f, name)
        if len(layout.roots) != 1:
            listed = ", ".join(link_str(x) for x in layout.roots) or "none"
            raise CarError(
                f"{name} has {len(layout.roots)} roots ({listed}); ipldwrite imports CARs with "
                "exactly one root, the dataset's. Export the dataset again from its source "
                "(export_car writes one root), or split the CAR into one CAR per root."
            )
        read_index(f, layout, entries=False)  # a cut-short index is a truncated file too
        limit = blockstore.max_block_size
        for link, data in _checked(f, layout, name):
            if len(data) > limit:
                raise BlockTooLargeError(
                    f"{name}: block {link_str(link)} is {len(data)} bytes, above the "
                    f"blockstore's limit of {limit}; nothing was imported. Open the blockstore "
                    "with a larger max_block_size (at most 2 MiB).",
                    cid=link,
                )
        # Second pass: the file was sound a moment ago; check the hashes again all the same,
        # since the file could have changed in between. repair_block also re-reads any copy
        # the blockstore holds and replaces it if damaged: importing a good CAR repairs.
        # Through the per-task hook: a network blockstore batches the upload.
        task = blockstore.open_task()
        for link, data in _checked(f, layout, name):
            if multihash_of(link)[0] != IDENTITY:
                task.repair_block(link, data)
        blockstore.finish_task(task, layout.roots[0])
    log.info("imported %s into %r", name, blockstore)
    return to_cid(layout.roots[0])


# -- verify -------------------------------------------------------------------------------------


def verify_car(path: str | os.PathLike[str]) -> CarReport:
    """Check a CAR file: hashes, completeness from its roots, and its CARv2 index if any.

    Structural damage (a truncated file, garbage) raises :class:`CarError`; everything else
    is reported. Memory holds the place of every block (no data).
    """
    source = Path(path)
    with open(source, "rb") as f:
        layout = read_layout(f, str(source))
        scan = _scan(f, layout)
        reach = _reach(f, layout, scan)
        index_errors = _check_index(f, layout, scan.sections) if layout.index_offset else []
    return CarReport(
        path=source,
        version=layout.version,
        roots=layout.roots,
        blocks=len(scan.places) + scan.duplicates,
        reachable=len(reach.reached),
        missing=tuple(reach.missing.values()),
        unreachable=tuple(Link(raw) for raw in scan.places if raw not in reach.reached),
        corrupt=tuple(scan.corrupt),
        unverifiable=tuple(scan.unverifiable),
        undecodable=tuple(reach.undecodable),
        duplicates=scan.duplicates,
        index_errors=tuple(index_errors),
    )


@dataclass
class _Scan:
    """One pass over a CAR's sections: where each block is and which ones hash wrong."""

    # CID → (data offset, data length); the first occurrence of a CID wins.
    places: dict[bytes, tuple[int, int]] = dataclasses.field(default_factory=dict)
    # (digest, payload offset) → CID of every section: what a CARv2 index must list.
    sections: dict[tuple[bytes, int], bytes] = dataclasses.field(default_factory=dict)
    corrupt: list[Link] = dataclasses.field(default_factory=list)
    unverifiable: list[Link] = dataclasses.field(default_factory=list)
    duplicates: int = 0


def _scan(f: IO[bytes], layout: CarLayout) -> _Scan:
    scan = _Scan()
    for section, data in iter_blocks(f, layout):
        link = section.link
        code, digest = multihash_of(link)
        if layout.index_offset and code != IDENTITY:
            scan.sections[digest, section.offset - layout.payload_offset] = link.cid_bytes
        if link.cid_bytes in scan.places:
            scan.duplicates += 1
            continue
        scan.places[link.cid_bytes] = (section.data_offset, section.data_length)
        try:
            if digest_of(code, data) != digest:
                scan.corrupt.append(link)
        except InvalidCIDError:  # a hash function we cannot compute
            scan.unverifiable.append(link)
    return scan


@dataclass
class _Reach:
    """The walk from a CAR's roots: what it reached, and what it could not follow."""

    reached: set[bytes] = dataclasses.field(default_factory=set)  # present (or identity)
    missing: dict[bytes, Link] = dataclasses.field(default_factory=dict)
    undecodable: list[tuple[Link, str]] = dataclasses.field(default_factory=list)


def _reach(f: IO[bytes], layout: CarLayout, scan: _Scan) -> _Reach:
    reach = _Reach()
    bad = {x.cid_bytes for x in scan.corrupt}

    def read(visit: Visit) -> bytes | None:
        link = visit.link
        raw = link.cid_bytes
        code, digest = multihash_of(link)
        if code != IDENTITY and raw not in scan.places:
            reach.missing[raw] = link
            return None
        reach.reached.add(raw)
        if code == IDENTITY:
            return digest
        if raw in bad:
            return None  # its links cannot be trusted
        data_offset, data_length = scan.places[raw]
        return os.pread(f.fileno(), data_length, data_offset)

    def children(link: Link, data: bytes) -> list[Link]:
        try:
            return links_of(link, data)
        except CodecError as exc:
            reach.undecodable.append((link, str(exc)))
            return []

    for _ in walk(layout.roots, read, children):
        pass
    return reach


def _check_index(
    f: IO[bytes], layout: CarLayout, sections: dict[tuple[bytes, int], bytes]
) -> list[str]:
    """Disagreements between a CARv2 index and the sections of the payload."""
    index = read_index(f, layout)
    if index is None:
        return []  # a codec we do not read: nothing to hold against the file
    errors: list[str] = []
    listed: set[tuple[bytes, int]] = set()
    for code, digest, offset in index.items():
        raw = sections.get((digest, offset))
        # IndexSorted records no multihash code (code None): the digest must match alone.
        if raw is None or (code is not None and multihash_of(Link(raw))[0] != code):
            errors.append(
                f"wrong index: the entry for digest {digest.hex()} points at payload offset "
                f"{offset}, where no section with that multihash starts"
            )
        listed.add((digest, offset))
    for key in sections.keys() - listed:
        errors.append(
            f"the index has no entry for block {link_str(Link(sections[key]))} at payload "
            f"offset {key[1]}"
        )
    return errors
