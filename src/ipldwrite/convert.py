"""The UnixFS view of a dataset: a zarr store as an IPFS directory tree, and back.

:func:`to_unixfs` writes the directory tree that ``ipfs add -r`` (ipfs-unixfs-importer,
profile ``unixfs-v1-2025``) would make of the zarr store: ``zarr.json`` files and chunk files
under their zarr keys. Chunk files are the very blocks the dataset already links to (a chunk
up to 1 MiB is a raw block, a bigger one a ``unixfs-v1-2025`` file DAG, which is what the
importer makes of the same bytes), so only directory nodes and the small ``zarr.json`` files
are new. :func:`from_unixfs` reads such a tree (ours, or one from ``ipfs add`` /
``ipfs-car pack``) back into a dataset, linking the chunk files as they are. Neither
direction reads or copies chunk data; see docs/spec.md, "UnixFS view".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from multiformats import CID

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import (
    ArrayNode,
    DatasetReader,
    GroupNode,
    NodeIO,
    commit_changes,
    iter_entries,
    join_path,
    render_zarr_json,
)
from ipldwrite.dag._chunks import UNIXFS_LEAF
from ipldwrite.dag._tree import MAX_HIERARCHY_DEPTH, check_depth
from ipldwrite.errors import FormatError
from ipldwrite.ipld import (
    DAG_PB,
    RAW,
    Link,
    PBNode,
    codec_name,
    codec_of,
    link_str,
    to_cid,
    to_link,
)
from ipldwrite.unixfs import (
    DataType,
    DirectoryBuilder,
    UnixFSData,
    decode_node,
    file_tsize,
    iter_directory,
    read_file,
    write_file,
)

__all__ = ["from_unixfs", "to_unixfs"]

# Metadata files of zarr v2 (and of consolidated v2 stores): named in the refusal.
_ZARR_V2_FILES = frozenset({".zarray", ".zgroup", ".zattrs", ".zmetadata"})

# A chunk subtree while it is collected: name → (link, Tsize) for files, or a subtree.
_Tree = dict[str, Any]
Decoded = tuple[PBNode, UnixFSData]
_DIRECTORIES = (DataType.DIRECTORY, DataType.HAMT_SHARD)


def to_unixfs(root: CID | str | Link, blockstore: Blockstore) -> CID:
    """The CID of the UnixFS directory tree of the dataset ``root``.

    Every group and array is a directory holding its ``zarr.json`` (rendered exactly as
    zarr-python writes it) and its members or chunk files, at the paths a zarr store on
    disk has. Directories follow the importer's layout byte for byte, HAMT-sharded where it
    would shard, so the root CID equals what ``ipfs add -r`` of ``ds.to_zarr(dir)`` gives
    with the same zarr-python version, encoding and hash function (sha2-256).

    Reads only group, array and manifest nodes (plus the root node of each chunk bigger than
    1 MiB, whose Tsize it needs); writes only directory nodes and ``zarr.json`` files.
    """
    return to_cid(_UnixFSWriter(blockstore).dataset(to_link(root)))


class _UnixFSWriter:
    def __init__(self, blockstore: Blockstore) -> None:
        self.blockstore = blockstore
        self.io = NodeIO(blockstore)
        self.leaf = min(UNIXFS_LEAF, blockstore.max_block_size)

    def builder(self) -> DirectoryBuilder:
        return DirectoryBuilder(self.blockstore.put, max_block_size=self.blockstore.max_block_size)

    def tsize(self, link: Link) -> int:
        return file_tsize(link, self.blockstore.get, self.blockstore.size)

    def dataset(self, root: Link) -> Link:
        reader = DatasetReader(self.blockstore, root)
        return self.node(reader, "")[0]

    def node(self, reader: DatasetReader, path: str) -> tuple[Link, int]:
        node = reader.node(path)
        assert node is not None  # paths come from the members of nodes just read
        directory = self.builder()
        if node.doc is not None:
            # Same bytes, same CID as the importer's: a raw block up to 1 MiB.
            data = render_zarr_json(node.doc, node.order)
            link = write_file(data, self.blockstore.put, chunk_size=self.leaf)
            directory.add("zarr.json", link, self.tsize(link))
        if isinstance(node, GroupNode):
            # Recursion over groups only: hierarchies are shallow, chunk trees are not walked so.
            for name in sorted(node.members):
                sub, tsize = self.node(reader, join_path(path, name))
                directory.add(name, sub, tsize, directory=True)
        else:
            self.finish_tree(directory, self.chunk_tree(node))
        return directory.finish()

    def chunk_tree(self, node: ArrayNode) -> _Tree:
        # The manifest yields chunks tile by tile, not in key order, so a directory of chunk
        # keys can be revisited: collect the array's keys first (links and sizes only).
        tree: _Tree = {}
        keys = node.keys
        for index, link in iter_entries(self.io, node.tiling, node.manifest):
            *dirs, name = keys.format(index).split("/")
            here = tree
            for part in dirs:
                here = here.setdefault(part, {})
            here[name] = (link, self.tsize(link))
        return tree

    def finish_tree(self, directory: DirectoryBuilder, tree: _Tree) -> None:
        for name, value in tree.items():
            if isinstance(value, dict):
                sub = self.builder()
                self.finish_tree(sub, value)  # depth: the array's number of dimensions
                directory.add(name, *sub.finish(), directory=True)
            else:
                directory.add(name, *value)


def from_unixfs(cid: CID | str | Link, blockstore: Blockstore) -> CID:
    """The dataset whose zarr store is the UnixFS directory tree ``cid``.

    Accepts trees written by :func:`to_unixfs`, ``ipfs add -r`` or ``ipfs-car pack`` of a
    zarr v3 store, with raw leaves (``unixfs-v1-2025``) or dag-pb leaves (the old
    ``unixfs-v0-2015``), plain or HAMT-sharded directories. Chunk files are linked as they
    are, raw block or file DAG, CIDv1 or CIDv0: never read, re-hashed or copied (a dag-pb
    entry's root node is read to tell a file from a directory). Only the ``zarr.json``
    files are read. ``from_unixfs(to_unixfs(r)) == r``.

    Raises :class:`FormatError` for a tree that is not a zarr v3 store (no ``zarr.json``,
    zarr v2 metadata, stray files, symlinks) and :class:`UnsafeEntryNameError` for entry
    names with ``/`` or equal to ``.``, ``..`` or empty; both name the CIDs at fault.
    """
    root = to_link(cid)
    where = f"UnixFS tree {link_str(root)}"
    get = blockstore.get
    root_node = _node(root, get)
    if root_node is None or root_node[1].type not in _DIRECTORIES:
        what = "file" if root_node is None else root_node[1].type.name.lower()
        raise FormatError(
            f"{where} is a UnixFS {what}, not a directory; from_unixfs converts the directory "
            "of a zarr store"
        )
    staged = _stage_tree(root, root_node, get, where)
    if not any(key.rpartition("/")[2] == "zarr.json" for key in staged):
        raise FormatError(
            f"{where} is not a zarr store: it holds no zarr.json (found {len(staged)} other files)"
        )
    try:
        return to_cid(commit_changes(blockstore, None, staged))
    except FormatError as exc:
        raise FormatError(f"{where} is not a zarr v3 store: {exc}") from exc


def _stage_tree(
    root: Link, root_node: Decoded, get: Callable[[Link], bytes], where: str
) -> dict[str, bytes | Link | None]:
    """The zarr key space of the UnixFS directory ``root``: each zarr.json's bytes, each
    other file's link (never read)."""
    staged: dict[str, bytes | Link | None] = {}
    stack: list[tuple[str, Link, Decoded]] = [("", root, root_node)]
    while stack:
        path, directory, decoded = stack.pop()
        for name, child in iter_directory(directory, get, decoded=decoded):
            key = join_path(path, name)
            # Chunk keys add at most 1 + 64 dimensions below the deepest node.
            if key.count("/") > MAX_HIERARCHY_DEPTH + 65:
                check_depth(key, where)
            # A raw block is a file and is not read; a dag-pb node is read once to learn
            # whether it is a directory (and then listed from the same decoding).
            node = _node(child, get)
            kind = DataType.FILE if node is None else node[1].type
            if node is not None and kind in _DIRECTORIES:
                stack.append((key, child, node))
            elif kind not in (DataType.FILE, DataType.RAW):
                raise FormatError(
                    f"{where}: {key!r} ({link_str(child)}) is a UnixFS {kind.name.lower()}; "
                    "a zarr store holds only files and directories"
                )
            elif name == "zarr.json":
                staged[key] = read_file(child, get)
            elif name in _ZARR_V2_FILES:
                raise FormatError(
                    f"{where} holds {key!r}: it is a zarr v2 store. ipldwrite stores zarr v3 "
                    "hierarchies only; convert it with zarr-python (zarr_format=3) first."
                )
            else:
                staged[key] = child  # the chunk file's own CID: nothing read or copied
    return staged


def _node(link: Link, get: Callable[[Link], bytes]) -> Decoded | None:
    """The decoded dag-pb node at ``link``; None for a raw block (file content, not read)."""
    codec = codec_of(link)
    if codec == RAW:
        return None
    if codec != DAG_PB:
        raise FormatError(f"{link_str(link)} is a {codec_name(codec)} block, not UnixFS")
    return decode_node(link, get(link))
