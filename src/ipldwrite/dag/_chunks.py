"""Chunk payloads: a raw block, or a UnixFS file DAG when larger than one block."""

from __future__ import annotations

from ipldwrite.blockstore import Blockstore
from ipldwrite.ipld import DAG_PB, RAW, Link, parse_cid_bytes
from ipldwrite.unixfs import file_size, read_file, write_file

__all__ = ["chunk_size", "read_chunk", "write_chunk"]

#: The unixfs-v1-2025 leaf size: chunks up to this size are one raw block.
UNIXFS_LEAF = 1 << 20


def write_chunk(blockstore: Blockstore, data: bytes | memoryview) -> Link:
    """Store a chunk's bytes; big chunks become unixfs-v1-2025 file DAGs that a UnixFS
    export can link as they are."""
    leaf = min(UNIXFS_LEAF, blockstore.max_block_size)
    if len(data) <= leaf:
        return blockstore.put(data)
    return write_file(data, blockstore.put, chunk_size=leaf)


def read_chunk(
    blockstore: Blockstore, link: Link, start: int = 0, stop: int | None = None
) -> bytes:
    codec = parse_cid_bytes(link.cid_bytes).codec
    if codec == RAW:
        data = blockstore.get(link)
        return data if start == 0 and stop is None else data[start:stop]
    if codec == DAG_PB:
        return read_file(link, blockstore.get, start, stop)
    from ipldwrite.errors import FormatError
    from ipldwrite.ipld import link_str

    raise FormatError(f"chunk {link_str(link)} is neither a raw block nor a UnixFS file")


def chunk_size(blockstore: Blockstore, link: Link) -> int:
    if parse_cid_bytes(link.cid_bytes).codec == RAW:
        return len(blockstore.get(link))
    return file_size(link, blockstore.get)
