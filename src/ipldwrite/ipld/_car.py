"""The CAR container formats, byte by byte: headers, sections and CARv2 indexes.

Pure format logic over binary file objects the caller opens; no policy about which blocks go
in. It lives in ``ipld``, the bottom layer, because both the CAR-backed blockstores and the
``car`` engines above them speak it; ``ipldwrite.car`` is the public face.

CARv1 is ``varint(len(header)) · header · sections``, the header DAG-CBOR
``{roots: [CID…], version: 1}`` and each section ``varint(len(cid) + len(data)) · cid ·
data``. CARv2 wraps a CARv1 payload: an 11-byte pragma, a 40-byte header (16 bytes of
characteristics, then dataOffset, dataSize and indexOffset as u64 LE), the payload, and
optionally an index: a varint codec followed by the index body.

Indexes are laid out as go-car writes them, since go-car is what reads them in practice:

* ``0x0400`` IndexSorted: ``i32`` bucket count, then per bucket (ascending width)
  ``u32 width · u64 byte length of the entries · entries``, where width is the digest length
  plus 8 and each entry is ``digest · u64 offset``, sorted by digest.
* ``0x0401`` MultihashIndexSorted: ``i32`` count of multihash codes, then per code
  (ascending) ``u64 code`` and an IndexSorted body for that code's digests.

All integers are little-endian; offsets are relative to the start of the CARv1 payload and
point at the section's leading varint. Identity multihashes are never indexed.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Final, NamedTuple

from ipldwrite.errors import CarError, CodecError, InvalidCIDError, TruncatedCarError
from ipldwrite.ipld._cid import IDENTITY, Link, parse_cid_bytes, varint
from ipldwrite.ipld._codec import decode, encode

__all__ = [
    "INDEX_SORTED",
    "MAX_HEADER_SIZE",
    "MAX_SECTION_SIZE",
    "MULTIHASH_INDEX_SORTED",
    "PRAGMA",
    "V2_HEADER_SIZE",
    "CarIndex",
    "CarLayout",
    "CarWriter",
    "Section",
    "encode_multihash_index",
    "encode_v1_header",
    "iter_blocks",
    "iter_sections",
    "multihash_of",
    "read_index",
    "read_layout",
    "read_section_at",
    "read_section_with",
    "write_car_blocks",
]

#: The CARv2 pragma: a CARv1-style header ``{version: 2}`` that CARv1-only readers refuse.
PRAGMA: Final = bytes.fromhex("0aa16776657273696f6e02")
V2_HEADER_SIZE: Final = 40
INDEX_SORTED: Final = 0x0400
MULTIHASH_INDEX_SORTED: Final = 0x0401
# go-car's defaults: nothing legitimate comes near them, and refusing larger lengths up front
# keeps a garbage file from making us allocate gigabytes before noticing it is not a CAR.
MAX_HEADER_SIZE: Final = 32 << 20
MAX_SECTION_SIZE: Final = 32 << 20

_U64: Final = struct.Struct("<Q")
_U32: Final = struct.Struct("<I")
_I32: Final = struct.Struct("<i")
_V2_HEADER: Final = struct.Struct("<16sQQQ")
_CHUNK: Final = 1 << 20
# A CID's four leading varints (version, codec, hash code, digest length) fit in 40 bytes.
_CID_HEAD: Final = 48


class Section(NamedTuple):
    """One block's place in the file; every offset is absolute (from the start of the file)."""

    link: Link
    data_offset: int
    data_length: int
    offset: int  # where the section's leading varint starts


@dataclass(frozen=True, slots=True)
class CarLayout:
    """Where things are in a CARv1 or CARv2 file (absolute byte offsets)."""

    version: int
    roots: tuple[Link, ...]
    file_size: int
    payload_offset: int  # start of the CARv1 payload: 0 for CARv1, dataOffset for CARv2
    sections_offset: int  # first section, just after the CARv1 header
    payload_end: int  # end of the last section
    index_offset: int | None = None  # CARv2 only, None when there is no index
    characteristics: bytes = bytes(16)
    name: str = "the file"  # how messages name the file


# -- varints and CIDs in a stream -----------------------------------------------------------


