"""CIDs as the hot paths see them, and the conversions at the public boundary.

Inside ipldwrite a link is a :class:`cbrrr.CID` (a thin wrapper over the binary CID): the
DAG-CBOR codec produces and consumes it directly and it costs almost nothing to create.
:class:`multiformats.CID` is what users see; building one costs ~100 µs, far too slow for
manifests with millions of links, so conversion happens only at the public boundary.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final

import cbrrr
from multiformats import CID

from ipldwrite.errors import CorruptBlockError, InvalidCIDError
from ipldwrite.ipld._varint import read_varint, varint

__all__ = [
    "BLAKE3",
    "DAG_CBOR",
    "DAG_PB",
    "IDENTITY",
    "RAW",
    "SHA2_256",
    "CIDParts",
    "Link",
    "block_matches",
    "codec_of",
    "compute_link",
    "digest_of",
    "link_from_bytes",
    "link_str",
    "parse_cid_bytes",
    "read_varint",
    "to_cid",
    "to_link",
    "varint",
    "verify_block",
]

Link = cbrrr.CID

RAW: Final = 0x55
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
SHA2_256: Final = 0x12
BLAKE3: Final = 0x1E
IDENTITY: Final = 0x00

_CODEC_NAMES: Final = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor"}
_HASH_NAMES: Final = {SHA2_256: "sha2-256", BLAKE3: "blake3", IDENTITY: "identity"}
HASHERS: Final = {"sha2-256": SHA2_256, "blake3": BLAKE3}
# Identity CIDs embed their data; the specs cap them so they cannot smuggle whole blocks.
MAX_IDENTITY_DIGEST: Final = 128


@dataclass(frozen=True, slots=True)
class CIDParts:
    version: int
    codec: int
    hash_code: int
    digest: bytes


def parse_cid_bytes(data: bytes) -> CIDParts:
    """Parse a binary CID (v1, or v0 for old dag-pb trees), refusing anything malformed."""
    try:
        if len(data) == 34 and data[0] == 0x12 and data[1] == 0x20:
            return CIDParts(0, DAG_PB, SHA2_256, bytes(data[2:]))
        version, pos = read_varint(data, 0)
        if version != 1:
            raise ValueError(f"CID version {version} (only CIDv1, and CIDv0 for dag-pb)")
        codec, pos = read_varint(data, pos)
        hash_code, pos = read_varint(data, pos)
        length, pos = read_varint(data, pos)
    except ValueError as exc:
        raise InvalidCIDError(f"malformed binary CID {data.hex()}: {exc}") from None
    digest = bytes(data[pos:])
    if len(digest) != length:
        raise InvalidCIDError(
            f"malformed binary CID {data.hex()}: multihash says {length} digest bytes, "
            f"{len(digest)} follow"
        )
    if hash_code == IDENTITY and length > MAX_IDENTITY_DIGEST:
        raise InvalidCIDError(f"identity CID with {length} bytes (the limit is 128)")
    return CIDParts(version, codec, hash_code, digest)


def link_from_bytes(data: bytes) -> Link:
    """A validated link from binary CID bytes."""
    parse_cid_bytes(data)
    return Link(bytes(data))


def digest_of(hash_code: int, data: bytes | memoryview) -> bytes:
    if hash_code == SHA2_256:
        return hashlib.sha256(data).digest()
    if hash_code == BLAKE3:
        try:
            import blake3
        except ImportError:  # pragma: no cover - depends on the environment
            raise InvalidCIDError(
                "blake3 CIDs need the optional 'blake3' package: pip install 'ipldwrite[blake3]'"
            ) from None
        return bytes(blake3.blake3(data).digest())
    if hash_code == IDENTITY:
        return bytes(data)
    raise InvalidCIDError(f"unsupported multihash code 0x{hash_code:x} (sha2-256 or blake3)")


def _prefix(codec: int, hash_code: int, length: int) -> bytes:
    return b"\x01" + varint(codec) + varint(hash_code) + varint(length)


_PREFIXES: Final = {
    (codec, code): _prefix(codec, code, 32)
    for codec in (RAW, DAG_PB, DAG_CBOR)
    for code in (SHA2_256, BLAKE3)
}


def compute_link(data: bytes | memoryview, codec: int = RAW, hasher: str = "sha2-256") -> Link:
    """The CIDv1 of ``data`` under ``codec`` (raw, dag-cbor, dag-pb) and ``hasher``."""
    try:
        code = HASHERS[hasher]
    except KeyError:
        raise InvalidCIDError(f"unknown hasher {hasher!r}: use 'sha2-256' or 'blake3'") from None
    return Link(_PREFIXES[codec, code] + digest_of(code, data))


def codec_of(link: Link) -> int:
    """The codec of ``link``; raises :class:`InvalidCIDError` for a malformed CID."""
    raw = link.cid_bytes
    if len(raw) > 2 and raw[0] == 1 and raw[1] < 0x80:  # CIDv1, one-byte codec: the usual case
        return raw[1]
    return parse_cid_bytes(raw).codec


def block_matches(link: Link, data: bytes | memoryview) -> bool:
    """Whether ``data`` hashes to ``link``'s digest (identity CIDs: equals it)."""
    parts = parse_cid_bytes(link.cid_bytes)
    return digest_of(parts.hash_code, data) == parts.digest


