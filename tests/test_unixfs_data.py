"""The UnixFS Data protobuf message: encode, and strict decode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipldwrite.errors import CodecError
from ipldwrite.unixfs import DataType, UnixFSData, UnixTime, decode_unixfs, encode_unixfs

U64 = st.integers(0, (1 << 64) - 1)

_data = st.builds(
    UnixFSData,
    type=st.sampled_from(DataType),
    data=st.none() | st.binary(max_size=40),
    filesize=st.none() | U64,
    blocksizes=st.lists(U64, max_size=5).map(tuple),
    hash_type=st.none() | U64,
    fanout=st.none() | U64,
    mode=st.none() | st.integers(0, (1 << 32) - 1),
    mtime=st.none()
    | st.builds(
        UnixTime, st.integers(-(1 << 63), (1 << 63) - 1), st.none() | st.integers(0, 999_999_999)
    ),
)


@given(_data)
def test_round_trip(node: UnixFSData) -> None:
    raw = encode_unixfs(node)
    assert decode_unixfs(raw) == node
    assert encode_unixfs(decode_unixfs(raw)) == raw


def test_bytes_match_ipfs_unixfs() -> None:
    # new UnixFS({type: 'file', blockSizes: [1048576n, 1n]}).marshal(), from ipfs-unixfs.
    node = UnixFSData(DataType.FILE, filesize=1048577, blocksizes=(1048576, 1))
    assert encode_unixfs(node).hex() == "0802188180402080804020" + "01"
    assert encode_unixfs(UnixFSData(DataType.DIRECTORY)) == b"\x08\x01"


def test_negative_mtime_seconds_use_twos_complement() -> None:
    # As ipfs-unixfs marshals {type: 'file', mtime: {secs: -1n, nsecs: 5}}.
    raw = encode_unixfs(UnixFSData(DataType.FILE, filesize=0, mtime=UnixTime(-1, 5)))
    assert raw.hex() == "08021800421008" + "ff" * 9 + "011505000000"
    assert decode_unixfs(raw).mtime == UnixTime(-1, 5)


@pytest.mark.parametrize(
    "node",
    [
        UnixFSData(DataType.FILE, filesize=-1),
        UnixFSData(DataType.FILE, blocksizes=(1 << 64,)),
        UnixFSData(DataType.FILE, mode=1 << 32),
        UnixFSData(DataType.FILE, mtime=UnixTime(1 << 63)),
        UnixFSData(DataType.FILE, mtime=UnixTime(0, 1_000_000_000)),
    ],
)
def test_encode_refuses_out_of_range_values(node: UnixFSData) -> None:
    with pytest.raises(CodecError, match="cannot encode UnixFS Data"):
        encode_unixfs(node)


@pytest.mark.parametrize(
    ("raw", "problem", "offset"),
    [
        (b"", "missing the required Type", 0),
        (b"\x12\x00", "missing the required Type", 0),
        (b"\x08\x06", "unknown Type 6", 0),
        (b"\x0a\x00", "Type has wire type 2", 0),
        (b"\x08\x02\x22\x01\x05", "blocksizes has wire type 2", 2),  # packed
        (b"\x08\x02\x48\x00", "unknown field 9", 2),
        (b"\x08\x02\x18\x01\x12\x00", "Data out of order", 4),
        (b"\x08\x02\x08\x02", "Type out of order or repeated", 2),
        (b"\x08\x02\x18\x01\x18\x01", "filesize out of order or repeated", 4),
        (b"\x08\x02\x12\x05ab", "runs past the end", 4),
        (b"\x08\x02\x18", "truncated varint", 3),
        (b"\x08\x02\x18\x80\x00", "not minimally encoded", 3),
        (b"\x08\x02\x38\x80\x80\x80\x80\x10", "mode 4294967296 exceeds uint32", 2),
        (b"\x08\x02\x42\x00", "mtime without the required Seconds", 4),
        (b"\x08\x02\x42\x02\x15\x00", "truncated mtime FractionalNanoseconds", 5),
        (b"\x08\x02\x42\x05\x15\x00\xca\x9a\x3b", "FractionalNanoseconds 1000000000", 5),
        (b"\x08\x02\x42\x07\x15\x01\x00\x00\x00\x08\x01", "unexpected UnixTime key 0x8", 9),
        (b"\x08\x02\x42\x02\x10\x01", "unexpected UnixTime key 0x10", 4),
    ],
)
def test_malformed_data_raises_codec_error_with_offset(
    raw: bytes, problem: str, offset: int
) -> None:
    with pytest.raises(CodecError, match=f"{problem}.* at byte {offset}$"):
        decode_unixfs(raw)


def test_repeated_blocksizes_are_the_one_repeatable_field() -> None:
    assert decode_unixfs(b"\x08\x02\x20\x01\x20\x02").blocksizes == (1, 2)


def test_content_size_is_own_data_plus_blocksizes() -> None:
    assert UnixFSData(DataType.FILE, data=b"abc", blocksizes=(4, 5)).content_size() == 12
    assert UnixFSData(DataType.FILE).content_size() == 0
