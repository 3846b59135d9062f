"""Manifest leaves merged as bytes, without decoding a single link.

A leaf is a DAG-CBOR list of nulls (one byte, ``f6``) and links (``d8 2a 58 M 00`` and
the CID's M - 1 bytes). When every link in the leaves being merged has the same encoded
size, the position of each link follows from its byte offset alone, so the union of the
leaves is a few numpy operations over their bytes, and the canonical encoding of the
union is assembled the same way. A merge tree spends most of its time on exactly this: at
its first level every partial dataset brings a leaf of 4096 entries holding a few links.

Anything else (links of several sizes, a byte that is neither, a chunk claimed by two
leaves with different links) returns None, and the caller takes the general path, which
decodes, validates and names conflicts. The bytes written are identical on both paths:
the manifest is a pure function of its entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["merge_leaf_bytes"]

_NULL = 0xF6
#: Tag 42 (a CID), then a byte string whose length takes one byte (CIDs are 24-255 bytes).
_TAG_CID = (0xD8, 0x2A, 0x58)


def _list_header(length: int) -> bytes:
    if length < 24:
        return bytes([0x80 + length])
    if length < 1 << 8:
        return bytes([0x98, length])
    if length < 1 << 16:
        return b"\x99" + length.to_bytes(2, "big")
    return b"\x9a" + length.to_bytes(4, "big")


def _links_of(
    data: bytes, header: bytes, length: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]] | None:
    """(positions, encoded links as rows) of a canonical list of ``length`` nulls and
    links of one encoded size, or None if ``data`` is not exactly that."""
    if not data.startswith(header):
        return None
    body = np.frombuffer(data, dtype=np.uint8, offset=len(header))
    if len(body) == length:  # nulls only: never written, but not ours to refuse here
        return None
    tail = body[:-4]
    starts = np.flatnonzero(
        (tail == _TAG_CID[0])
        & (body[1:-3] == _TAG_CID[1])
        & (body[2:-2] == _TAG_CID[2])
        & (body[4:] == 0)
    )
    if not len(starts):
        return None
    size = int(body[starts[0] + 3]) + 4  # the whole encoded link: 4 header bytes + string
    count = len(starts)
    # A list of nulls and `count` links of `size` bytes has exactly this many bytes; a
    # false match inside some link's bytes would add one more, and a byte that is neither
    # null nor link start would shift the total or fail the null check below.
    if len(body) != length - count + count * size or (body[starts + 3] != size - 4).any():
        return None
    gaps = np.diff(starts)
    if (gaps < size).any():
        return None
    covered = np.zeros(len(body) + 1, dtype=np.int8)
    covered[starts] = 1
    covered[starts + size] -= 1
    if (body[np.cumsum(covered[:-1]) == 0] != _NULL).any():
        return None
    positions = starts - np.arange(count) * (size - 1)
    rows = body[starts[:, None] + np.arange(size)]
    return positions.astype(np.int64), rows


def merge_leaf_bytes(blocks: Sequence[bytes], length: int) -> bytes | None:
    """The canonical encoding of the union of leaves ``blocks`` (each a list of ``length``
    entries), or None when the general path must decide (see the module docstring)."""
    header = _list_header(length)
    parsed = [_links_of(data, header, length) for data in blocks]
    if any(p is None for p in parsed):
        return None
    sizes = {p[1].shape[1] for p in parsed if p is not None}
    if len(sizes) != 1:
        return None
    size = sizes.pop()
    positions = np.concatenate([p[0] for p in parsed if p is not None])
    rows = np.concatenate([p[1] for p in parsed if p is not None])
    order = np.argsort(positions, kind="stable")
    positions, rows = positions[order], rows[order]
    repeat = np.flatnonzero(positions[1:] == positions[:-1]) + 1
    if len(repeat):
        if (rows[repeat] != rows[repeat - 1]).any():
            return None  # a conflict: the general path names the chunk and both CIDs
        keep = np.ones(len(positions), dtype=bool)
        keep[repeat] = False
        positions, rows = positions[keep], rows[keep]
    count = len(positions)
    out = np.full(length - count + count * size, _NULL, dtype=np.uint8)
    starts = positions + np.arange(count) * (size - 1)
    out[starts[:, None] + np.arange(size)] = rows
    return header + out.tobytes()
