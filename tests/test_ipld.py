"""CIDs and the strict DAG-CBOR codec, cross-checked with the reference implementations."""

from __future__ import annotations

import math

import dag_cbor
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import NodeIO, Tiling, assemble
from ipldwrite.errors import CodecError, CorruptBlockError, InvalidCIDError
from ipldwrite.ipld import (
    BLAKE3,
    DAG_CBOR,
    RAW,
    Link,
    check_links,
    compute_link,
    decode,
    encode,
    link_str,
    parse_cid_bytes,
    to_cid,
    to_link,
    verify_block,
)
from ipldwrite.xarray import to_ipld_zarr


def test_known_cids_from_the_specs() -> None:
    assert (
        link_str(compute_link(b"")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    )
    link = compute_link(b"hello", DAG_CBOR)
    assert str(to_cid(link)).startswith("bafyrei")
    assert to_cid(link) == CID.decode(str(to_cid(link)))


def test_blake3_is_optional_and_verified() -> None:
    link = compute_link(b"data", hasher="blake3")
    assert parse_cid_bytes(link.cid_bytes).hash_code == BLAKE3
    verify_block(link, b"data")
    with pytest.raises(CorruptBlockError, match=link_str(link)):
        verify_block(link, b"tampered")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "bafy",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",
        "Qm123",
        "zzzz",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku!",
    ],
)
def test_invalid_cid_strings_are_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidCIDError, match="not a CID"):
        to_link(text)


def test_cids_are_accepted_in_every_public_form() -> None:
    link = compute_link(b"x")
    cid = to_cid(link)
    assert (
        to_link(cid)
        == to_link(str(cid))
        == to_link(bytes(cid))
        == to_link(cid.encode("base58btc"))
        == link
    )
    with pytest.raises(InvalidCIDError, match="expected a CID"):
        to_link(42)


def test_unknown_hashers_and_codes_are_refused() -> None:
    with pytest.raises(InvalidCIDError, match="unknown hasher"):
        compute_link(b"", hasher="md5")
    with pytest.raises(InvalidCIDError, match="multihash code"):
        verify_block(Link(b"\x01\x55\x13\x02ab"), b"ab")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes([0x18, 0x05]), "minimally"),
        (bytes([0xA2, 0x62]) + b"bb" + bytes([0x01, 0x61]) + b"a" + bytes([0x02]), "ordering"),
        (bytes([0xFB]) + bytes.fromhex("7ff8000000000000"), "NaN"),
        (bytes([0xFA, 0, 0, 0, 0]), ""),
        (bytes([0x9F, 0xFF]), ""),
        (bytes([0x01, 0x02]), "end of buffer"),
        (bytes([0xC1, 0x01]), "tag"),
        (bytes([0x82, 0x01]), ""),
        (b"", ""),
    ],
)
def test_non_canonical_or_malformed_dag_cbor_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match="not strict, canonical DAG-CBOR") as info:
        decode(data, what="block X")
    assert reason in str(info.value)
    assert "block X" in str(info.value)


def test_invalid_links_inside_blocks_are_caught() -> None:
    value = decode(bytes([0xD8, 0x2A, 0x42, 0x00, 0x01]))
    with pytest.raises(CodecError, match="invalid link"):
        check_links(value)


def test_nan_and_huge_integers_cannot_be_encoded() -> None:
    for bad in (math.nan, math.inf, 2**64, {1: 2}):
        with pytest.raises(CodecError, match="cannot encode"):
            encode(bad)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _to_reference(value: object) -> object:
    if isinstance(value, Link):
        return CID.decode(bytes(value.cid_bytes))
    if isinstance(value, dict):
        return {k: _to_reference(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_reference(v) for v in value]
    return value


@given(json_values)
def test_encoding_is_byte_identical_to_the_reference_package(value: object) -> None:
    assert encode(value) == dag_cbor.encode(_to_reference(value))
    assert decode(encode(value)) == value


def test_every_node_type_matches_the_reference_encoder() -> None:
    store = MemoryBlockstore()
    io = NodeIO(store)
    grid = (9, 5, 70)
    entries = {i: compute_link(str(i).encode()) for i in np.ndindex(*grid) if sum(i) % 3}
    assemble(io, Tiling.for_grid(grid), updates=entries)  # leaves and inner nodes
    root = to_ipld_zarr(
        __import__("datasets").climate_cube(3, 4, 5), store
    )  # group, array nodes, manifests
    kinds = set()
    for link in store.iter_links():
        if link.cid_bytes[1] != DAG_CBOR:
            assert link.cid_bytes[1] in (RAW, 0x70)
            continue
        data = store.get(link)
        ref = dag_cbor.decode(data)
        assert dag_cbor.encode(ref) == data, link_str(link)
        kinds.add(ref.get("type", "group?") if isinstance(ref, dict) else "manifest")
    assert kinds == {"group", "array", "manifest"}
    assert root is not None


def test_identity_and_dag_pb_cids_parse() -> None:
    v0 = CID.decode("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n")
    assert parse_cid_bytes(bytes(v0)).version == 0
    assert to_link(str(v0)).cid_bytes == bytes(v0)
