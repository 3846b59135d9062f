"""Fuzzed decoders: every decoder of outside bytes gives a correct decode or a documented
ipldwrite error, never IndexError, RecursionError, a hang or a huge allocation.

The harness is scripts/fuzz.py (run it for >= 100,000 inputs per decoder); here a few
hundred mutated inputs per decoder, Hypothesis-generated ones, and the crashes it found.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipldwrite.dag import ChunkKeys
from ipldwrite.dag._metadata import render_zarr_json, to_ipld_value
from ipldwrite.errors import CarError, CodecError, FormatError, IpldWriteError
from ipldwrite.ipld import decode, decode_pb
from ipldwrite.ipld._car import iter_blocks, read_index, read_layout
from ipldwrite.unixfs import decode_unixfs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import fuzz

SEEDS = fuzz.make_seeds()
TARGETS = {t.name: t for t in fuzz.targets(SEEDS)}
POOL = [s for t in TARGETS.values() for s in t.seeds]


def outcome(target: fuzz.Target, data: bytes) -> None:
    exc = fuzz.check_one(target, data)
    if exc is not None:
        raise AssertionError(f"{target.name}: {type(exc).__name__}: {exc} on {data[:64].hex()}")


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_seeds(name: str) -> None:
    result = fuzz.fuzz(TARGETS[name], 250, 30.0, seed=0, pool=POOL)
    assert result.inputs == 250
    assert not result.failures, [f.to_json() for f in result.failures.values()]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_many_mutated_seeds(name: str) -> None:
    result = fuzz.fuzz(TARGETS[name], 20_000, 120.0, seed=7, pool=POOL)
    assert not result.failures, [f.to_json() for f in result.failures.values()]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(TARGETS)), data=st.binary(max_size=300))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    outcome(TARGETS[name], data)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(TARGETS)), seed=st.integers(0, 2**32), rounds=st.integers(1, 8))
def test_hypothesis_driven_mutations(name: str, seed: int, rounds: int) -> None:
    import random

    target = TARGETS[name]
    rng = random.Random(seed)
    data = rng.choice(target.seeds)
    for _ in range(rounds):
        data = fuzz.mutate(rng, data, POOL)
    outcome(target, data)


# -- huge declared lengths allocate nothing -----------------------------------------------------

HUGE = 1 << 60


def test_a_car_header_claiming_2_60_bytes() -> None:
    from ipldwrite.ipld._varint import varint

    with pytest.raises(CarError):
        read_layout(io.BytesIO(varint(HUGE) + b"\xa0"))


def test_a_car_section_claiming_2_60_bytes() -> None:
    from ipldwrite.ipld._varint import varint

    car = SEEDS.car_v1[0]
    f = io.BytesIO(car)
    layout = read_layout(f)
    hostile = car[: layout.payload_offset] + varint(HUGE) + b"\x01\x55"
    f = io.BytesIO(hostile)
    with pytest.raises(CarError):
        list(iter_blocks(f, read_layout(f)))


def test_a_carv2_index_bucket_claiming_2_60_bytes() -> None:
    car = bytearray(SEEDS.car_v2[0])
    f = io.BytesIO(bytes(car))
    layout = read_layout(f)
    assert layout.index_offset is not None
    # MultihashIndexSorted: varint codec (2 bytes), i32 code count, u64 code, i32 width
    # count, then u32 width and the u64 byte length of the bucket.
    at = layout.index_offset + 2 + 4 + 8 + 4 + 4
    car[at : at + 8] = HUGE.to_bytes(8, "little")
    f = io.BytesIO(bytes(car))
    with pytest.raises(CarError):
        read_index(f, read_layout(f))


@pytest.mark.parametrize("head", [b"\x5b", b"\x9b", b"\xbb", b"\x7b"])
def test_dag_cbor_heads_claiming_2_60_items(head: bytes) -> None:
    with pytest.raises(CodecError):
        decode(head + HUGE.to_bytes(8, "big"))


def test_dag_pb_and_unixfs_fields_claiming_2_60_bytes() -> None:
    from ipldwrite.ipld._varint import varint

    with pytest.raises(CodecError):
        decode_pb(b"\x0a" + varint(HUGE))
    with pytest.raises(CodecError):
        decode_unixfs(b"\x08\x02\x12" + varint(HUGE))


# -- what the fuzzer found, pinned --------------------------------------------------------------


def test_deeply_nested_metadata_is_refused_not_a_recursion_error() -> None:
    deep: Any = 0
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(FormatError, match="nested deeper"):
        render_zarr_json({"node_type": "group", "zarr_format": 3, "attributes": {"x": deep}})
    with pytest.raises(FormatError, match="nested deeper"):
        to_ipld_value({"attributes": {"x": deep}}, "zarr.json")


def test_bytes_in_stored_metadata_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="JSON cannot represent"):
        render_zarr_json({"node_type": "group", "zarr_format": 3, "attributes": {"x": b"\x00"}})


def test_a_chunk_key_separator_that_is_not_a_string_is_refused() -> None:
    doc = {
        "shape": [4],
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": ["/"]}},
    }
    with pytest.raises(FormatError, match="separator"):
        ChunkKeys.from_doc(doc, "a")


def test_a_chunk_key_with_thousands_of_digits_is_no_chunk() -> None:
    keys = ChunkKeys((10,), (2,), "default", "/")
    assert keys.parse("c/" + "9" * 5000) is None


def test_only_project_errors_are_allowed() -> None:
    def boom(data: bytes) -> None:
        raise IndexError("x")

    assert isinstance(fuzz.check_one(fuzz.Target("t", boom, []), b""), IndexError)
    assert fuzz.check_one(fuzz.Target("t", decode, []), b"\xff") is None
    assert issubclass(CodecError, IpldWriteError)


@pytest.mark.parametrize("shape", [[2, "mcon"], [2.5], ["4"], [True], [-1], 3])
def test_an_array_shape_that_is_not_sizes_is_refused(shape: Any) -> None:
    doc = {
        "shape": shape,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
    }
    with pytest.raises(FormatError, match="not a list of sizes"):
        ChunkKeys.from_doc(doc, "a")
