"""What UnixFS files and directories share: a node is a dag-pb block carrying UnixFS Data,
and both are read and written through two callables."""

from __future__ import annotations

from collections.abc import Callable

from ipldwrite.errors import CodecError, FormatError
from ipldwrite.ipld import Link, PBNode, decode_pb, link_str
from ipldwrite.unixfs._data import UnixFSData, decode_unixfs

__all__ = ["Get", "Put", "decode_node"]

#: Stores a block under a codec and returns its link (a blockstore's ``put_block``).
Put = Callable[[bytes, int], Link]
#: Reads the block at a link (a blockstore's ``get``).
Get = Callable[[Link], bytes]


def decode_node(link: Link, block: bytes) -> tuple[PBNode, UnixFSData]:
    """A dag-pb block's node and its UnixFS Data (:class:`FormatError` if it has none)."""
    try:
        node = decode_pb(block)
        meta = decode_unixfs(node.data) if node.data is not None else None
    except CodecError as exc:
        raise CodecError(f"block {link_str(link)}: {exc}") from None
    if meta is None:
        raise FormatError(f"{link_str(link)} is a dag-pb node without UnixFS Data")
    return node, meta
