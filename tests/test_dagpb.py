"""The DAG-PB codec: canonical bytes out, only canonical bytes in."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipldwrite.errors import CodecError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    Link,
    PBLink,
    PBNode,
    compute_link,
    decode_pb,
    encode_pb,
    link_str,
)

RAW_LINK = compute_link(b"leaf")
CID_BYTES = RAW_LINK.cid_bytes  # 36 bytes
CIDV0 = Link(b"\x12\x20" + hashlib.sha256(b"v0").digest())
EMPTY_DIR = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


def _link_msg(*fields: bytes) -> bytes:
    body = b"".join(fields)
    return b"\x12" + bytes([len(body)]) + body


HASH = b"\x0a\x24" + CID_BYTES


# -- encoding ------------------------------------------------------------------------------


def test_empty_node_is_empty_bytes() -> None:
    assert encode_pb(PBNode()) == b""
    assert decode_pb(b"") == PBNode((), None)


def test_empty_unixfs_directory_has_the_well_known_cid() -> None:
    block = encode_pb(PBNode(data=b"\x08\x01"))
    assert link_str(compute_link(block, DAG_PB)) == EMPTY_DIR


def test_canonical_bytes_put_links_before_data_and_fields_in_order() -> None:
    node = PBNode((PBLink(RAW_LINK, "a", 300),), b"xy")
    expected = _link_msg(HASH, b"\x12\x01a", b"\x18\xac\x02") + b"\x0a\x02xy"
    assert encode_pb(node) == expected
    assert decode_pb(expected) == node


def test_absent_and_empty_fields_are_distinct() -> None:
    absent = PBNode((PBLink(RAW_LINK),), None)
    empty = PBNode((PBLink(RAW_LINK, "", 0),), b"")
    assert encode_pb(absent) == _link_msg(HASH)
    assert encode_pb(empty) == _link_msg(HASH, b"\x12\x00", b"\x18\x00") + b"\x0a\x00"
    assert decode_pb(encode_pb(absent)) == absent
    assert decode_pb(encode_pb(empty)) == empty


def test_cidv0_links_round_trip() -> None:
    node = PBNode((PBLink(CIDV0, "", 10),), b"\x08\x02")
    assert decode_pb(encode_pb(node)) == node


def test_encode_refuses_unsorted_links() -> None:
    with pytest.raises(CodecError, match="sorted by name"):
        encode_pb(PBNode((PBLink(RAW_LINK, "b"), PBLink(RAW_LINK, "a"))))
    with pytest.raises(CodecError, match="unnamed link 1 follows a named one"):
        encode_pb(PBNode((PBLink(RAW_LINK, "a"), PBLink(RAW_LINK, None))))
    # Equal names keep their order (the sort is stable), and "" sorts with absent names.
    encode_pb(PBNode((PBLink(RAW_LINK, "a", 1), PBLink(RAW_LINK, "a", 2))))
    encode_pb(PBNode((PBLink(RAW_LINK, None), PBLink(RAW_LINK, ""), PBLink(RAW_LINK))))


@pytest.mark.parametrize("tsize", [-1, 1 << 64])
def test_encode_refuses_tsize_outside_uint64(tsize: int) -> None:
    with pytest.raises(CodecError, match="uint64"):
        encode_pb(PBNode((PBLink(RAW_LINK, None, tsize),)))


def test_largest_tsize_round_trips() -> None:
    node = PBNode((PBLink(RAW_LINK, None, (1 << 64) - 1),))
    assert len(encode_pb(node)) == 2 + 38 + 11
    assert decode_pb(encode_pb(node)) == node


# -- round trips -----------------------------------------------------------------------------

_links = st.builds(
    PBLink,
    st.sampled_from([RAW_LINK, CIDV0, compute_link(b"{}", DAG_CBOR), compute_link(b"", DAG_PB)]),
    st.none() | st.text(max_size=12),
    st.none() | st.integers(0, (1 << 64) - 1),
)


@st.composite
def _nodes(draw: st.DrawFn) -> PBNode:
    links = draw(st.lists(_links, max_size=6))
    # Canonical order: stable sort by name bytes, an absent name counting as empty.
    links.sort(key=lambda link: (link.name or "").encode())
    return PBNode(tuple(links), draw(st.none() | st.binary(max_size=300)))


@given(_nodes())
def test_round_trip(node: PBNode) -> None:
    block = encode_pb(node)
    assert decode_pb(block) == node
    assert decode_pb(memoryview(block)) == node
    assert encode_pb(decode_pb(block)) == block


@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_canonically_or_raise_codec_error(data: bytes) -> None:
    try:
        node = decode_pb(data)
    except CodecError:
        return
    assert encode_pb(node) == data


# -- strict decoding: every way to be malformed, with the offset named ------------------------


@pytest.mark.parametrize(
    ("block", "problem", "offset"),
    [
        # wrong wire types
        (b"\x10\x00", "Links has wire type 0", 0),
        (b"\x08\x00", "Data has wire type 0", 0),
        (_link_msg(b"\x08\x00"), "Hash has wire type 0", 2),
        (_link_msg(HASH, b"\x10\x00"), "Name has wire type 0", 40),
        (_link_msg(HASH, b"\x1a\x00"), "Tsize has wire type 2", 40),
        # unknown fields
        (b"\x1a\x00", "unknown PBNode field 3", 0),
        (b"\x02\x00", "unknown PBNode field 0", 0),
        (_link_msg(HASH, b"\x22\x00"), "unknown PBLink field 4", 40),
        (b"\x80\x01\x00", "unknown PBNode field 16", 0),
        # out of order and repeated fields
        (b"\x0a\x00" + _link_msg(HASH), "Links after Data", 2),
        (b"\x0a\x00\x0a\x00", "duplicate PBNode Data", 2),
        (_link_msg(b"\x12\x00", HASH), "Hash after Name", 4),
        (_link_msg(HASH, b"\x18\x01", b"\x12\x00"), "Name after Tsize", 42),
        (_link_msg(HASH, HASH), "duplicate PBLink Hash", 40),
        (_link_msg(HASH, b"\x18\x01\x18\x01"), "duplicate PBLink Tsize", 42),
        # truncated varints and lengths
        (b"\x8a", "truncated varint", 0),
        (b"\x0a", "truncated varint", 1),
        (b"\x0a\x85", "truncated varint", 1),
        (b"\x0a\x05abc", "runs past the end", 2),
        (b"\x12\x30" + HASH, "runs past the end", 2),
        (_link_msg(b"\x0a\x30" + CID_BYTES), "runs past the end", 4),
        (_link_msg(HASH, b"\x18\x80"), "truncated varint", 41),
        # non-canonical or oversized varints
        (b"\x0a\x80\x00", "not minimally encoded", 1),
        (_link_msg(HASH, b"\x18\x81\x00"), "not minimally encoded", 41),
        (_link_msg(HASH, b"\x18" + b"\xff" * 9 + b"\x02"), "exceeds 64 bits", 41),
        (_link_msg(HASH, b"\x18" + b"\xff" * 10 + b"\x01"), "longer than 10 bytes", 41),
        # invalid links
        (_link_msg(), "without the required Hash", 2),
        (_link_msg(b"\x12\x00"), "without the required Hash", 2),
        (_link_msg(b"\x0a\x00"), "Hash is not a CID", 4),
        (_link_msg(b"\x0a\x04\x02\x55\x12\x00"), "Hash is not a CID", 4),
        (_link_msg(b"\x0a\x24" + CID_BYTES[:-1] + b""), "runs past the end", 4),
        (_link_msg(b"\x0a\x23" + CID_BYTES[:-1]), "Hash is not a CID", 4),
        (_link_msg(HASH, b"\x12\x02\xc3\x28"), "Name is not UTF-8", 42),
    ],
)
def test_malformed_blocks_raise_codec_error_with_offset(
    block: bytes, problem: str, offset: int
) -> None:
    with pytest.raises(CodecError, match=f"{problem}.* at byte {offset}$"):
        decode_pb(block)


def test_codec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="DAG-PB"):
        decode_pb(b"\xff")
