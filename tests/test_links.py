"""links_of: the links inside a block, by its codec, in a deterministic order."""

from __future__ import annotations

import hashlib

import pytest

from ipldwrite.errors import CodecError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    Link,
    PBLink,
    PBNode,
    compute_link,
    encode,
    encode_pb,
    link_str,
    links_of,
)

A, B, C = (compute_link(bytes([i])) for i in range(3))


def test_raw_blocks_have_no_links() -> None:
    assert links_of(A, b"\x00") == []


def test_dag_pb_links_in_block_order() -> None:
    block = encode_pb(PBNode((PBLink(C, "a"), PBLink(A, "b"), PBLink(C, "c")), b"\x08\x01"))
    assert links_of(compute_link(block, DAG_PB), block) == [C, A, C]


def test_dag_pb_via_cidv0() -> None:
    block = encode_pb(PBNode((PBLink(B, ""),), b"\x08\x02"))
    v0 = Link(b"\x12\x20" + hashlib.sha256(block).digest())
    assert links_of(v0, block) == [B]


def test_dag_cbor_links_depth_first_in_canonical_key_order() -> None:
    value = {"zz": C, "a": [A, {"y": B, "x": [C, 1]}], "b": {"k": A}, "n": None}
    block = encode(value)
    # Canonical key order is length first: a, b, n, zz; inside, x before y.
    assert links_of(compute_link(block, DAG_CBOR), block) == [A, C, B, A, C]


def test_dag_cbor_invalid_link_is_refused() -> None:
    block = encode({"bad": Link(b"\x01\x71\x12\x20" + b"\x00" * 31)})
    with pytest.raises(CodecError, match="invalid link"):
        links_of(compute_link(block, DAG_CBOR), block)


def test_dag_cbor_invalid_link_after_a_valid_one_with_the_same_head() -> None:
    good = compute_link(b"x", DAG_CBOR)
    bad = Link(good.cid_bytes[:4] + b"\x00" * 31)  # same head, one byte short
    block = encode([good, bad])
    with pytest.raises(CodecError, match="invalid link"):
        links_of(compute_link(block, DAG_CBOR), block)


def test_malformed_blocks_raise_codec_error() -> None:
    with pytest.raises(CodecError, match="DAG-PB"):
        links_of(compute_link(b"\xff", DAG_PB), b"\xff")
    with pytest.raises(CodecError, match="DAG-CBOR"):
        links_of(compute_link(b"\xff", DAG_CBOR), b"\xff")


def test_unknown_codec_is_named_with_the_cid() -> None:
    dag_json = Link(b"\x01\xa9\x02\x12\x20" + hashlib.sha256(b"{}").digest())
    with pytest.raises(CodecError, match=rf"{link_str(dag_json)} uses codec 0x129"):
        links_of(dag_json, b"{}")