def verify_block(link: Link, data: bytes | memoryview) -> None:
    """Raise :class:`CorruptBlockError` unless ``data`` hashes to ``link``."""
    if not block_matches(link, data):
        raise CorruptBlockError(
            f"block {link_str(link)} is corrupt: its {len(data)} bytes hash to a different "
            "digest. Restore it from a good copy: `ipldwrite repair ROOT --from good.car` "
            "(or `ipldwrite import-car good.car`), then `ipldwrite verify ROOT`.",
            cid=link,
        )


def link_str(link: Link) -> str:
    """The default string form: base32 lower for CIDv1, base58btc for CIDv0."""
    raw = link.cid_bytes
    if len(raw) == 34 and raw[0] == 0x12:
        return str(CID.decode(bytes(raw)))
    return "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


class LinkLabel:
    """``prefix + link_str(link) + suffix``, rendered only when printed.

    Error messages name blocks by CID, but base32-encoding the CID of every block a merge
    reads, in case one is bad, costs more than the merge's own bookkeeping.
    """

    __slots__ = ("link", "prefix", "suffix")

    def __init__(self, prefix: str, link: Link, suffix: str = "") -> None:
        self.prefix = prefix
        self.link = link
        self.suffix = suffix

    def __str__(self) -> str:
        return f"{self.prefix}{link_str(self.link)}{self.suffix}"


def to_link(value: object) -> Link:
    """Normalise a CID given by a user (multiformats.CID, str, bytes or Link) to a Link."""
    if isinstance(value, Link):
        return value
    if isinstance(value, CID):
        return link_from_bytes(bytes(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return link_from_bytes(bytes(value))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("b") and text[1:].isalnum() and text == text.lower():
            body = text[1:].upper()
            try:
                raw = base64.b32decode(body + "=" * (-len(body) % 8))
            except ValueError:
                raise InvalidCIDError(f"{value!r} is not a CID: invalid base32") from None
            try:
                return link_from_bytes(raw)
            except InvalidCIDError as exc:
                raise InvalidCIDError(f"{value!r} is not a CID: {exc}") from None
        try:
            return link_from_bytes(bytes(CID.decode(text)))
        except Exception as exc:  # multiformats raises several unrelated types here
            raise InvalidCIDError(
                f"{value!r} is not a CID ({exc}). Expected a CIDv1 string such as "
                "'bafyrei…' (as printed by `ipldwrite` and IPFS tools)."
            ) from None
    raise InvalidCIDError(f"expected a CID (multiformats.CID or str), got {type(value).__name__}")


def to_cid(link: Link) -> CID:
    """The public CID type for a Link."""
    cid = CID.decode(bytes(link.cid_bytes))
    # multiformats prints base58btc by default; IPFS tools print CIDv1 in base32.
    return cid if cid.version == 0 else cid.set(base="base32")


def codec_name(code: int) -> str:
    return _CODEC_NAMES.get(code, f"0x{code:x}")


def hash_name(code: int) -> str:
    return _HASH_NAMES.get(code, f"0x{code:x}")