def _varint_at(buf: bytes, pos: int, at: int, *, eof: bool, what: str) -> tuple[int, int]:
    """Decode the varint starting at ``buf[pos]`` (file offset ``at``); ``eof``: buf is all."""
    value = 0
    shift = 0
    for i in range(pos, min(len(buf), pos + 10)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > pos:
                raise CarError(f"{what} at byte {at}: the varint is not minimally encoded")
            return value, i + 1
        shift += 7
    if len(buf) - pos < 10 and eof:
        raise TruncatedCarError(f"{what} at byte {at}: the file ends inside its length varint")
    raise CarError(f"{what} at byte {at}: not a varint (more than 9 bytes); is this a CAR file?")


def _cid_length(head: bytes, at: int) -> int:
    """The length of the binary CID that ``head`` starts with (``at``: its file offset)."""
    if len(head) >= 2 and head[0] == 0x12 and head[1] == 0x20:
        return 34  # CIDv0: a bare sha2-256 multihash
    pos = 0
    digest_length = 0
    for _ in range(4):  # version, codec, hash code, digest length
        try:
            digest_length, pos = _varint_at(head, pos, at, eof=True, what="CID")
        except CarError:
            raise CarError(f"the section at byte {at} does not start with a valid CID") from None
    return pos + digest_length


# Validated 4-byte heads of 36-byte CIDv1s: once one such CID parses, every other CID with the
# same head is valid by construction, which keeps scanning millions of sections cheap.
_checked_heads: set[bytes] = set()


def _link_at(raw: bytes, at: int) -> Link:
    head = raw[:4]
    if len(raw) != 36 or head not in _checked_heads:
        try:
            parse_cid_bytes(raw)
        except InvalidCIDError as exc:
            raise CarError(f"the section at byte {at} holds an invalid CID: {exc}") from None
        if len(raw) == 36 and raw[0] == 1 and raw[1] < 0x80 and raw[2] < 0x80 and raw[3] == 32:
            _checked_heads.add(head)
    return Link(raw)


def multihash_of(link: Link) -> tuple[int, bytes]:
    """(multihash code, digest): the part of a CID a CARv2 index keys on."""
    raw = link.cid_bytes
    if len(raw) == 36 and raw[0] == 1 and raw[1] < 0x80 and raw[2] < 0x80 and raw[3] == 32:
        return raw[2], raw[4:]
    parts = parse_cid_bytes(raw)
    return parts.hash_code, parts.digest


class _Reader:
    """Sequential reads over a file object in large chunks, tracking the absolute offset.

    Section heads are a few dozen bytes; reading them one ``read()`` call at a time would
    cost more than the hashing. Skipping data seeks instead of reading it.
    """

    def __init__(self, f: IO[bytes], start: int, end: int) -> None:
        f.seek(start)
        self._f = f
        self._base = start  # file offset of _buf[0]
        self._buf = b""
        self._i = 0
        self.end = end  # never read at or past this offset

    @property
    def pos(self) -> int:
        return self._base + self._i

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes without consuming them; fewer only at ``end``."""
        if len(self._buf) - self._i < n:
            loaded = self._base + len(self._buf)
            want = min(max(n, _CHUNK), self.end - loaded)
            more = self._f.read(want) if want > 0 else b""
            self._buf = self._buf[self._i :] + more
            self._base += self._i
            self._i = 0
        return self._buf[self._i : self._i + n]

    def take(self, n: int) -> bytes:
        """Exactly ``n`` bytes (the caller has checked they lie before ``end``)."""
        avail = len(self._buf) - self._i
        if n <= avail:
            out = self._buf[self._i : self._i + n]
            self._i += n
            return out
        out = self._buf[self._i :] + self._f.read(n - avail)
        self._base += self._i + n
        self._buf = b""
        self._i = 0
        if len(out) != n:  # the file shrank under us
            raise TruncatedCarError(f"the file ends at byte {self._base - n + len(out)}")
        return out

    def skip(self, n: int) -> None:
        avail = len(self._buf) - self._i
        if n <= avail:
            self._i += n
        else:
            self._base += self._i + n
            self._buf = b""
            self._i = 0
            self._f.seek(self._base)


def _file_size(f: IO[bytes]) -> int:
    return f.seek(0, os.SEEK_END)


# -- headers ----------------------------------------------------------------------------------


def encode_v1_header(roots: Sequence[Link]) -> bytes:
    """The CARv1 header with its length prefix."""
    body = encode({"roots": list(roots), "version": 1})
    return varint(len(body)) + body


def _read_v1_header(r: _Reader, *, inside: str) -> tuple[int, tuple[Link, ...]]:
    """(version, roots) of the header at the reader's position; roots are () for a pragma."""
    at = r.pos
    head = r.peek(10)
    if not head:
        raise TruncatedCarError(f"{inside} is empty: no CAR header at byte {at}")
    length, n = _varint_at(head, 0, at, eof=len(head) < 10, what=f"{inside}: the CAR header")
    if length == 0 or length > MAX_HEADER_SIZE:
        raise CarError(
            f"the CAR header at byte {at} claims {length} bytes; {inside} is not a CAR file"
        )
    if r.pos + n + length > r.end:
        raise TruncatedCarError(
            f"{inside} ends at byte {r.end}, inside the {length}-byte CAR header at byte {at}"
        )
    r.skip(n)
    raw = r.take(length)
    try:
        header = decode(raw, what="the CAR header")
    except CodecError as exc:
        raise CarError(f"{inside} is not a CAR file: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("version"), int):
        raise CarError(f"{inside} is not a CAR file: its header is not {{roots, version}}")
    version: int = header["version"]
    if version == 2:
        return 2, ()
    if version != 1:
        raise CarError(f"{inside} is CAR version {version}; only CARv1 and CARv2 are supported")
    roots = header.get("roots")
    if not isinstance(roots, list) or not all(isinstance(x, Link) for x in roots):
        raise CarError(f"{inside}: the CARv1 header's 'roots' is not a list of CIDs")
    for root in roots:
        try:
            parse_cid_bytes(root.cid_bytes)
        except InvalidCIDError as exc:
            raise CarError(f"{inside}: the CAR header holds an invalid root: {exc}") from None
    return 1, tuple(roots)


def read_layout(f: IO[bytes], name: str = "the file") -> CarLayout:
    """Read and check the headers of a CARv1 or CARv2 file; ``name`` appears in messages."""
    size = _file_size(f)
    r = _Reader(f, 0, size)
    version, roots = _read_v1_header(r, inside=name)
    if version == 1:
        return CarLayout(1, roots, size, 0, r.pos, size, name=name)
    if r.pos != len(PRAGMA):  # readers find the CARv2 header at byte 11, whatever comes first
        raise CarError(f"{name}: the CAR header says version 2 but is not the CARv2 pragma")
    if size < len(PRAGMA) + V2_HEADER_SIZE:
        raise TruncatedCarError(f"{name} ends at byte {size}, inside the 40-byte CARv2 header")
    f.seek(len(PRAGMA))
    chars, data_offset, data_size, index_offset = _V2_HEADER.unpack(f.read(V2_HEADER_SIZE))
    data_end = data_offset + data_size
    if max(data_offset, data_size, index_offset) >= 1 << 63:  # go-car refuses these too
        raise CarError(f"{name}: the CARv2 header is malformed (offsets beyond 2**63)")
    if data_offset < len(PRAGMA) + V2_HEADER_SIZE or data_size == 0:
        raise CarError(
            f"{name}: the CARv2 header is malformed (dataOffset {data_offset}, dataSize "
            f"{data_size})"
        )
    if data_end > size:
        raise TruncatedCarError(
            f"{name} ends at byte {size}, but its CARv2 header says the payload runs from "
            f"byte {data_offset} to byte {data_end}"
        )
    if index_offset and not data_end <= index_offset < size:
        if index_offset >= size:
            raise TruncatedCarError(
                f"{name} ends at byte {size}, before its CARv2 index at byte {index_offset}"
            )
        raise CarError(
            f"{name}: the CARv2 index offset {index_offset} lies inside the payload "
            f"(bytes {data_offset}-{data_end})"
        )
    inner = _Reader(f, data_offset, data_end)
    inner_version, roots = _read_v1_header(inner, inside=f"the CARv2 payload of {name}")
    if inner_version != 1:
        raise CarError(f"{name}: the CARv2 payload is not a CARv1 (version {inner_version})")
    return CarLayout(
        2, roots, size, data_offset, inner.pos, data_end, index_offset or None, chars, name
    )


# -- sections ---------------------------------------------------------------------------------


def _sections(
    f: IO[bytes], layout: CarLayout, *, with_data: bool
) -> Iterator[tuple[Section, bytes]]:
    try:
        yield from _unnamed_sections(f, layout, with_data=with_data)
    except CarError as exc:  # the messages below give offsets; this adds the file
        raise type(exc)(f"{layout.name}: {exc}") from None


def _unnamed_sections(
    f: IO[bytes], layout: CarLayout, *, with_data: bool
) -> Iterator[tuple[Section, bytes]]:
    end = layout.payload_end
    r = _Reader(f, layout.sections_offset, end)
    while True:
        at = r.pos
        head = r.peek(10)
        if not head:
            return
        length, n = _varint_at(head, 0, at, eof=len(head) < 10, what="the section")
        if length == 0:
            # go-car can treat this as the end of the data; we refuse rather than guess,
            # since anything after it (padding or blocks) would be silently ignored.
            raise CarError(f"zero-length section at byte {at}: the CAR is damaged")
        if length > MAX_SECTION_SIZE:
            raise CarError(
                f"the section at byte {at} claims {length} bytes (more than 32 MiB): the CAR "
                "is damaged, or this is not a CAR file"
            )
        if at + n + length > end:
            where = "the file" if layout.version == 1 else "the CARv2 payload"
            raise TruncatedCarError(
                f"{where} ends at byte {end}, inside the section at byte {at} (which "
                f"needs {n + length} bytes): the CAR is truncated"
            )
        r.skip(n)
        cid_length = _cid_length(r.peek(min(length, _CID_HEAD)), at)
        if cid_length > length:  # equal is fine: an empty block (e.g. the empty raw block)
            raise CarError(
                f"the section at byte {at} is {length} bytes, too short for its "
                f"{cid_length}-byte CID"
            )
        link = _link_at(r.take(cid_length), at)
        data_offset = r.pos
        data_length = length - cid_length
        if with_data:
            data = r.take(data_length)
        else:
            r.skip(data_length)
            data = b""
        yield Section(link, data_offset, data_length, at), data


def iter_sections(f: IO[bytes], layout: CarLayout) -> Iterator[Section]:
    """Every section's place, in file order, seeking past the data instead of reading it."""
    for section, _ in _sections(f, layout, with_data=False):
        yield section


def iter_blocks(f: IO[bytes], layout: CarLayout) -> Iterator[tuple[Section, bytes]]:
    """Every section with its data, in file order, one block in memory at a time."""
    return _sections(f, layout, with_data=True)


def read_section_at(fd: int, offset: int, layout: CarLayout) -> tuple[Link, int, int]:
    """(link, data offset, data length) of the section at absolute ``offset``, via pread.

    Raises :class:`CarError` if no well-formed section starts there.
    """
    return read_section_with(lambda n, at: os.pread(fd, n, at), offset, layout)


def read_section_with(
    pread: Callable[[int, int], bytes], offset: int, layout: CarLayout
) -> tuple[Link, int, int]:
    """:func:`read_section_at` over any ``pread(length, offset)`` (a remote file's ranges)."""
    if not layout.sections_offset <= offset < layout.payload_end:
        raise CarError(f"byte {offset} lies outside the sections of the CAR")
    head = pread(10 + _CID_HEAD, offset)
    length, n = _varint_at(head, 0, offset, eof=True, what="the section")
    if length == 0 or offset + n + length > layout.payload_end:
        raise CarError(f"no well-formed section at byte {offset}")
    cid_length = _cid_length(head[n : n + min(length, _CID_HEAD)], offset)
    if cid_length > length:
        raise CarError(f"no well-formed section at byte {offset}")
    fits = n + cid_length <= len(head)
    raw = head[n : n + cid_length] if fits else pread(cid_length, offset + n)
    return _link_at(raw, offset), offset + n + cid_length, length - cid_length


# -- writing ------------------------------------------------------------------------------------


class CarWriter:
    """Write a CARv1, or a CARv2 with a MultihashIndexSorted index, to a seekable file.

    ``add`` appends one section; ``finish`` writes the index (CARv2) and the real CARv2
    header, which is only known once the payload is. Deduplication and block order are the
    caller's business. Memory grows by one index entry (about 50 bytes) per block for CARv2.
    """

    def __init__(self, f: IO[bytes], roots: Sequence[Link], *, version: int = 1) -> None:
        if version not in (1, 2):
            raise ValueError(f"version={version}: CAR version must be 1 or 2")
        self._f = f
        self.version = version
        self._start = f.tell()
        if version == 2:
            # A placeholder header; finish() rewrites it with the payload's size.
            f.write(PRAGMA + bytes(V2_HEADER_SIZE))
        header = encode_v1_header(roots)
        f.write(header)
        self._pos = len(header)  # offset within the payload
        self._entries: list[tuple[int, bytes, int]] = []
        self.blocks = 0

    def add(self, link: Link, data: bytes | memoryview) -> int:
        """Append one section; return its offset relative to the payload start."""
        raw = link.cid_bytes
        prefix = varint(len(raw) + len(data))
        self._f.write(prefix)
        self._f.write(raw)
        self._f.write(data)
        offset = self._pos
        if self.version == 2:
            code, digest = multihash_of(link)
            if code != IDENTITY:  # as go-car: identity CIDs carry their data already
                self._entries.append((code, digest, offset))
        self._pos += len(prefix) + len(raw) + len(data)
        self.blocks += 1
        return offset

    def finish(self) -> int:
        """Complete the file; return its size in bytes."""
        if self.version == 1:
            return self._pos
        index = encode_multihash_index(self._entries)
        self._f.write(index)
        end = self._f.tell()
        data_offset = len(PRAGMA) + V2_HEADER_SIZE
        header = _V2_HEADER.pack(bytes(16), data_offset, self._pos, data_offset + self._pos)
        self._f.seek(self._start + len(PRAGMA))
        self._f.write(header)
        self._f.seek(end)
        return end - self._start


def write_car_blocks(
    write: Callable[[bytes], object], roots: Sequence[Link], blocks: Sequence[tuple[Link, bytes]]
) -> int:
    """Write a CARv2 with a MultihashIndexSorted index of ``blocks``, strictly in order.

    Unlike :class:`CarWriter` it never seeks: the blocks are known up front, so the CARv2
    header can be computed first. That suits streams (object-store uploads through fsspec).
    Returns the number of bytes written.
    """
    header = encode_v1_header(roots)
    entries = []
    pos = len(header)
    prefixes = []
    for link, data in blocks:
        prefix = varint(len(link.cid_bytes) + len(data))
        prefixes.append(prefix)
        code, digest = multihash_of(link)
        if code != IDENTITY:
            entries.append((code, digest, pos))
        pos += len(prefix) + len(link.cid_bytes) + len(data)
    data_offset = len(PRAGMA) + V2_HEADER_SIZE
    write(PRAGMA + _V2_HEADER.pack(bytes(16), data_offset, pos, data_offset + pos))
    write(header)
    for prefix, (link, data) in zip(prefixes, blocks, strict=True):
        write(prefix + link.cid_bytes)
        write(data)
    index = encode_multihash_index(entries)
    write(index)
    return data_offset + pos + len(index)


def encode_multihash_index(entries: Iterable[tuple[int, bytes, int]]) -> bytes:
    """The index (codec varint included) for (multihash code, digest, payload offset)s."""
    by_code: dict[int, dict[int, list[tuple[bytes, int]]]] = {}
    for code, digest, offset in entries:
        by_code.setdefault(code, {}).setdefault(len(digest) + 8, []).append((digest, offset))
    out = bytearray(varint(MULTIHASH_INDEX_SORTED))
    out += _I32.pack(len(by_code))
    for code in sorted(by_code):
        widths = by_code[code]
        out += _U64.pack(code)
        out += _I32.pack(len(widths))
        for width in sorted(widths):
            items = sorted(widths[width])
            out += _U32.pack(width)
            out += _U64.pack(width * len(items))
            for digest, offset in items:
                out += digest
                out += _U64.pack(offset)
    return bytes(out)


# -- reading indexes ----------------------------------------------------------------------------


class _Digests:
    """The digests of one bucket as a sorted sequence, for :func:`bisect` to search in place."""

    def __init__(self, entries: bytes, width: int) -> None:
        self._entries = entries
        self._width = width
        self._count = len(entries) // width

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:
        start = i * self._width
        return self._entries[start : start + self._width - 8]


@dataclass(frozen=True, slots=True)
class _Bucket:
    width: int
    entries: bytes  # width-byte records: digest · u64 offset, sorted by digest

    def offsets(self, digest: bytes) -> list[int]:
        digests = _Digests(self.entries, self.width)
        i = bisect.bisect_left(digests, digest)
        found = []
        while i < len(digests) and digests[i] == digest:
            end = (i + 1) * self.width
            found.append(_U64.unpack_from(self.entries, end - 8)[0])
            i += 1
        return found

    def items(self) -> Iterator[tuple[bytes, int]]:
        w = self.width
        for start in range(0, len(self.entries), w):
            yield (
                self.entries[start : start + w - 8],
                _U64.unpack_from(self.entries, start + w - 8)[0],
            )


@dataclass(frozen=True, slots=True)
class CarIndex:
    """A CARv2 index held compactly in memory (the file's own bytes, searched by bisection).

    Keys are (multihash code, digest length); IndexSorted does not record the code, so its
    buckets are keyed with code ``None`` and match any code.
    """

    codec: int
    buckets: dict[tuple[int | None, int], _Bucket]

    def lookup(self, code: int, digest: bytes) -> list[int]:
        """Payload-relative offsets of the sections indexed under this multihash."""
        bucket = self.buckets.get((code, len(digest))) or self.buckets.get((None, len(digest)))
        return bucket.offsets(digest) if bucket else []

    def items(self) -> Iterator[tuple[int | None, bytes, int]]:
        """Every (code, digest, offset) entry, bucket by bucket."""
        for (code, _), bucket in sorted(
            self.buckets.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])
        ):
            for digest, offset in bucket.items():
                yield code, digest, offset


