"""UnixFS files over the blockstore: written as the IPFS importers write them, read by range."""

from ipldwrite.unixfs._data import DataType, UnixFSData, UnixTime, decode_unixfs, encode_unixfs
from ipldwrite.unixfs._file import file_size, read_file, write_file

__all__ = [
    "DataType",
    "UnixFSData",
    "UnixTime",
    "decode_unixfs",
    "encode_unixfs",
    "file_size",
    "read_file",
    "write_file",
]
