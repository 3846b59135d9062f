"""UnixFS files: the importer's layout, ranged reads, old dag-pb-leaf files, refusals."""

from __future__ import annotations

import array
import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.errors import CodecError, FormatError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    RAW,
    Link,
    PBLink,
    PBNode,
    compute_link,
    decode_pb,
    encode,
    encode_pb,
    link_str,
    parse_cid_bytes,
)
from ipldwrite.unixfs import (
    DataType,
    UnixFSData,
    decode_unixfs,
    encode_unixfs,
    file_size,
    read_file,
    write_file,
)

MIB = 1 << 20
EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


class CountingStore(MemoryBlockstore):
    """A memory blockstore that remembers which blocks were read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[Link] = []

    def get(self, link: Link) -> bytes:
        self.reads.append(link)
        return super().get(link)


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


def check_tree(link: Link, store: MemoryBlockstore) -> tuple[int, int, int]:
    """Verify every node's Tsize and blocksizes; return (tsize, content size, depth)."""
    block = store.get(link)
    if parse_cid_bytes(link.cid_bytes).codec == RAW:
        return len(block), len(block), 0
    node = decode_pb(block)
    assert node.data is not None
    meta = decode_unixfs(node.data)
    assert meta.type == DataType.FILE
    assert meta.data is None
    tsize = len(block)
    depths = set()
    for pb, size in zip(node.links, meta.blocksizes, strict=True):
        assert pb.name == ""
        child_tsize, child_size, child_depth = check_tree(pb.hash, store)
        assert pb.tsize == child_tsize
        assert size == child_size
        tsize += child_tsize
        depths.add(child_depth)
    assert len(depths) == 1, "a balanced tree has all its leaves at one depth"
    assert meta.filesize == sum(meta.blocksizes)
    return tsize, sum(meta.blocksizes), depths.pop() + 1


# -- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 5])
def test_round_trip_default_profile(store: CountingStore, size: int) -> None:
    data = os.urandom(size)
    root = write_file(data, store.put)
    assert read_file(root, store.get) == data
    assert file_size(root, store.get) == size
    if size <= MIB:
        assert root == compute_link(data, RAW)
    else:
        assert parse_cid_bytes(root.cid_bytes).codec == DAG_PB
        _, content, depth = check_tree(root, store)
        assert (content, depth) == (size, 1)


def test_empty_file_is_the_empty_raw_block(store: CountingStore) -> None:
    assert link_str(write_file(b"", store.put)) == EMPTY_RAW


def test_two_chunk_root_bytes(store: CountingStore) -> None:
    data = bytes(MIB + 1)
    root = write_file(data, store.put)
    node = decode_pb(store.get(root))
    leaves = (compute_link(bytes(MIB)), compute_link(b"\x00"))
    assert node == PBNode(
        (PBLink(leaves[0], "", MIB), PBLink(leaves[1], "", 1)),
        encode_unixfs(UnixFSData(DataType.FILE, filesize=MIB + 1, blocksizes=(MIB, 1))),
    )


@pytest.mark.parametrize(
    ("size", "chunk", "fanout", "depth"),
    [
        (100, 4, 3, 3),  # 25 leaves -> 9 -> 3 -> 1
        (27 * 4, 4, 3, 3),  # exactly full: 27 -> 9 -> 3 -> 1
        (28 * 4, 4, 3, 4),  # one leaf more adds a level with a one-link node
        (10, 1, 2, 4),
        (9, 8, 1024, 1),
    ],
)
def test_balanced_layout_levels(
    store: CountingStore, size: int, chunk: int, fanout: int, depth: int
) -> None:
    data = os.urandom(size)
    root = write_file(data, store.put, chunk_size=chunk, max_children=fanout)
    tsize, content, got_depth = check_tree(root, store)
    assert (content, got_depth) == (size, depth)
    assert read_file(root, store.get) == data
    # The root's Tsize is what a parent directory would record; check it against the blocks.
    assert tsize > size


def test_same_bytes_same_root(store: CountingStore) -> None:
    data = os.urandom(5000)
    a = write_file(data, store.put, chunk_size=100, max_children=5)
    b = write_file(bytearray(data), store.put, chunk_size=100, max_children=5)
    c = write_file(memoryview(data), store.put, chunk_size=100, max_children=5)
    assert a == b == c
    assert a != write_file(data, store.put, chunk_size=100, max_children=6)


def test_non_byte_memoryview_is_written_as_its_bytes(store: CountingStore) -> None:
    values = array.array("i", range(1000))
    root = write_file(memoryview(values), store.put, chunk_size=512)
    assert read_file(root, store.get) == values.tobytes()


