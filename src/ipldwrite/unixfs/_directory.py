"""UnixFS directories: written exactly as ``ipfs-unixfs-importer`` 17 writes them, and read.

Writing follows the importer's ``unixfs-v1-2025`` profile byte for byte, so a directory
tree built here has the root CID that Helia, ``ipfs-car pack`` and the importer give the same
files:

* A **plain directory** is a dag-pb node with UnixFS ``Type=Directory`` (no mode, no mtime:
  the importer writes none unless told to), one link per entry, sorted by name bytes, each
  with ``Tsize`` = the child's cumulative size (its block plus everything below it).
* It becomes a **HAMT shard** (``Type=HAMTShard``, ``hashType`` 0x22 = murmur3-x64-64,
  ``fanout`` 256) when the importer's estimate of the plain node exceeds 256 KiB. With the
  profile's ``block-bytes`` strategy that estimate is the exact encoded size of the plain
  node, *counting only the links to files*: the importer decides while it streams entries
  in, and a subdirectory has no CID yet at that point, so it adds nothing. That quirk is
  reproduced, or directories of many subdirectories would shard where the importer does not.
* Shard nodes index by the first 64 bits of murmur3-x64-128 of the entry name (go-unixfs'
  choice, which the importer copies), eight bits per level from the most significant byte;
  a bucket holding one entry links it as ``<2 upper-case hex digits><name>``, a bucket
  holding several links a sub-shard as ``<2 hex digits>``. The bitfield is the big-endian
  integer of occupied buckets with leading zero bytes trimmed, as go and JS write it.

One deliberate difference: a plain directory whose node would exceed the block size limit
(only possible with tens of thousands of subdirectories, which the importer's estimate
ignores) is sharded anyway, because a block above 1 MiB is refused by IPFS nodes and by our
blockstores alike. The importer would write an unusable block there.

Reading walks plain and sharded directories alike and refuses entry names that could
escape a directory when unpacked (``/``, ``.``, ``..``, empty).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import mmh3

from ipldwrite.errors import FormatError, UnsafeEntryNameError
from ipldwrite.ipld import (
    DAG_PB,
    RAW,
    Link,
    PBLink,
    PBNode,
    codec_name,
    codec_of,
    encode_pb,
    link_str,
)
from ipldwrite.unixfs._data import DataType, UnixFSData, encode_unixfs
from ipldwrite.unixfs._node import Get, Put, decode_node

__all__ = [
    "HAMT_FANOUT",
    "HAMT_HASH_MURMUR3",
    "SHARD_THRESHOLD",
    "DirectoryBuilder",
    "check_entry_name",
    "decode_node",
    "entry_type",
    "file_tsize",
    "hamt_hash",
    "iter_directory",
    "write_directory",
]

#: The importer's ``shardSplitThresholdBytes``: shard once the estimate exceeds it.
SHARD_THRESHOLD: Final = 262_144
#: Multicodec code of murmur3-x64-64, the only HAMT hash any UnixFS implementation uses.
HAMT_HASH_MURMUR3: Final = 0x22
HAMT_FANOUT: Final = 256
_HAMT_BITS: Final = 8
_PREFIX_LENGTH: Final = 2  # len(f"{HAMT_FANOUT - 1:X}")
_DIRECTORY_DATA: Final = encode_unixfs(UnixFSData(DataType.DIRECTORY))
# The PBNode Data field of a plain directory: tag, length, the 2-byte UnixFS message.
_DATA_FIELD_SIZE: Final = 2 + len(_DIRECTORY_DATA)
_DEFAULT_MAX_BLOCK: Final = 1 << 20


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _link_size(name_length: int, cid_length: int, tsize: int) -> int:
    """Bytes one named link adds to a dag-pb node (the importer's ``linkSerializedSize``)."""
    body = 1 + _varint_len(cid_length) + cid_length
    body += 1 + _varint_len(name_length) + name_length
    body += 1 + _varint_len(tsize)
    return 1 + _varint_len(body) + body


def check_entry_name(name: str, where: str) -> str:
    """Refuse a name that would leave its directory (or be no name) when unpacked."""
    # NUL: C file APIs end the name there, so "a\0/../x" would be another path on disk.
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise UnsafeEntryNameError(
            f"{where} has an entry named {name!r}: UnixFS entry names must be non-empty, "
            "must not contain '/' or NUL and must not be '.' or '..' (unpacking it could write "
            "outside the target directory). The tree is damaged or hostile; refusing it."
        )
    return name


def hamt_hash(name: bytes, depth: int) -> int:
    """The bucket (0-255) of ``name`` at shard level ``depth``.

    Levels 0-7 take the bytes of murmur3-x64-64 (the first half of murmur3-x64-128) from the
    most significant one; deeper levels rehash ``name + bytes([round])`` as hamt-sharding's
    InfiniteHash does.
    """
    rounds, level = divmod(depth, 8)
    data = name if rounds == 0 else name + bytes((rounds & 0xFF,))
    h1 = mmh3.hash64(data, signed=False)[0]
    return (h1 >> (56 - 8 * level)) & 0xFF


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    encoded: bytes  # the UTF-8 name, what sorting and hashing use
    link: Link
    tsize: int


class DirectoryBuilder:
    """Collect a directory's entries, then write it as the importer would.

    ``add`` takes each entry's link and Tsize (the child's cumulative size, which the
    caller knows: a raw block's length, a file or directory root's block plus its links'
    Tsizes) and whether it is a directory, which matters for the sharding decision only.
    ``finish`` writes the node(s) through ``put(block, codec)`` and returns the
    directory's link and Tsize.
    """

    def __init__(
        self,
        put: Put,
        *,
        max_block_size: int = _DEFAULT_MAX_BLOCK,
        shard_threshold: int = SHARD_THRESHOLD,
    ) -> None:
        self._put = put
        self._max_block_size = max_block_size
        self._threshold = shard_threshold
        self._entries: dict[str, _Entry] = {}
        self._estimate = _DATA_FIELD_SIZE  # the importer's: links to files only
        self._flat_size = _DATA_FIELD_SIZE  # the real size of the plain node

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, name: str, link: Link, tsize: int, *, directory: bool = False) -> None:
        check_entry_name(name, "a directory being written")
        if name in self._entries:
            raise ValueError(f"a directory cannot hold two entries named {name!r}")
        encoded = name.encode("utf-8")
        size = _link_size(len(encoded), len(link.cid_bytes), tsize)
        self._entries[name] = _Entry(name, encoded, link, tsize)
        self._flat_size += size
        if not directory:
            self._estimate += size

    @property
    def sharded(self) -> bool:
        """Whether :meth:`finish` writes a HAMT (see the module docstring)."""
        return self._estimate > self._threshold or self._flat_size > self._max_block_size

    def finish(self) -> tuple[Link, int]:
        entries = sorted(self._entries.values(), key=lambda e: e.encoded)
        if self.sharded:
            return self._shard(entries, 0)
        links = tuple(PBLink(e.link, e.name, e.tsize) for e in entries)
        return self._write(PBNode(links, _DIRECTORY_DATA))

    def _shard(self, entries: list[_Entry], depth: int) -> tuple[Link, int]:
        buckets: dict[int, list[_Entry]] = {}
        for entry in entries:
            buckets.setdefault(hamt_hash(entry.encoded, depth), []).append(entry)
        links = []
        bitmap = 0
        # Prefixes are fixed-width hex, so bucket order is also the name order dag-pb needs.
        for index in sorted(buckets):
            bitmap |= 1 << index
            group = buckets[index]
            prefix = f"{index:02X}"
            if len(group) == 1:
                links.append(PBLink(group[0].link, prefix + group[0].name, group[0].tsize))
            else:
                sub, tsize = self._shard(group, depth + 1)
                links.append(PBLink(sub, prefix, tsize))
        meta = UnixFSData(
            DataType.HAMT_SHARD,
            data=bitmap.to_bytes(max(1, (bitmap.bit_length() + 7) // 8), "big"),
            hash_type=HAMT_HASH_MURMUR3,
            fanout=HAMT_FANOUT,
        )
        return self._write(PBNode(tuple(links), encode_unixfs(meta)))

    def _write(self, node: PBNode) -> tuple[Link, int]:
        block = encode_pb(node)
        return self._put(block, DAG_PB), len(block) + sum(x.tsize or 0 for x in node.links)


# -- reading ------------------------------------------------------------------------------------


def entry_type(link: Link, get: Get) -> DataType:
    """What the UnixFS node at ``link`` is; a raw block is file content (``FILE``)."""
    codec = codec_of(link)
    if codec == RAW:
        return DataType.FILE
    if codec != DAG_PB:
        raise FormatError(
            f"{link_str(link)} is a {codec_name(codec)} block, not UnixFS (raw or dag-pb)"
        )
    return decode_node(link, get(link))[1].type


def file_tsize(link: Link, get: Get, size: Callable[[Link], int]) -> int:
    """The cumulative size (Tsize) of the UnixFS file at ``link``.

    A raw block's is its length, asked of ``size`` (blockstores answer from metadata, no
    read); a dag-pb root's is its block plus its links' Tsizes, so only the root is read.
    """
    codec = codec_of(link)
    if codec == RAW:
        return size(link)
    if codec != DAG_PB:
        raise FormatError(f"{link_str(link)} is a {codec_name(codec)} block, not a UnixFS file")
    block = get(link)
    node, meta = decode_node(link, block)
    if meta.type not in (DataType.FILE, DataType.RAW):
        raise FormatError(f"{link_str(link)} is a UnixFS {meta.type.name.lower()}, not a file")
    return len(block) + sum(x.tsize or 0 for x in node.links)


def iter_directory(
    link: Link, get: Get, *, decoded: tuple[PBNode, UnixFSData] | None = None
) -> Iterator[tuple[str, Link]]:
    """The (name, link) entries of the plain or HAMT-sharded directory at ``link``.

    Plain directories yield in link order, shards in a deterministic order. Names that could
    escape the directory raise :class:`UnsafeEntryNameError`; a name twice, a shard that is
    not murmur3 with a power-of-two fanout, or link names that do not fit the shard raise
    :class:`FormatError`, each naming the directory CID. ``decoded`` is the root's
    :func:`decode_node`, for a caller that has it already.
    """
    if decoded is None:
        codec = codec_of(link)
        if codec != DAG_PB:
            raise FormatError(
                f"{link_str(link)} is a {codec_name(codec)} block, not a UnixFS directory"
            )
        decoded = decode_node(link, get(link))
    node, meta = decoded
    if meta.type == DataType.DIRECTORY:
        return _plain_entries(link, node)
    if meta.type == DataType.HAMT_SHARD:
        return _shard_entries(link, node, meta, get)
    raise FormatError(f"{link_str(link)} is a UnixFS {meta.type.name.lower()}, not a directory")


def _where(link: Link) -> str:
    # Messages only: built when an error is raised, not for each of 10^5 directories.
    return f"UnixFS directory {link_str(link)}"


def _add_entry(name: str, seen: set[str], directory: Link) -> None:
    """Add an entry name of ``directory`` to ``seen``, refusing unsafe names and repeats."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        check_entry_name(name, _where(directory))
    if name in seen:
        raise FormatError(f"{_where(directory)} has two entries named {name!r}")
    seen.add(name)


def _plain_entries(link: Link, node: PBNode) -> Iterator[tuple[str, Link]]:
    seen: set[str] = set()
    for pb in node.links:
        name = pb.name
        if name is None:
            raise FormatError(f"{_where(link)} has a link without a name ({link_str(pb.hash)})")
        _add_entry(name, seen, link)
        yield name, pb.hash


def _shard_layout(link: Link, meta: UnixFSData) -> int:
    """The link-name prefix length of a shard node, after checking its parameters."""
    if meta.hash_type != HAMT_HASH_MURMUR3:
        raise FormatError(
            f"HAMT shard {link_str(link)} uses hash function {meta.hash_type!r}; UnixFS "
            f"shards use murmur3-x64-64 (0x{HAMT_HASH_MURMUR3:x})"
        )
    fanout = meta.fanout
    if fanout is None or fanout < 2 or fanout > 1024 or fanout & (fanout - 1):
        raise FormatError(
            f"HAMT shard {link_str(link)} has fanout {fanout!r}; expected a power of two up to 1024"
        )
    return len(f"{fanout - 1:X}")


@functools.lru_cache(maxsize=16)
def _bucket_names(fanout: int) -> frozenset[str]:
    """The link-name prefixes of a shard with ``fanout`` buckets: fixed-width upper-case hex."""
    width = len(f"{fanout - 1:X}")
    return frozenset(f"{i:0{width}X}" for i in range(fanout))


def _shard_entries(
    root: Link, node: PBNode, meta: UnixFSData, get: Get
) -> Iterator[tuple[str, Link]]:
    seen: set[str] = set()
    # Depth first with an explicit stack: a hostile tree cannot exhaust the recursion limit.
    stack: list[tuple[Link, PBNode, UnixFSData]] = [(root, node, meta)]
    while stack:
        shard, pbnode, shard_meta = stack.pop()
        width = _shard_layout(shard, shard_meta)
        fanout = shard_meta.fanout or 0
        buckets = _bucket_names(fanout)
        children: list[tuple[Link, PBNode, UnixFSData]] = []
        for pb in pbnode.links:
            name = pb.name or ""
            prefix = name[:width]
            if prefix not in buckets:
                raise FormatError(
                    f"{_where(root)}: shard node {link_str(shard)} has a link named {name!r}, "
                    f"which does not start with {width} upper-case hex digits below its "
                    f"fanout {fanout}"
                )
            if len(name) == width:
                is_pb = codec_of(pb.hash) == DAG_PB
                sub_node, sub_meta = decode_node(pb.hash, get(pb.hash)) if is_pb else (None, None)
                if sub_node is None or sub_meta is None or sub_meta.type != DataType.HAMT_SHARD:
                    what = sub_meta.type.name.lower() if sub_meta else "file"
                    raise FormatError(
                        f"{_where(root)}: shard node {link_str(shard)} links bucket {prefix} to "
                        f"{link_str(pb.hash)}, a UnixFS {what} and not a sub-shard"
                    )
                children.append((pb.hash, sub_node, sub_meta))
                continue
            entry = name[width:]
            _add_entry(entry, seen, root)
            yield entry, pb.hash
        stack.extend(reversed(children))


def write_directory(
    entries: Iterable[tuple[str, Link, int, bool]], put: Put, **options: int
) -> tuple[Link, int]:
    """Write one directory from (name, link, tsize, is_directory) entries; see
    :class:`DirectoryBuilder`."""
    builder = DirectoryBuilder(put, **options)
    for name, link, tsize, directory in entries:
        builder.add(name, link, tsize, directory=directory)
    return builder.finish()
