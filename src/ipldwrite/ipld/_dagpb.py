"""Strict, canonical DAG-PB (the codec under UnixFS).

The format is two tiny protobuf messages, so it is written by hand: no maintained Python
protobuf library refuses the non-canonical forms DAG-PB forbids, and a generic one would cost
more than the whole codec. The schema, as the DAG-PB spec gives it::

    message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
    message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }

Canonical bytes put every Link before Data (despite the field numbers) and each link's fields
in the order Hash, Name, Tsize; varints are minimal. The decoder accepts only that layout, as
go-codec-dagpb does: a block two encoders could write differently would have two CIDs. It does
not check that links are sorted by name: neither reference decoder does, and old blocks with
unsorted links are still valid content to read (only :func:`encode_pb` insists on the order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ipldwrite.errors import CodecError, InvalidCIDError
from ipldwrite.ipld._cid import Link, parse_cid_bytes
from ipldwrite.ipld._varint import MAX_UINT64, read_varint, varint

__all__ = ["PBLink", "PBNode", "decode_pb", "encode_pb"]

# Wire types (protobuf): only varints and length-delimited bytes occur in DAG-PB.
_VARINT: Final = 0
_BYTES: Final = 2
_LINK_FIELDS: Final = {1: "Hash", 2: "Name", 3: "Tsize"}


@dataclass(frozen=True, slots=True)
class PBLink:
    """One link of a DAG-PB node. ``name=None`` (absent) and ``""`` encode differently."""

    hash: Link
    name: str | None = None
    tsize: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    """A DAG-PB node. ``data=None`` (absent) and ``b""`` encode differently."""

    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def encode_pb(node: PBNode) -> bytes:
    """Canonical DAG-PB bytes of ``node``.

    Raises :class:`CodecError` for links not sorted by name bytes (the spec's canonical order,
    which @ipld/dag-pb also enforces) and for a Tsize outside uint64.
    """
    out = bytearray()
    previous = b""
    for index, link in enumerate(node.links):
        cid = link.hash.cid_bytes
        body = b"\x0a" + varint(len(cid)) + cid
        if link.name is not None:
            name = link.name.encode("utf-8")
            if name < previous:
                raise CodecError(
                    f"cannot encode DAG-PB: link {index} ({link.name!r}) is out of order; "
                    "links must be sorted by name bytes (sort them, stably, before encoding)"
                )
            previous = name
            body += b"\x12" + varint(len(name)) + name
        elif previous:
            # An absent name sorts as b"", so it cannot follow a named link.
            raise CodecError(
                f"cannot encode DAG-PB: unnamed link {index} follows a named one; "
                "links must be sorted by name bytes"
            )
        if link.tsize is not None:
            if not 0 <= link.tsize <= MAX_UINT64:
                raise CodecError(f"cannot encode DAG-PB: link {index} Tsize {link.tsize} ∉ uint64")
            body += b"\x18" + varint(link.tsize)
        out += b"\x12"
        out += varint(len(body))
        out += body
    if node.data is not None:
        out += b"\x0a"
        out += varint(len(node.data))
        out += node.data
    return bytes(out)


def _fail(what: str, offset: int) -> CodecError:
    return CodecError(f"invalid DAG-PB: {what} at byte {offset}")


def _read_uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    try:
        return read_varint(buf, pos, end)
    except ValueError as exc:
        raise CodecError(f"invalid DAG-PB: {exc}") from None


def _read_bytes(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Bounds of a length-delimited field whose length prefix starts at ``pos``."""
    if pos < end and buf[pos] < 0x80:  # a one-byte length: every CID and most names
        length = buf[pos]
        pos += 1
    else:
        length, pos = _read_uvarint(buf, pos, end)
    if pos + length > end:
        raise _fail(f"{what} of {length} bytes runs past the end of its message", pos)
    return pos, pos + length


def _check_cid(cid: bytes, offset: int) -> None:
    # CIDv1 with one-byte codec and hash codes and a 32-byte digest, or CIDv0: valid by
    # their shape, so the common case skips the full parse.
    if len(cid) == 36 and cid[0] == 1 and cid[1] < 0x80 and cid[2] < 0x80 and cid[3] == 32:
        return
    if len(cid) == 34 and cid[0] == 0x12 and cid[1] == 0x20:
        return
    try:
        parse_cid_bytes(cid)
    except InvalidCIDError as exc:
        raise _fail(f"PBLink Hash is not a CID ({exc})", offset) from None


def _bad_link_key(buf: bytes, start: int, end: int, last: int) -> CodecError:
    """The precise error for a PBLink key the fast path did not accept."""
    key, _ = _read_uvarint(buf, start, end)
    field, wire = key >> 3, key & 7
    label = _LINK_FIELDS.get(field)
    if label is None:
        return _fail(f"unknown PBLink field {field}", start)
    if field == last:
        return _fail(f"duplicate PBLink {label}", start)
    if field < last:
        return _fail(
            f"PBLink {label} after {_LINK_FIELDS[last]} (order is Hash, Name, Tsize)", start
        )
    expected = _VARINT if field == 3 else _BYTES
    return _fail(f"PBLink {label} has wire type {wire}, expected {expected}", start)


def _decode_link(buf: bytes, pos: int, end: int) -> PBLink:
    link_start = pos
    cid: bytes | None = None
    name: str | None = None
    tsize: int | None = None
    last = 0  # the last field number seen: each may occur once, in order
    while pos < end:
        key = buf[pos]
        # Fields 1-3 with their wire types have one-byte keys: 0x0a, 0x12, 0x18.
        if key == 0x0A and last < 1:
            lo, pos = _read_bytes(buf, pos + 1, end, "PBLink Hash")
            cid = buf[lo:pos]
            _check_cid(cid, lo)
            last = 1
        elif key == 0x12 and last < 2:
            lo, pos = _read_bytes(buf, pos + 1, end, "PBLink Name")
            try:
                name = buf[lo:pos].decode("utf-8")
            except UnicodeDecodeError:
                raise _fail("PBLink Name is not UTF-8", lo) from None
            last = 2
        elif key == 0x18 and last < 3:
            tsize, pos = _read_uvarint(buf, pos + 1, end)
            last = 3
        else:
            raise _bad_link_key(buf, pos, end, last)
    if cid is None:
        raise _fail("PBLink without the required Hash", link_start)
    return PBLink(Link(cid), name, tsize)


def decode_pb(data: bytes | memoryview) -> PBNode:
    """Decode canonical DAG-PB, raising :class:`CodecError` (with the byte offset) otherwise."""
    buf = bytes(data)
    end = len(buf)
    links: list[PBLink] = []
    node_data: bytes | None = None
    pos = 0
    while pos < end:
        start = pos
        key, pos = _read_uvarint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 2:
            if node_data is not None:
                raise _fail("PBNode Links after Data (canonical order is Links, then Data)", start)
            if wire != _BYTES:
                raise _fail(f"PBNode Links has wire type {wire}, expected 2", start)
            lo, pos = _read_bytes(buf, pos, end, "PBLink")
            links.append(_decode_link(buf, lo, pos))
        elif field == 1:
            if node_data is not None:
                raise _fail("duplicate PBNode Data", start)
            if wire != _BYTES:
                raise _fail(f"PBNode Data has wire type {wire}, expected 2", start)
            lo, pos = _read_bytes(buf, pos, end, "PBNode Data")
            node_data = buf[lo:pos]
        else:
            raise _fail(f"unknown PBNode field {field}", start)
    return PBNode(tuple(links), node_data)
