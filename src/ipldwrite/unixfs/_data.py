"""The UnixFS ``Data`` protobuf message: what a dag-pb node's Data field holds in UnixFS.

Schema (ipfs/specs UNIXFS.md)::

    message Data {
        required DataType Type = 1;   // Raw, Directory, File, Metadata, Symlink, HAMTShard
        optional bytes Data = 2;
        optional uint64 filesize = 3;
        repeated uint64 blocksizes = 4;
        optional uint64 hashType = 5;
        optional uint64 fanout = 6;
        optional uint32 mode = 7;
        optional UnixTime mtime = 8;
    }
    message UnixTime { required int64 Seconds = 1; optional fixed32 FractionalNanoseconds = 2; }

Every known writer (go-unixfs, ipfs-unixfs) emits fields in number order, blocksizes unpacked
and varints minimal; the decoder accepts only that, so one logical node has one encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from ipldwrite.errors import CodecError
from ipldwrite.ipld import MAX_UINT64, read_varint, varint

__all__ = ["DataType", "UnixFSData", "UnixTime", "decode_unixfs", "encode_unixfs"]

_MAX_UINT32: Final = (1 << 32) - 1
_MAX_NANOS: Final = 999_999_999
_NAMES: Final = {
    1: "Type",
    2: "Data",
    3: "filesize",
    4: "blocksizes",
    5: "hashType",
    6: "fanout",
    7: "mode",
    8: "mtime",
}
# Wire type per field: 0 varint, 2 length-delimited.
_WIRE: Final = {1: 0, 2: 2, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 2}


class DataType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


_DATA_TYPES = frozenset(int(t) for t in DataType)


@dataclass(frozen=True, slots=True)
class UnixTime:
    seconds: int
    nanos: int | None = None


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """A decoded UnixFS Data message; ``None`` means the field is absent."""

    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: UnixTime | None = None

    def content_size(self) -> int:
        """Bytes of file content below this node: its own Data plus its children's."""
        return (len(self.data) if self.data is not None else 0) + sum(self.blocksizes)


def _check_range(name: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise CodecError(f"cannot encode UnixFS Data: {name}={value} is out of range [0, {top}]")


def encode_unixfs(node: UnixFSData) -> bytes:
    """The protobuf bytes of ``node``, fields in number order as ipfs-unixfs writes them."""
    out = bytearray(b"\x08")
    out += varint(int(node.type))
    if node.data is not None:
        out += b"\x12" + varint(len(node.data)) + node.data
    if node.filesize is not None:
        _check_range("filesize", node.filesize, MAX_UINT64)
        out += b"\x18" + varint(node.filesize)
    for size in node.blocksizes:
        _check_range("blocksizes", size, MAX_UINT64)
        out += b"\x20" + varint(size)
    if node.hash_type is not None:
        _check_range("hashType", node.hash_type, MAX_UINT64)
        out += b"\x28" + varint(node.hash_type)
    if node.fanout is not None:
        _check_range("fanout", node.fanout, MAX_UINT64)
        out += b"\x30" + varint(node.fanout)
    if node.mode is not None:
        _check_range("mode", node.mode, _MAX_UINT32)
        out += b"\x38" + varint(node.mode)
    if node.mtime is not None:
        seconds = node.mtime.seconds
        if not -(1 << 63) <= seconds < 1 << 63:
            raise CodecError(f"cannot encode UnixFS Data: mtime seconds {seconds} ∉ int64")
        # int64 varints carry negatives as their 64-bit two's complement (10 bytes).
        body = b"\x08" + varint(seconds & MAX_UINT64)
        if node.mtime.nanos is not None:
            _check_range("mtime nanos", node.mtime.nanos, _MAX_NANOS)
            body += b"\x15" + node.mtime.nanos.to_bytes(4, "little")
        out += b"\x42" + varint(len(body)) + body
    return bytes(out)


def _fail(what: str, offset: int) -> CodecError:
    return CodecError(f"invalid UnixFS Data: {what} at byte {offset}")


def _read_uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    try:
        return read_varint(buf, pos, end)
    except ValueError as exc:
        raise CodecError(f"invalid UnixFS Data: {exc}") from None


def _decode_mtime(buf: bytes, pos: int, end: int) -> UnixTime:
    seconds: int | None = None
    nanos: int | None = None
    while pos < end:
        start = pos
        key, pos = _read_uvarint(buf, pos, end)
        if key == 0x08 and seconds is None and nanos is None:
            raw, pos = _read_uvarint(buf, pos, end)
            seconds = raw - (1 << 64) if raw >> 63 else raw
        elif key == 0x15 and nanos is None:
            if pos + 4 > end:
                raise _fail("truncated mtime FractionalNanoseconds", pos)
            nanos = int.from_bytes(buf[pos : pos + 4], "little")
            if nanos > _MAX_NANOS:
                raise _fail(f"mtime FractionalNanoseconds {nanos} > {_MAX_NANOS}", pos)
            pos += 4
        else:
            raise _fail(
                f"unexpected UnixTime key 0x{key:x} (Seconds, then FractionalNanoseconds, once)",
                start,
            )
    if seconds is None:
        raise _fail("mtime without the required Seconds", end)
    return UnixTime(seconds, nanos)


def decode_unixfs(data: bytes | memoryview) -> UnixFSData:
    """Decode a UnixFS Data message strictly; :class:`CodecError` names the byte offset."""
    buf = bytes(data)
    end = len(buf)
    ints: dict[int, int] = {}  # the singular varint fields, by number
    payload: bytes | None = None
    mtime: UnixTime | None = None
    blocksizes: list[int] = []
    last = 0
    pos = 0
    while pos < end:
        start = pos
        key, pos = _read_uvarint(buf, pos, end)
        field, wire = key >> 3, key & 7
        name = _NAMES.get(field)
        if name is None:
            raise _fail(f"unknown field {field}", start)
        if field < last or (field == last and field != 4):
            raise _fail(f"field {name} out of order or repeated", start)
        last = field
        if wire != _WIRE[field]:
            # Packed blocksizes (wire type 2) land here too: ipfs-unixfs cannot read them.
            raise _fail(f"field {name} has wire type {wire}, expected {_WIRE[field]}", start)
        if wire == 0:
            value, pos = _read_uvarint(buf, pos, end)
            if field == 4:
                blocksizes.append(value)
                continue
            if field == 1 and value not in _DATA_TYPES:
                raise _fail(f"unknown Type {value}", start)
            if field == 7 and value > _MAX_UINT32:
                raise _fail(f"mode {value} exceeds uint32", start)
            ints[field] = value
            continue
        length, pos = _read_uvarint(buf, pos, end)
        if pos + length > end:
            raise _fail(f"field {name} of {length} bytes runs past the end", pos)
        if field == 2:
            payload = buf[pos : pos + length]
        else:
            mtime = _decode_mtime(buf, pos, pos + length)
        pos += length
    if 1 not in ints:
        raise _fail("missing the required Type", 0)
    return UnixFSData(
        type=DataType(ints[1]),
        data=payload,
        filesize=ints.get(3),
        blocksizes=tuple(blocksizes),
        hash_type=ints.get(5),
        fanout=ints.get(6),
        mode=ints.get(7),
        mtime=mtime,
    )
