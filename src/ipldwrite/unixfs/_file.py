"""UnixFS files: written exactly as ``ipfs-unixfs-importer`` lays them out, read by byte range.

The writer reproduces the importer's ``unixfs-v1-2025`` profile byte for byte, so the same
bytes get the same CID from ipldwrite, Kubo and Helia: fixed-size chunks stored as raw
blocks, then the balanced layout — group up to ``max_children`` nodes under a dag-pb File
node, level by level, until one root remains. A file that fits in one chunk is that raw block.

The reader follows any UnixFS file, including the older ``unixfs-v0-2015`` shape (dag-pb
leaves carrying their bytes in UnixFS Data, CIDv0 links), and fetches only the blocks that
overlap the requested range: each File node's blocksizes say where its children start.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipldwrite.errors import FormatError
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

__all__ = ["file_size", "read_file", "write_file"]

# (link, bytes of file content below it, Tsize: the block plus everything it links to)
_Built = tuple[Link, int, int]


def write_file(
    data: bytes | memoryview,
    put: Put,
    *,
    chunk_size: int = 1 << 20,
    max_children: int = 1024,
) -> Link:
    """Store ``data`` as a UnixFS file through ``put(block, codec)``; return the root link.

    The defaults are the ``unixfs-v1-2025`` profile (1 MiB chunks, 1024 links per node).
    Blocks are put leaves first, so a failed write leaves no root pointing at missing blocks.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}: a chunk must hold at least one byte")
    if max_children < 2:
        # With one child per node the balanced layout never converges on a single root.
        raise ValueError(f"max_children={max_children}: a File node needs room for 2 links")
    view = memoryview(data).cast("B")
    if len(view) <= chunk_size:
        # The importer's rawLeaves + reduceSingleLeafToSelf: the file is its only chunk.
        return put(bytes(view), RAW)
    level: list[_Built] = []
    for offset in range(0, len(view), chunk_size):
        chunk = bytes(view[offset : offset + chunk_size])
        level.append((put(chunk, RAW), len(chunk), len(chunk)))
    while len(level) > 1:
        level = [
            _file_node(level[i : i + max_children], put) for i in range(0, len(level), max_children)
        ]
    return level[0][0]


def _file_node(children: Sequence[_Built], put: Put) -> _Built:
    meta = UnixFSData(
        type=DataType.FILE,
        filesize=sum(size for _, size, _ in children),
        blocksizes=tuple(size for _, size, _ in children),
    )
    # The importer names every link "" (not absent), which changes the bytes and so the CID.
    links = tuple(PBLink(link, "", tsize) for link, _, tsize in children)
    block = encode_pb(PBNode(links, encode_unixfs(meta)))
    assert meta.filesize is not None
    return put(block, DAG_PB), meta.filesize, len(block) + sum(t for _, _, t in children)


def _open(link: Link, get: Get) -> tuple[bytes, tuple[PBLink, ...], tuple[int, ...]]:
    """A file node's own bytes, its child links and their content sizes."""
    codec = codec_of(link)
    if codec not in (RAW, DAG_PB):
        raise FormatError(
            f"{link_str(link)} is a {codec_name(codec)} block, not a UnixFS file "
            "(UnixFS files are raw blocks or dag-pb nodes)"
        )
    block = get(link)
    if codec == RAW:
        return block, (), ()
    node, meta = decode_node(link, block)
    if meta.type not in (DataType.FILE, DataType.RAW):
        raise FormatError(
            f"{link_str(link)} is a UnixFS {meta.type.name.lower()}, not a file; "
            "only files can be read as bytes"
        )
    if len(meta.blocksizes) != len(node.links):
        raise FormatError(
            f"UnixFS file node {link_str(link)} has {len(node.links)} links but "
            f"{len(meta.blocksizes)} blocksizes; the DAG is corrupt"
        )
    if meta.filesize is not None and meta.filesize != meta.content_size():
        raise FormatError(
            f"UnixFS file node {link_str(link)} says filesize {meta.filesize} but its data and "
            f"blocksizes add up to {meta.content_size()}; the DAG is corrupt"
        )
    return meta.data or b"", node.links, meta.blocksizes


def file_size(link: Link, get: Get) -> int:
    """The length in bytes of the UnixFS file at ``link`` (reads only its root block)."""
    content, _, sizes = _open(link, get)
    return len(content) + sum(sizes)


def read_file(link: Link, get: Get, start: int = 0, stop: int | None = None) -> bytes:
    """The bytes ``[start:stop]`` of the UnixFS file at ``link`` (Python slice semantics).

    Only the blocks overlapping the range are fetched. Raises :class:`FormatError` for
    anything that is not a UnixFS file (a directory, a symlink, a dag-cbor block…) and for
    a tree whose sizes do not add up.
    """
    content, links, sizes = _open(link, get)
    start, stop, _ = slice(start, stop).indices(len(content) + sum(sizes))
    if start >= stop:
        return b""
    pieces: list[bytes] = []
    # Depth first with an explicit stack, so a deep (or hostile) tree cannot exhaust
    # Python's recursion limit. Entries: (link, file offset, content size the parent claims).
    todo: list[tuple[Link, int, int]] = []
    offset = 0
    while True:
        lo, hi = max(start - offset, 0), min(stop - offset, len(content))
        if lo < hi:
            pieces.append(content[lo:hi])
        offset += len(content)
        wanted: list[tuple[Link, int, int]] = []
        for child, size in zip(links, sizes, strict=True):
            if offset >= stop:
                break
            if offset + size > start:
                wanted.append((child.hash, offset, size))
            offset += size
        todo.extend(reversed(wanted))
        if not todo:
            return b"".join(pieces)
        current, offset, claimed = todo.pop()
        content, links, sizes = _open(current, get)
        if len(content) + sum(sizes) != claimed:
            raise FormatError(
                f"UnixFS file block {link_str(current)} holds "
                f"{len(content) + sum(sizes)} bytes of content but its parent's blocksizes say "
                f"{claimed}; the DAG is corrupt"
            )
