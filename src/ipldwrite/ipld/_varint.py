"""Unsigned LEB128 varints: multiformats (CIDs, CAR) and protobuf (DAG-PB, UnixFS) share them.

Readers are strict: minimal encodings only, at most 64 bits. They raise ``ValueError`` with
the reason and the byte offset; each format wraps that in its own error type.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_UINT64", "read_varint", "varint"]

MAX_UINT64: Final = (1 << 64) - 1


def varint(n: int) -> bytes:
    """The minimal unsigned varint of ``n``."""
    if n < 0x80:  # nearly every length and key: skip the loop
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """Read a varint at ``pos`` that must end before ``end``; return (value, next position)."""
    stop = len(buf) if end is None else end
    start = pos
    value = 0
    shift = 0
    while True:
        if pos >= stop:
            raise ValueError(f"truncated varint at byte {start}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and pos - start > 1:
                raise ValueError(f"varint not minimally encoded at byte {start}")
            if value > MAX_UINT64:
                raise ValueError(f"varint exceeds 64 bits at byte {start}")
            return value, pos
        shift += 7
        if shift >= 70:
            raise ValueError(f"varint longer than 10 bytes at byte {start}")
