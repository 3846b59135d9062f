"""The byte-level leaf merge agrees with decoding, merging and re-encoding."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipldwrite.dag._leafbytes import merge_leaf_bytes
from ipldwrite.ipld import DAG_CBOR, RAW, Link, compute_link, encode

Entry = Link | None


def leaf(length: int, links: dict[int, Link]) -> list[Entry]:
    return [links.get(i) for i in range(length)]


def union(lists: list[list[Entry]]) -> list[Entry] | None:
    out: list[Entry] = [None] * len(lists[0])
    for entries in lists:
        for i, e in enumerate(entries):
            if e is None:
                continue
            if out[i] is not None and out[i] != e:
                return None
            out[i] = e
    return out


@given(
    st.sampled_from([1, 5, 23, 24, 255, 256, 300, 4096]),
    st.integers(1, 8),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_bytes_merge_equals_the_decoded_merge(
    length: int, parts: int, density: float, seed: int, overlap: bool
) -> None:
    rng = random.Random(seed)
    truth = {
        i: compute_link(f"{seed}/{i}".encode()) for i in range(length) if rng.random() < density
    }
    lists = []
    for _ in range(parts):
        # Disjoint shares, or (overlap) random subsets that agree where they meet.
        mine = {i: v for i, v in truth.items() if rng.random() < (0.5 if overlap else 1 / parts)}
        lists.append(leaf(length, mine))
    lists = [entries for entries in lists if any(e is not None for e in entries)]
    if not lists:
        return
    merged = merge_leaf_bytes([encode(entries) for entries in lists], length)
    expected = union(lists)
    assert expected is not None
    assert merged == encode(expected)


def test_a_conflict_is_left_to_the_general_path() -> None:
    a = leaf(10, {3: compute_link(b"a")})
    b = leaf(10, {3: compute_link(b"b"), 4: compute_link(b"c")})
    assert merge_leaf_bytes([encode(a), encode(b)], 10) is None
    same = leaf(10, {3: compute_link(b"a")})
    assert merge_leaf_bytes([encode(a), encode(same)], 10) == encode(a)


@pytest.mark.parametrize(
    ("entries", "by_bytes"),
    [
        ([compute_link(b"raw", RAW), compute_link(b"x", DAG_CBOR, "blake3"), None], True),
        ([compute_link(b"x"), Link(b"\x01\x55\x00\x03abc"), None], False),  # two sizes
        ([compute_link(b"x"), 7, None], False),
        ([compute_link(b"x"), "f6", None], False),
        ([None, None, None], False),
    ],
    ids=["sha2 and blake3: one size", "identity CID", "an int", "a string", "all null"],
)
def test_anything_but_nulls_and_same_size_links_falls_back(
    entries: list[object], by_bytes: bool
) -> None:
    data = encode(entries)
    assert merge_leaf_bytes([data], len(entries)) == (data if by_bytes else None)


def test_a_link_whose_digest_contains_the_link_header_is_parsed_right() -> None:
    # A CID whose digest bytes contain "d8 2a 58 25 00": a false start inside a link.
    fake = Link(b"\x01\x55\x12\x20" + b"\xd8\x2a\x58\x25\x00" + bytes(27))
    entries: list[Entry] = [None, fake, None, compute_link(b"y")]
    data = encode(entries)
    merged = merge_leaf_bytes([data], 4)
    assert merged in (None, data)  # never a wrong answer


def test_a_wrong_length_falls_back() -> None:
    data = encode(leaf(8, {1: compute_link(b"x")}))
    assert merge_leaf_bytes([data], 9) is None
