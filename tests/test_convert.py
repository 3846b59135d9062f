"""The UnixFS view: to_unixfs / from_unixfs, UnixFS directories, and the JS reference.

The JS tests (marked ``js``) check byte-for-byte agreement with ipfs-unixfs-importer over a
plain ``to_zarr`` directory and that ``ipfs-car unpack`` of our CAR is a zarr store xarray
reads; the rest runs without node.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets import climate_cube
from ipldwrite.blockstore import CountingBlockstore, MemoryBlockstore
from ipldwrite.car import export_car
from ipldwrite.convert import from_unixfs, to_unixfs
from ipldwrite.dag import ArrayNode, DatasetReader, NodeIO, iter_entries
from ipldwrite.errors import FormatError, UnsafeEntryNameError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    RAW,
    Link,
    PBLink,
    PBNode,
    compute_link,
    decode_pb,
    encode_pb,
    link_str,
    parse_cid_bytes,
    to_link,
)
from ipldwrite.store import IPLDStore
from ipldwrite.unixfs import (
    SHARD_THRESHOLD,
    DataType,
    DirectoryBuilder,
    UnixFSData,
    decode_unixfs,
    encode_unixfs,
    entry_type,
    hamt_hash,
    iter_directory,
    read_file,
    write_directory,
    write_file,
)
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

REPO = Path(__file__).resolve().parents[1]
JS = REPO / "js"


# -- helpers ------------------------------------------------------------------------------------


class Recording(CountingBlockstore):
    """Counts like CountingBlockstore and remembers every block written."""

    def __init__(self, inner: MemoryBlockstore) -> None:
        super().__init__(inner)
        self.written: set[bytes] = set()

    def _put(self, link: Link, data: bytes) -> None:
        self.written.add(link.cid_bytes)
        super()._put(link, data)

    def reset(self) -> None:
        super().reset()
        self.written.clear()


def codec(raw: bytes) -> int:
    return parse_cid_bytes(raw).codec


def walk_unixfs(store: MemoryBlockstore, root: Link) -> dict[str, Link]:
    """Every file of a UnixFS tree: path → link."""
    files: dict[str, Link] = {}
    stack = [("", root)]
    while stack:
        path, link = stack.pop()
        for name, child in iter_directory(link, store.get):
            key = f"{path}/{name}" if path else name
            if entry_type(child, store.get) in (DataType.DIRECTORY, DataType.HAMT_SHARD):
                stack.append((key, child))
            else:
                files[key] = child
    return files


def chunk_links(store: MemoryBlockstore, root: object) -> dict[str, Link]:
    """Every chunk key of the dataset → its link."""
    out = {}
    for path, node in DatasetReader(store, to_link(root)).walk():
        if isinstance(node, ArrayNode):
            for index, link in iter_entries(NodeIO(store), node.tiling, node.manifest):
                key = node.keys.format(index)
                out[f"{path}/{key}" if path else key] = link
    return out


def dir_node(meta: UnixFSData, links: list[PBLink]) -> bytes:
    return encode_pb(PBNode(tuple(links), encode_unixfs(meta)))


def put_dir(store: MemoryBlockstore, entries: dict[str, Link]) -> Link:
    block = dir_node(
        UnixFSData(DataType.DIRECTORY),
        [PBLink(link, name, 1) for name, link in sorted(entries.items())],
    )
    return store.put(block, DAG_PB)


def v0_tree(store: MemoryBlockstore, files: dict[str, bytes]) -> Link:
    """A unixfs-v0-2015-shaped tree: every file a dag-pb leaf, every CID a CIDv0."""

    def put_v0(block: bytes) -> Link:
        link = Link(bytes((0x12, 0x20)) + compute_link(block).cid_bytes[4:])
        store.put_block(link, block)
        return link

    tree: dict[str, Any] = {}
    for key, data in files.items():
        *dirs, name = key.split("/")
        here = tree
        for part in dirs:
            here = here.setdefault(part, {})
        leaf = UnixFSData(DataType.FILE, data=data, filesize=len(data))
        here[name] = put_v0(encode_pb(PBNode((), encode_unixfs(leaf))))

    def build(node: dict[str, Any]) -> Link:
        links = [
            PBLink(build(v) if isinstance(v, dict) else v, name, 1)
            for name, v in sorted(node.items())
        ]
        return put_v0(dir_node(UnixFSData(DataType.DIRECTORY), links))

    return build(tree)


def key_space(store: MemoryBlockstore, root: object) -> dict[str, bytes]:
    """The zarr key space of a dataset, as the store serves it."""
    zstore = IPLDStore(store, to_link(root))
    keys = zstore.keys_under()
    out = {}
    for key in keys:
        buf = zstore.get_sync(key)
        assert buf is not None
        out[key] = buf.to_bytes()
    return out


# -- the round trip -----------------------------------------------------------------------------

ENCODINGS = [
    {"name": "default", "configuration": {"separator": "/"}},
    {"name": "default", "configuration": {"separator": "."}},
    {"name": "v2", "configuration": {"separator": "."}},
    {"name": "v2", "configuration": {"separator": "/"}},
]


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[MemoryBlockstore, Link]:
    """Random zarr v3 hierarchies: nested groups, 0-d to 3-d arrays, every key encoding,
    missing chunks, attributes in non-canonical order with NaN."""
    store = MemoryBlockstore()
    zstore = IPLDStore(store, read_only=False)
    root = zarr.open_group(zstore, mode="w", zarr_format=3)
    keys = draw(st.lists(st.sampled_from(["zeta", "a", "Mid", "long_name"]), unique=True))
    root.attrs.update({k: i for i, k in enumerate(keys)} | {"missing": float("nan")})
    for i in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["", "g", "g/h"]))
        group = root.require_group(where) if where else root
        ndim = draw(st.integers(0, 3))
        shape = tuple(draw(st.integers(0, 7)) for _ in range(ndim))
        chunks = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
        array = group.create_array(
            f"v{i}",
            shape=shape,
            chunks=chunks,
            dtype=draw(st.sampled_from(["int16", "float32", "uint8"])),
            chunk_key_encoding=draw(st.sampled_from(ENCODINGS)),
            fill_value=0,
        )
        values = (np.arange(int(np.prod(shape))) % 200).astype(array.dtype).reshape(shape)
        if ndim and draw(st.booleans()):
            values[..., : max(1, shape[-1] // 2)] = 0  # some chunks stay unwritten
        array[...] = values
    return store, to_link(zstore.commit())


@settings(deadline=None)
@given(hierarchies())
def test_from_unixfs_of_to_unixfs_is_the_identity(case: tuple[MemoryBlockstore, Link]) -> None:
    store, root = case
    tree = to_unixfs(root, store)
    assert from_unixfs(tree, store) == from_unixfs(str(tree), store)
    assert to_link(from_unixfs(tree, store)) == root
    # The tree's files are exactly the zarr key space, byte for byte, chunks by the same CID.
    files = walk_unixfs(store, to_link(tree))
    expected = key_space(store, root)
    assert set(files) == set(expected)
    chunks = chunk_links(store, root)
    for key, link in files.items():
        assert read_file(link, store.get) == expected[key]
        if key in chunks:
            assert link == chunks[key]


def test_conversion_touches_no_chunk_block() -> None:
    inner = MemoryBlockstore()
    ds = climate_cube(24, 18, 36)
    root = to_ipld_zarr(ds, inner, encoding={"t2m": {"chunks": (1, 18, 36)}})
    chunks = chunk_links(inner, root)
    assert all(codec(x.cid_bytes) == RAW for x in chunks.values())
    store = Recording(inner)
    tree = to_unixfs(root, store)
    assert not any(codec(raw) == RAW for raw in store.read_links)  # no chunk was read...
    new_raw = {raw for raw in store.written if codec(raw) == RAW}
    docs = {link.cid_bytes for key, link in walk_unixfs(inner, to_link(tree)).items()}
    zarr_json = {r for r in new_raw if r in docs}
    assert new_raw == zarr_json  # raw blocks written: the zarr.json files, nothing else
    # Tsizes of chunks (and of the new zarr.json files) came from the blockstore's metadata.
    assert store.sizes["chunk"] == len(chunks) + len(zarr_json)
    for raw in new_raw:
        assert json.loads(inner.get(Link(raw)))["zarr_format"] == 3
    assert {codec(raw) for raw in store.written} <= {RAW, DAG_PB}

    store.reset()
    assert to_link(from_unixfs(tree, store)) == to_link(root)
    read_raw = {raw for raw in store.read_links if codec(raw) == RAW}
    assert read_raw == zarr_json  # only the zarr.json files were read
    assert all(codec(raw) == DAG_CBOR for raw in store.written)  # only dataset nodes written


def test_big_chunks_are_linked_as_the_same_file_dags() -> None:
    inner = MemoryBlockstore()
    ds = xr.Dataset({"big": (("y", "x"), np.random.default_rng(0).random((2, 300_000)))})
    root = to_ipld_zarr(ds, inner, encoding={"big": {"chunks": (1, 300_000), "compressors": None}})
    chunks = chunk_links(inner, root)
    assert {codec(x.cid_bytes) for x in chunks.values()} == {DAG_PB}  # 2.4 MB: file DAGs
    store = Recording(inner)
    tree = to_unixfs(root, store)
    files = walk_unixfs(inner, to_link(tree))
    for key, link in chunks.items():
        assert files[key] == link  # the very same CID, not a copy
    # Of each file DAG only the root was read (for its Tsize), never a leaf.
    leaves = {pb.hash.cid_bytes for x in chunks.values() for pb in decode_pb(inner.get(x)).links}
    assert not leaves & store.read_links
    assert to_link(from_unixfs(tree, store)) == to_link(root)
    xr.testing.assert_identical(open_ipld_zarr(root, inner).load(), ds)


def test_thousands_of_chunks_shard_the_directory_and_round_trip() -> None:
    store = MemoryBlockstore()
    ds = xr.Dataset({"x": ("n", np.arange(6000, dtype="float64"))})
    root = to_ipld_zarr(ds, store, encoding={"x": {"chunks": (1,)}})
    tree = to_link(to_unixfs(root, store))
    entries = dict(iter_directory(tree, store.get))
    array_dir = dict(iter_directory(entries["x"], store.get))
    c_dir = array_dir["c"]
    assert entry_type(c_dir, store.get) == DataType.HAMT_SHARD
    node = decode_pb(store.get(c_dir))
    meta = decode_unixfs(node.data or b"")
    assert (meta.hash_type, meta.fanout) == (0x22, 256)
    assert len(dict(iter_directory(c_dir, store.get))) == 6000
    assert to_link(from_unixfs(tree, store)) == to_link(root)


def test_v0_profile_trees_are_converted_reusing_their_file_dags() -> None:
    store = MemoryBlockstore()
    ds = climate_cube(6, 4, 5)
    original = to_ipld_zarr(ds, store)
    files = key_space(store, original)
    tree = v0_tree(store, files)
    assert tree.cid_bytes[:2] == b"\x12\x20"  # a CIDv0 root, as `ipfs add` without --cid-version
    root = from_unixfs(tree, store)
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)
    leaves = {link.cid_bytes for link in walk_unixfs(store, tree).values()}
    for link in chunk_links(store, root).values():
        assert link.cid_bytes in leaves  # the v0 file node itself, CIDv0 and all
        assert codec(link.cid_bytes) == DAG_PB
    assert from_unixfs(to_unixfs(root, store), store) == root


# -- refusals -----------------------------------------------------------------------------------


def test_non_zarr_trees_are_refused_clearly() -> None:
    store = MemoryBlockstore()
    notes = write_file(b"hello", store.put)
    with pytest.raises(FormatError, match=r"holds no zarr\.json"):
        from_unixfs(put_dir(store, {"notes.txt": notes}), store)
    with pytest.raises(FormatError, match="not a directory"):
        from_unixfs(notes, store)
    group = write_file(b'{"zarr_format": 3, "node_type": "group"}', store.put)
    stray = put_dir(store, {"zarr.json": group, "notes.txt": notes})
    with pytest.raises(FormatError, match=rf"{link_str(stray)} is not a zarr v3 store.*notes\.txt"):
        from_unixfs(stray, store)
    v2 = put_dir(store, {".zgroup": write_file(b'{"zarr_format": 2}', store.put)})
    with pytest.raises(FormatError, match="zarr v2 store"):
        from_unixfs(v2, store)
    symlink = store.put(dir_node(UnixFSData(DataType.SYMLINK, data=b"/etc"), []), DAG_PB)
    with pytest.raises(FormatError, match="symlink"):
        from_unixfs(put_dir(store, {"zarr.json": group, "link": symlink}), store)


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".", "", "/abs"])
def test_unsafe_names_are_refused_naming_directory_and_name(name: str) -> None:
    store = MemoryBlockstore()
    leaf = write_file(b"x", store.put)
    plain = store.put(dir_node(UnixFSData(DataType.DIRECTORY), [PBLink(leaf, name, 1)]), DAG_PB)
    with pytest.raises(UnsafeEntryNameError) as info:
        from_unixfs(put_dir(store, {"sub": plain}), store)
    assert link_str(plain) in str(info.value)
    assert repr(name) in str(info.value)
    # The same name hidden in a HAMT shard's link ("<2 hex digits><name>").
    shard_meta = UnixFSData(DataType.HAMT_SHARD, data=b"\x01", hash_type=0x22, fanout=256)
    shard = store.put(dir_node(shard_meta, [PBLink(leaf, "00" + name, 1)]), DAG_PB)
    # (An empty name there is a bucket link to a sub-shard, which a raw leaf is not.)
    with pytest.raises(FormatError, match=link_str(shard)) as shard_info:
        list(iter_directory(shard, store.get))
    assert isinstance(shard_info.value, UnsafeEntryNameError) == (name != "")
    with pytest.raises(UnsafeEntryNameError):
        DirectoryBuilder(store.put).add(name, leaf, 1)


def test_malformed_shards_are_refused() -> None:
    store = MemoryBlockstore()
    leaf = write_file(b"x", store.put)

    def shard(meta: UnixFSData, name: str) -> Link:
        return store.put(dir_node(meta, [PBLink(leaf, name, 1)]), DAG_PB)

    good = UnixFSData(DataType.HAMT_SHARD, data=b"\x01", hash_type=0x22, fanout=256)
    with pytest.raises(FormatError, match="hash function"):
        list(iter_directory(shard(UnixFSData(DataType.HAMT_SHARD, fanout=256), "00a"), store.get))
    bad_fanout = UnixFSData(DataType.HAMT_SHARD, hash_type=0x22, fanout=100)
    with pytest.raises(FormatError, match="fanout"):
        list(iter_directory(shard(bad_fanout, "00a"), store.get))
    with pytest.raises(FormatError, match="upper-case hex"):
        list(iter_directory(shard(good, "0ga"), store.get))
    with pytest.raises(FormatError, match="not a sub-shard"):
        list(iter_directory(shard(good, "00"), store.get))  # a bucket link to a raw file
    twice = store.put(
        dir_node(UnixFSData(DataType.DIRECTORY), [PBLink(leaf, "a", 1), PBLink(leaf, "a", 1)]),
        DAG_PB,
    )
    with pytest.raises(FormatError, match="two entries named 'a'"):
        list(iter_directory(twice, store.get))


# -- directories --------------------------------------------------------------------------------


def test_hamt_hash_is_the_first_half_of_murmur3_x64_128() -> None:
    # Values printed by @multiformats/murmur3 (murmur3128.encode), the importer's hasher.
    js = {
        "a": "85555565f6597889e6b53a48510e895a",
        "zarr.json": "d71d87efcaa5028cb3db275da9e273e8",
        "héllo✓": "9fb26d14dc0b9ab9caa18a038c547493",
    }
    for name, digest in js.items():
        first = bytes.fromhex(digest)[:8]
        assert [hamt_hash(name.encode(), d) for d in range(8)] == list(first)


def test_builder_shards_on_file_links_only_like_the_importer() -> None:
    store = MemoryBlockstore()
    leaf = write_file(b"x", store.put)
    small = DirectoryBuilder(store.put)
    files = DirectoryBuilder(store.put)
    dirs = DirectoryBuilder(store.put)
    for i in range(6000):
        files.add(f"{i}", leaf, 1)
        dirs.add(f"{i}", leaf, 1, directory=True)
    small.add("a", leaf, 1)
    assert not small.sharded
    assert files.sharded  # ~290 KB of file links: above the 256 KiB threshold
    assert not dirs.sharded  # the importer's estimate ignores subdirectories...
    huge = DirectoryBuilder(store.put)
    for i in range(30_000):
        huge.add(f"{i}", leaf, 1, directory=True)
    assert huge.sharded  # ...unless the plain node could not be stored at all (> 1 MiB)
    with pytest.raises(ValueError, match="two entries"):
        small.add("a", leaf, 1)


# -- against the reference JavaScript implementations -------------------------------------------


def importer_cid(node: str, directory: Path, options: dict[str, Any] | None = None) -> str:
    args = [node, str(JS / "unixfs-dir-cid.mjs"), str(directory)]
    if options is not None:
        args.append(json.dumps(options))
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip()


def importer_blocks(node: str, directory: Path, options: dict[str, Any]) -> dict[str, Any]:
    args = [node, str(JS / "unixfs-dir-cid.mjs"), str(directory), json.dumps(options), "--blocks"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def write_both(ds: xr.Dataset, directory: Path, encoding: dict[str, Any]) -> tuple[Any, Any]:
    """``ds.to_zarr`` into a plain directory, and ``to_ipld_zarr`` of the same: same encoding."""
    ds.to_zarr(directory, zarr_format=3, consolidated=False, mode="w", encoding=encoding)
    store = MemoryBlockstore()
    return store, to_ipld_zarr(ds, store, encoding=encoding)


@pytest.mark.js
def test_importer_root_over_to_zarr_equals_to_unixfs(node: str, tmp_path: Path) -> None:
    ds = climate_cube(12, 18, 36)
    encoding = {"t2m": {"chunks": (2, 9, 36)}, "wind": {"chunks": (3, 1, 18, 36)}}
    store, root = write_both(ds, tmp_path / "plain.zarr", encoding)
    assert str(to_unixfs(root, store)) == importer_cid(node, tmp_path / "plain.zarr")


@pytest.mark.js
@pytest.mark.slow
def test_importer_root_equals_to_unixfs_with_hamt_sharding(node: str, tmp_path: Path) -> None:
    # 6,000 chunk files in x/c (sharded) and 300 chunk subdirectories of one file each in y/c
    # (not sharded: the importer does not count directories), next to small arrays.
    ds = xr.Dataset(
        {
            "x": ("n", np.arange(6000, dtype="float32")),
            "y": (("t", "m"), np.ones((300, 2), dtype="int8")),
        },
        coords={"n": np.arange(6000)},
        attrs={"title": "HAMT check"},
    )
    encoding = {"x": {"chunks": (1,)}, "y": {"chunks": (1, 2)}}
    store, root = write_both(ds, tmp_path / "plain.zarr", encoding)
    tree = to_unixfs(root, store)
    c_dir = dict(iter_directory(dict(iter_directory(to_link(tree), store.get))["x"], store.get))
    assert entry_type(c_dir["c"], store.get) == DataType.HAMT_SHARD
    assert str(tree) == importer_cid(node, tmp_path / "plain.zarr")


def first_sharded_count(name: Callable[[int], str]) -> int:
    """How many one-byte files named ``name(i)`` make the importer shard a directory."""
    builder = DirectoryBuilder(MemoryBlockstore().put)
    leaf = compute_link(b"z")
    n = 0
    while not builder.sharded:
        builder.add(name(n), leaf, 1)
        n += 1
    return n


@pytest.mark.js
@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_sharding_threshold_matches_the_importer(node: str, tmp_path: Path, extra: int) -> None:
    """Directories of files just below, at and just above the importer's threshold."""

    def name(i: int) -> str:
        return f"file-{i:05d}"

    n = first_sharded_count(name) + extra
    assert n * 54 > SHARD_THRESHOLD - 54 * 2  # 54-byte links: about 4,855 of them
    directory = tmp_path / "d"
    directory.mkdir()
    store = MemoryBlockstore()
    entries = []
    for i in range(n):
        (directory / name(i)).write_bytes(b"z")
        entries.append((name(i), write_file(b"z", store.put), 1, False))
    ours, _ = write_directory(entries, store.put)
    assert link_str(ours) == importer_cid(node, directory)
    assert (entry_type(ours, store.get) == DataType.HAMT_SHARD) == (extra >= 0)