def read_index(f: IO[bytes], layout: CarLayout, *, entries: bool = True) -> CarIndex | None:
    """Read the CARv2 index of ``layout`` (None if it has none or one of another codec).

    The CARv2 spec allows index codecs besides 0x0400 and 0x0401; a reader can do without
    them, so they give None. A malformed index raises :class:`CarError`, one cut short
    :class:`TruncatedCarError`. ``entries=False`` checks the structure and extent only,
    holding nothing: what an importer needs to know the file is whole.
    """
    try:
        return _read_index(f, layout, entries=entries)
    except CarError as exc:
        raise type(exc)(f"{layout.name}: {exc}") from None


def _read_index(f: IO[bytes], layout: CarLayout, *, entries: bool) -> CarIndex | None:
    at = layout.index_offset
    if at is None:
        return None
    size = layout.file_size
    pos = at

    def read(n: int) -> bytes:
        nonlocal pos
        if pos + n > size:
            raise TruncatedCarError(
                f"the file ends at byte {size}, inside the CARv2 index that starts at byte {at}"
            )
        f.seek(pos)
        pos += n
        return f.read(n)

    head = read(min(10, size - at))
    codec, n = _varint_at(head, 0, at, eof=True, what="the CARv2 index")
    pos = at + n
    if codec not in (INDEX_SORTED, MULTIHASH_INDEX_SORTED):
        return None
    buckets: dict[tuple[int | None, int], _Bucket] = {}

    def read_widths(code: int | None) -> None:
        nonlocal pos
        (count,) = _I32.unpack(read(4))
        if count < 0:
            raise CarError(f"the CARv2 index at byte {at} is malformed (negative bucket count)")
        for _ in range(count):
            width, length = struct.unpack("<IQ", read(12))
            if width <= 8 or length % width:
                raise CarError(
                    f"the CARv2 index at byte {at} is malformed (a bucket of {length} bytes "
                    f"with {width}-byte entries)"
                )
            if entries:
                buckets[code, width - 8] = _Bucket(width, read(length))
            elif pos + length > size:
                read(length)  # raises: the bucket runs past the end of the file
            else:
                pos += length

    if codec == INDEX_SORTED:
        read_widths(None)
    else:
        (codes,) = _I32.unpack(read(4))
        if codes < 0:
            raise CarError(f"the CARv2 index at byte {at} is malformed (negative code count)")
        for _ in range(codes):
            (code,) = _U64.unpack(read(8))
            read_widths(code)
    return CarIndex(codec, buckets)