@pytest.mark.parametrize(("chunk", "fanout"), [(0, 4), (4, 1)])
def test_write_refuses_degenerate_layouts(store: CountingStore, chunk: int, fanout: int) -> None:
    with pytest.raises(ValueError, match=r"chunk must hold|room for 2"):
        write_file(b"abc", store.put, chunk_size=chunk, max_children=fanout)


# -- ranged reads ----------------------------------------------------------------------------

DATA = os.urandom(1000)


@pytest.fixture
def small_tree(store: CountingStore) -> Link:
    return write_file(DATA, store.put, chunk_size=10, max_children=4)


@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, None), (0, 0), (5, 5), (0, 1), (9, 11), (10, 20), (123, 877), (990, 1000), (999, None),
     (1000, None), (5000, 6000), (-10, None), (-995, -3), (500, 100), (0, 10**9)],
)  # fmt: skip
def test_ranges_match_slicing(
    store: CountingStore, small_tree: Link, start: int, stop: int | None
) -> None:
    assert read_file(small_tree, store.get, start, stop) == DATA[start:stop]


@given(st.data())
def test_random_ranges_on_random_layouts(data: st.DataObject) -> None:
    store = MemoryBlockstore()
    size = data.draw(st.integers(0, 3000), label="size")
    content = os.urandom(size)
    chunk = data.draw(st.integers(1, 64), label="chunk")
    fanout = data.draw(st.integers(2, 6), label="fanout")
    root = write_file(content, store.put, chunk_size=chunk, max_children=fanout)
    bound = st.none() | st.integers(-size - 5, size + 5)
    start, stop = data.draw(bound, label="start"), data.draw(bound, label="stop")
    assert read_file(root, store.get, start, stop) == content[start:stop]
    assert file_size(root, store.get) == size


def test_reads_only_the_blocks_on_the_path(store: CountingStore, small_tree: Link) -> None:
    # 100 leaves, fanout 4: depth 4, so a read inside one leaf fetches 4 nodes and 1 leaf.
    store.reads.clear()
    assert read_file(small_tree, store.get, 512, 515) == DATA[512:515]
    assert len(store.reads) == 5
    assert store.reads[-1] == compute_link(DATA[510:520])
    store.reads.clear()
    assert read_file(small_tree, store.get, 505, 525) == DATA[505:525]
    assert [r for r in store.reads if parse_cid_bytes(r.cid_bytes).codec == RAW] == [
        compute_link(DATA[i : i + 10]) for i in (500, 510, 520)
    ]


def test_empty_range_reads_only_the_root(store: CountingStore, small_tree: Link) -> None:
    store.reads.clear()
    assert read_file(small_tree, store.get, 300, 300) == b""
    assert store.reads == [small_tree]


def test_file_size_reads_only_the_root(store: CountingStore, small_tree: Link) -> None:
    store.reads.clear()
    assert file_size(small_tree, store.get) == len(DATA)
    assert store.reads == [small_tree]


# -- files with dag-pb leaves (the unixfs-v0-2015 profile) -----------------------------------


class V0Store(dict[Link, bytes]):
    """Blocks under CIDv0 links, as go-ipfs and the v0 profile write them."""

    def put(self, block: bytes, codec: int) -> Link:
        if codec == DAG_PB:
            link = Link(b"\x12\x20" + hashlib.sha256(block).digest())
        else:
            link = compute_link(block, codec)
        self[link] = block
        return link

    def get(self, link: Link) -> bytes:
        return self[link]


def v0_leaf(store: V0Store, chunk: bytes, leaf_type: DataType = DataType.FILE) -> Link:
    meta = UnixFSData(leaf_type, data=chunk, filesize=len(chunk))
    return store.put(encode_pb(PBNode((), encode_unixfs(meta))), DAG_PB)


def v0_node(store: V0Store, children: list[tuple[Link, int]], data: bytes | None = None) -> Link:
    sizes = tuple(size for _, size in children)
    meta = UnixFSData(
        DataType.FILE, data=data, filesize=len(data or b"") + sum(sizes), blocksizes=sizes
    )
    links = tuple(PBLink(link, "", size + 20) for link, size in children)
    return store.put(encode_pb(PBNode(links, encode_unixfs(meta))), DAG_PB)


