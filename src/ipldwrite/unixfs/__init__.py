"""UnixFS over the blockstore: files and directories written as the IPFS importers write
them (profile ``unixfs-v1-2025``), files read by range, directories walked."""

from ipldwrite.unixfs._data import DataType, UnixFSData, UnixTime, decode_unixfs, encode_unixfs
from ipldwrite.unixfs._directory import (
    HAMT_FANOUT,
    HAMT_HASH_MURMUR3,
    SHARD_THRESHOLD,
    DirectoryBuilder,
    check_entry_name,
    entry_type,
    file_tsize,
    hamt_hash,
    iter_directory,
    write_directory,
)
from ipldwrite.unixfs._file import file_size, read_file, write_file
from ipldwrite.unixfs._node import decode_node

__all__ = [
    "HAMT_FANOUT",
    "HAMT_HASH_MURMUR3",
    "SHARD_THRESHOLD",
    "DataType",
    "DirectoryBuilder",
    "UnixFSData",
    "UnixTime",
    "check_entry_name",
    "decode_node",
    "decode_unixfs",
    "encode_unixfs",
    "entry_type",
    "file_size",
    "file_tsize",
    "hamt_hash",
    "iter_directory",
    "read_file",
    "write_directory",
    "write_file",
]
