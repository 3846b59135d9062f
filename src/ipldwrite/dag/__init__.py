"""The zarr-on-IPLD data model: group and array nodes, the chunk manifest, traversal.

The format is specified in docs/spec.md; this package is its reference implementation.
"""

from ipldwrite.dag._chunks import chunk_size, read_chunk, write_chunk
from ipldwrite.dag._commit import ArrayInDataset, commit_changes
from ipldwrite.dag._lru import LRU
from ipldwrite.dag._manifest import NodeIO, Source, assemble, iter_entries, lookup, read_region
from ipldwrite.dag._merge import merge_datasets
from ipldwrite.dag._metadata import ChunkKeys, render_zarr_json
from ipldwrite.dag._nodes import FORMAT_VERSION, ArrayNode, GroupNode, Node
from ipldwrite.dag._tiling import Tiling
from ipldwrite.dag._tree import (
    DatasetReader,
    join_path,
    load_node,
    parent_of,
    write_node,
    write_tree,
)

__all__ = [
    "FORMAT_VERSION",
    "LRU",
    "ArrayInDataset",
    "ArrayNode",
    "ChunkKeys",
    "DatasetReader",
    "GroupNode",
    "Node",
    "NodeIO",
    "Source",
    "Tiling",
    "assemble",
    "chunk_size",
    "commit_changes",
    "iter_entries",
    "join_path",
    "load_node",
    "lookup",
    "merge_datasets",
    "parent_of",
    "read_chunk",
    "read_region",
    "render_zarr_json",
    "write_chunk",
    "write_node",
    "write_tree",
]