@pytest.mark.parametrize("leaf_type", [DataType.FILE, DataType.RAW])
def test_reads_dag_pb_leaf_files(leaf_type: DataType) -> None:
    store = V0Store()
    data = os.urandom(700)
    leaves = [(v0_leaf(store, data[i : i + 100], leaf_type), 100) for i in range(0, 700, 100)]
    mid = [v0_node(store, leaves[:3]), v0_node(store, leaves[3:6]), v0_node(store, leaves[6:])]
    root = v0_node(store, [(mid[0], 300), (mid[1], 300), (mid[2], 100)])
    assert len(root.cid_bytes) == 34
    assert file_size(root, store.get) == 700
    assert read_file(root, store.get) == data
    assert read_file(root, store.get, 250, 610) == data[250:610]
    assert read_file(leaves[2][0], store.get) == data[200:300]


def test_reads_nodes_holding_data_and_children() -> None:
    # Such nodes come from the trickle layout and old go-ipfs: own Data comes first.
    store = V0Store()
    leaf_a, leaf_b = v0_leaf(store, b"bbbb"), store.put(b"cc", RAW)
    root = v0_node(store, [(leaf_a, 4), (leaf_b, 2)], data=b"aaa")
    assert read_file(root, store.get) == b"aaabbbbcc"
    assert read_file(root, store.get, 2, 8) == b"abbbbc"
    assert file_size(root, store.get) == 9


# -- refusals --------------------------------------------------------------------------------


def put_pb(
    store: MemoryBlockstore, meta: UnixFSData | None, links: tuple[PBLink, ...] = ()
) -> Link:
    data = None if meta is None else encode_unixfs(meta)
    return store.put(encode_pb(PBNode(links, data)), DAG_PB)


@pytest.mark.parametrize(
    "kind", [DataType.DIRECTORY, DataType.HAMT_SHARD, DataType.SYMLINK, DataType.METADATA]
)
def test_refuses_non_file_nodes(store: CountingStore, kind: DataType) -> None:
    root = put_pb(store, UnixFSData(kind))
    for read in (read_file, file_size):
        with pytest.raises(FormatError, match=rf"{link_str(root)} is a UnixFS {kind.name.lower()}"):
            read(root, store.get)


def test_refuses_a_directory_below_a_file(store: CountingStore) -> None:
    directory = put_pb(store, UnixFSData(DataType.DIRECTORY))
    root = put_pb(store, UnixFSData(DataType.FILE, blocksizes=(0, 5)), (PBLink(directory, ""),) * 2)
    with pytest.raises(FormatError, match=f"{link_str(directory)} is a UnixFS directory"):
        read_file(root, store.get)


def test_refuses_other_codecs(store: CountingStore) -> None:
    root = store.put(encode({"a": 1}), DAG_CBOR)
    with pytest.raises(FormatError, match=rf"{link_str(root)} is a dag-cbor block"):
        read_file(root, store.get)


def test_refuses_dag_pb_without_unixfs_data(store: CountingStore) -> None:
    root = put_pb(store, None)
    with pytest.raises(FormatError, match=rf"{link_str(root)} is a dag-pb node without UnixFS"):
        file_size(root, store.get)


def test_malformed_blocks_name_the_cid(store: CountingStore) -> None:
    bad_pb = store.put(b"\x0a\x05ab", DAG_PB)
    with pytest.raises(CodecError, match=rf"block {link_str(bad_pb)}: invalid DAG-PB"):
        read_file(bad_pb, store.get)
    bad_unixfs = store.put(encode_pb(PBNode((), b"\x08\x09")), DAG_PB)
    with pytest.raises(CodecError, match=rf"block {link_str(bad_unixfs)}: invalid UnixFS"):
        read_file(bad_unixfs, store.get)


def test_refuses_inconsistent_sizes(store: CountingStore) -> None:
    leaf = store.put(b"abcd", RAW)
    one_link = (PBLink(leaf, "", 4),)
    few_sizes = put_pb(store, UnixFSData(DataType.FILE, blocksizes=()), one_link)
    with pytest.raises(FormatError, match="1 links but 0 blocksizes"):
        read_file(few_sizes, store.get)
    lying_filesize = put_pb(store, UnixFSData(DataType.FILE, filesize=9, blocksizes=(4,)), one_link)
    with pytest.raises(FormatError, match="says filesize 9"):
        file_size(lying_filesize, store.get)
    lying_blocksize = put_pb(store, UnixFSData(DataType.FILE, blocksizes=(5,)), one_link)
    with pytest.raises(FormatError, match=rf"{link_str(leaf)} holds 4 bytes .* say 5"):
        read_file(lying_blocksize, store.get)