@pytest.mark.js
def test_we_read_v0_profile_trees_of_the_importer(node: str, tmp_path: Path) -> None:
    ds = climate_cube(6, 4, 5)
    ds.to_zarr(tmp_path / "plain.zarr", zarr_format=3, consolidated=False, mode="w")
    dump = importer_blocks(node, tmp_path / "plain.zarr", {"profile": "unixfs-v0-2015"})
    assert dump["root"].startswith("Qm")
    store = MemoryBlockstore()
    for cid, b64 in dump["blocks"].items():
        store.put_block(to_link(cid), base64.b64decode(b64))
    root = from_unixfs(dump["root"], store)
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), ds)


@pytest.mark.js
@pytest.mark.parametrize("shape", ["small", "sharded"])
def test_ipfs_car_unpack_of_our_car_is_a_zarr_store(node: str, tmp_path: Path, shape: str) -> None:
    if shape == "small":
        ds = climate_cube(8, 6, 10)
        encoding: dict[str, Any] = {}
    else:
        ds = xr.Dataset({"x": ("n", np.arange(6000, dtype="float64"))})
        encoding = {"x": {"chunks": (1,)}}
    store = MemoryBlockstore()
    tree = to_unixfs(to_ipld_zarr(ds, store, encoding=encoding), store)
    car = tmp_path / "tree.car"
    export_car(tree, store, car)
    # The CAR itself passes the reference readers: every block reachable, hashed, canonical.
    verified = subprocess.run(
        [node, str(JS / "car-verify.mjs"), str(car)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout
    listed = subprocess.run(
        [node, str(JS / "node_modules" / "ipfs-car" / "bin.js"), "blocks", str(car)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    out = tmp_path / "unpacked"
    done = subprocess.run(
        [
            node,
            str(JS / "node_modules" / "ipfs-car" / "bin.js"),
            "unpack",
            str(car),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    xr.testing.assert_identical(xr.open_zarr(out, consolidated=False).load(), ds)
