"""CAR export, import and verification, and the CAR blockstore.

The CARv2 index layout is checked against a reader written here from go-car's description
(not against our own decoder), and everything we write is read back by the reference
JavaScript implementations in the tests marked ``js``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import threading
import tracemalloc
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID

from blockstore_conformance import BlockstoreTests, sample_blocks
from ipldwrite.blockstore import Blockstore, CarBlockstore, MemoryBlockstore
from ipldwrite.car import CarReport, export_car, import_car, verify_car
from ipldwrite.errors import (
    BlockNotFoundError,
    BlockTooLargeError,
    CarError,
    CorruptBlockError,
    ReadOnlyError,
    TruncatedCarError,
)
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    RAW,
    Link,
    PBLink,
    PBNode,
    compute_link,
    encode,
    encode_pb,
    link_str,
    links_of,
    read_varint,
    to_link,
    varint,
)
from ipldwrite.ipld._car import (
    INDEX_SORTED,
    PRAGMA,
    CarWriter,
    encode_multihash_index,
    iter_sections,
    multihash_of,
    read_layout,
)

REPO = Path(__file__).resolve().parents[1]
JS = REPO / "js"


# -- helpers ----------------------------------------------------------------------------------


def write_car(
    path: Path, roots: list[Link], blocks: Iterable[tuple[Link, bytes]], version: int = 1
) -> Path:
    """A CAR holding exactly ``blocks`` in the given order: no walking, no checks."""
    with open(path, "wb") as f:
        writer = CarWriter(f, roots, version=version)
        for link, data in blocks:
            writer.add(link, data)
        writer.finish()
    return path


def put(store: Blockstore, value: object) -> Link:
    return store.put(encode(value), DAG_CBOR)


def mixed_dag(store: Blockstore) -> Link:
    """raw, dag-cbor and dag-pb blocks, shared children and an identity CID with a link."""
    leaves = [store.put(bytes([i]) * (50 + i)) for i in range(6)]
    empty = store.put(b"")  # the empty raw block: a section holding a CID and no data
    file_node = encode_pb(
        PBNode(
            links=tuple(PBLink(x, None, 50 + i) for i, x in enumerate(leaves[:3])),
            data=b"\x08\x02",
        )
    )
    pb = store.put(file_node, DAG_PB)
    inline_value = encode({"leaf": leaves[5]})
    inline = Link(b"\x01\x71\x00" + varint(len(inline_value)) + inline_value)  # identity CID
    shared = put(store, {"leaves": leaves[2:5], "empty": empty})
    left = put(store, {"shared": shared, "pb": pb})
    right = put(store, {"shared": shared, "inline": inline, "first": leaves[0]})
    return put(store, {"left": left, "right": right, "name": "root"})


def preorder(store: Blockstore, root: Link) -> list[Link]:
    """The expected order: a plain recursive depth-first pre-order, identity CIDs skipped."""
    seen: set[bytes] = set()
    out: list[Link] = []

    def visit(link: Link) -> None:
        if link.cid_bytes in seen:
            return
        seen.add(link.cid_bytes)
        if multihash_of(link)[0] != 0:
            out.append(link)
        for child in links_of(link, store.get(link)):
            visit(child)

    visit(root)
    return out


def file_order(path: Path) -> list[Link]:
    with open(path, "rb") as f:
        return [s.link for s in iter_sections(f, read_layout(f))]


def section_boundaries(path: Path) -> set[int]:
    with open(path, "rb") as f:
        layout = read_layout(f)
        ends = {s.data_offset + s.data_length for s in iter_sections(f, layout)}
        return ends | {layout.sections_offset}


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def compose_v2(payload: bytes, index: bytes | None, characteristics: bytes = bytes(16)) -> bytes:
    """A CARv2 assembled by hand around a CARv1 payload and optional index bytes."""
    data_offset = len(PRAGMA) + 40
    index_offset = data_offset + len(payload) if index is not None else 0
    header = characteristics + struct.pack("<QQQ", data_offset, len(payload), index_offset)
    return PRAGMA + header + payload + (index or b"")


def v1_payload(roots: list[Link], blocks: list[tuple[Link, bytes]]) -> tuple[bytes, list[int]]:
    """A CARv1 in memory and the offset of each block's section."""
    buf = io.BytesIO()
    writer = CarWriter(buf, roots)
    offsets = [writer.add(link, data) for link, data in blocks]
    writer.finish()
    return buf.getvalue(), offsets


def go_car_index(data: bytes) -> list[tuple[int | None, int, bytes, int]]:
    """Parse an index as go-car lays it out: (code, width, digest, offset) per entry.

    Written from go-car's description, independently of ipldwrite's reader.
    """
    pos = 0
    codec = 0
    shift = 0
    while True:  # the codec varint
        byte = data[pos]
        pos += 1
        codec |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    entries: list[tuple[int | None, int, bytes, int]] = []

    def buckets(code: int | None) -> None:
        nonlocal pos
        (count,) = struct.unpack_from("<i", data, pos)
        pos += 4
        widths = []
        for _ in range(count):
            width, length = struct.unpack_from("<IQ", data, pos)
            pos += 12
            widths.append(width)
            digests = []
            for start in range(pos, pos + length, width):
                digest = data[start : start + width - 8]
                (offset,) = struct.unpack_from("<Q", data, start + width - 8)
                entries.append((code, width, digest, offset))
                digests.append(digest)
            assert digests == sorted(digests), "entries must be sorted by digest"
            pos += length
        assert widths == sorted(widths), "buckets must be ordered by width"

    if codec == 0x0401:
        (codes,) = struct.unpack_from("<i", data, pos)
        pos += 4
        seen_codes = []
        for _ in range(codes):
            (code,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            seen_codes.append(code)
            buckets(code)
        assert seen_codes == sorted(seen_codes), "codes must be ascending"
    else:
        assert codec == 0x0400
        buckets(None)
    assert pos == len(data), "nothing may follow the index"
    return entries


def index_sorted(entries: list[tuple[bytes, int]]) -> bytes:
    """An IndexSorted (0x0400) index, as go-car lays it out, built here by hand."""
    by_width: dict[int, list[tuple[bytes, int]]] = {}
    for digest, offset in entries:
        by_width.setdefault(len(digest) + 8, []).append((digest, offset))
    out = varint(0x0400) + struct.pack("<i", len(by_width))
    for width in sorted(by_width):
        items = sorted(by_width[width])
        out += struct.pack("<IQ", width, width * len(items))
        out += b"".join(d + struct.pack("<Q", o) for d, o in items)
    return out


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the blockstore contract --------------------------------------------------------------------


class _CarBlockstoreTests(BlockstoreTests):
    writable = False
    version: ClassVar[int]

    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: object) -> Blockstore:
        # A CAR names a root; an arbitrary block set has none, so any of its CIDs will do.
        roots = list(blocks)[:1] or [compute_link(b"")]
        path = write_car(
            tmp_path / f"store-v{self.version}.car", roots, blocks.items(), self.version
        )
        return CarBlockstore(path, verify=bool(kwargs.get("verify", False)))

    def corrupt(self, store: Blockstore, link: Link) -> None:
        assert isinstance(store, CarBlockstore)
        place = store._locate(link)
        assert place is not None
        flip(store.path, place[0] + place[1] // 2)


class TestCarBlockstoreV1(_CarBlockstoreTests):
    version = 1


class TestCarBlockstoreV2(_CarBlockstoreTests):
    version = 2


# -- CarBlockstore specifics ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_carblockstore_roots_version_and_index_use(tmp_path: Path, version: int) -> None:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    export_car(root, store, tmp_path / "d.car", version=version)
    car = CarBlockstore(tmp_path / "d.car")
    assert car.roots == [root]
    assert car.version == version
    assert (car._index is not None) == (version == 2)  # CARv2: the file's index, no scan
    assert (car._offsets is None) == (version == 2)
    assert [x.cid_bytes for x in car.iter_links()] == [
        x.cid_bytes for x in file_order(tmp_path / "d.car")
    ]
    for link in preorder(store, root):
        assert car.get(link) == store.get(link)


def test_carblockstore_pickles_small_and_reopens_lazily(tmp_path: Path) -> None:
    blocks = sample_blocks()
    path = write_car(tmp_path / "s.car", list(blocks)[:1], blocks.items())
    store = CarBlockstore(path)
    dumped = pickle.dumps(store)
    assert len(dumped) < 500  # the path, not the offsets
    clone = pickle.loads(dumped)
    assert clone._fd is None  # nothing opened at unpickling
    assert clone == store
    assert all(clone.get(link) == data for link, data in blocks.items())
    clone.close()
    assert clone.get(next(iter(blocks))) == next(iter(blocks.values()))  # reopens


@pytest.mark.parametrize("version", [1, 2])
def test_carblockstore_threads_share_one_descriptor(tmp_path: Path, version: int) -> None:
    blocks: dict[Link, bytes] = {}
    for i in range(200):
        data = os.urandom(100 + i)
        blocks[compute_link(data)] = data
    path = write_car(tmp_path / "t.car", list(blocks)[:1], blocks.items(), version)
    store = CarBlockstore(path, verify=True)
    items = list(blocks.items()) * 5
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda kv: store.get(kv[0]) == kv[1], items))
    assert all(results)


def test_carblockstore_lazy_open_is_thread_safe(tmp_path: Path) -> None:
    blocks = sample_blocks()
    path = write_car(tmp_path / "s.car", list(blocks)[:1], blocks.items())
    clone = pickle.loads(pickle.dumps(CarBlockstore(path)))
    barrier = threading.Barrier(8)

    def first_read(link: Link) -> bytes:
        barrier.wait()
        return clone.get(link)

    link = next(iter(blocks))
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(first_read, [link] * 8)) == {blocks[link]}


def test_carblockstore_refuses_writes_naming_the_fix(tmp_path: Path) -> None:
    blocks = sample_blocks()
    store = CarBlockstore(write_car(tmp_path / "s.car", list(blocks)[:1], blocks.items()))
    store.read_only = False  # even then: the file is never written
    with pytest.raises(ReadOnlyError, match="import the CAR into a writable blockstore"):
        store.put(b"x")


def test_carblockstore_reads_indexsorted(tmp_path: Path) -> None:
    blocks = list(sample_blocks().items())
    payload, offsets = v1_payload([blocks[0][0]], blocks)
    index = index_sorted(
        [(multihash_of(link)[1], o) for (link, _), o in zip(blocks, offsets, strict=True)]
    )
    path = tmp_path / "sorted.car"
    path.write_bytes(compose_v2(payload, index))
    store = CarBlockstore(path)
    assert store._index is not None
    assert store._index.codec == INDEX_SORTED
    assert all(store.get(link) == data for link, data in blocks)
    assert not store.has(compute_link(b"absent"))


def test_carblockstore_scans_without_a_usable_index(tmp_path: Path) -> None:
    blocks = list(sample_blocks().items())
    payload, _ = v1_payload([blocks[0][0]], blocks)
    for name, index in [("none", None), ("unknown-codec", varint(0x0402) + b"\0" * 8)]:
        path = tmp_path / f"{name}.car"
        path.write_bytes(compose_v2(payload, index))
        store = CarBlockstore(path)
        assert store._offsets is not None  # scanned
        assert all(store.get(link) == data for link, data in blocks)


def test_carblockstore_tells_codecs_apart_under_one_multihash(tmp_path: Path) -> None:
    data = encode({"same": "bytes"})
    as_raw, as_cbor = compute_link(data, RAW), compute_link(data, DAG_CBOR)
    as_pb = compute_link(data, DAG_PB)
    for version in (1, 2):
        path = write_car(
            tmp_path / f"c{version}.car", [as_cbor], [(as_raw, data), (as_cbor, data)], version
        )
        store = CarBlockstore(path)
        assert store.get(as_raw) == data
        assert store.get(as_cbor) == data
        assert not store.has(as_pb)  # same digest, but no such block in the CAR


def _wrong_index_car(tmp_path: Path, how: str) -> tuple[Path, Link, int]:
    blocks = list(sample_blocks().items())
    payload, offsets = v1_payload([blocks[0][0]], blocks)
    entries = [(*multihash_of(link), off) for (link, _), off in zip(blocks, offsets, strict=True)]
    victim = 3
    code, digest, _ = entries[victim]
    wrong = {
        "other-section": offsets[victim + 1],  # a section, but of another block
        "mid-section": offsets[victim] + 5,  # not the start of any section
        "past-the-payload": len(payload) + 10,
        "inside-the-header": 1,
    }[how]
    entries[victim] = (code, digest, wrong)
    path = tmp_path / f"wrong-{how}.car"
    path.write_bytes(compose_v2(payload, encode_multihash_index(entries)))
    return path, blocks[victim][0], wrong


@pytest.mark.parametrize(
    "how", ["other-section", "mid-section", "past-the-payload", "inside-the-header"]
)
def test_wrong_index_is_refused_naming_cid_and_offset(tmp_path: Path, how: str) -> None:
    path, link, wrong = _wrong_index_car(tmp_path, how)
    store = CarBlockstore(path)
    with pytest.raises(CarError, match="wrong index") as info:
        store.get(link)
    assert link_str(link) in str(info.value)
    assert f"offset {wrong}" in str(info.value)
    with pytest.raises(CarError, match="wrong index"):
        store.has(link)
    report = verify_car(path)
    assert any("wrong index" in e for e in report.index_errors)
    assert any(link_str(link) in e for e in report.index_errors)  # its real section is unlisted
    assert not report.ok


# -- export ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_export_round_trip_order_and_summary(tmp_path: Path, version: int) -> None:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    store.put(b"not reachable from the root")
    path = tmp_path / "out.car"
    summary = export_car(root, store, path, version=version)
    expected = preorder(store, root)
    written = file_order(path)
    assert [x.cid_bytes for x in written] == [x.cid_bytes for x in expected]
    assert len({x.cid_bytes for x in written}) == len(written)
    assert (summary.root, summary.version, summary.path) == (root, version, path)
    assert summary.blocks == len(expected)
    assert summary.size == path.stat().st_size
    assert summary.data_bytes == sum(len(store.get(x)) for x in expected)
    assert link_str(root) in str(summary)
    report = verify_car(path)
    assert report.ok, report.problems()
    assert report.roots == (root,)
    assert report.blocks == len(expected)
    target = MemoryBlockstore()
    assert to_link(import_car(path, target)) == root
    assert sorted(x.cid_bytes for x in target.iter_links()) == sorted(x.cid_bytes for x in expected)
    assert leftovers(tmp_path) == ["out.car"]


def test_export_accepts_cid_str_and_link(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    as_cid = CID.decode(root.cid_bytes)
    paths = []
    for i, given_root in enumerate([root, link_str(root), as_cid]):
        paths.append(tmp_path / f"{i}.car")
        assert export_car(given_root, store, paths[-1]).root == root
    assert len({p.read_bytes() for p in paths}) == 1


def test_export_is_deterministic_and_v2_wraps_the_v1_bytes(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    export_car(root, store, tmp_path / "a.car")
    export_car(root, store, tmp_path / "b.car")
    export_car(root, store, tmp_path / "c.car", version=2)
    v1 = (tmp_path / "a.car").read_bytes()
    assert v1 == (tmp_path / "b.car").read_bytes()
    v2 = (tmp_path / "c.car").read_bytes()
    assert v2[:11] == PRAGMA
    characteristics, data_offset, data_size, index_offset = struct.unpack_from("<16sQQQ", v2, 11)
    assert characteristics == bytes(16)
    assert (data_offset, data_size, index_offset) == (51, len(v1), 51 + len(v1))
    assert v2[data_offset : data_offset + data_size] == v1


def test_v2_index_matches_go_car_layout(tmp_path: Path) -> None:
    pytest.importorskip("blake3")
    store = MemoryBlockstore()
    blake = MemoryBlockstore(hasher="blake3")
    leaves = [store.put(os.urandom(64)) for _ in range(7)] + [
        blake.put(os.urandom(64)) for _ in range(5)
    ]
    for link in leaves[7:]:
        store.put_block(link, blake.get(link))
    root = put(store, {"leaves": leaves, "identity": Link(b"\x01\x55\x00\x03abc")})
    path = tmp_path / "i.car"
    export_car(root, store, path, version=2)
    data = path.read_bytes()
    _, data_offset, _, index_offset = struct.unpack_from("<16sQQQ", data, 11)
    entries = go_car_index(data[index_offset:])
    sections = {}
    with open(path, "rb") as f:
        layout = read_layout(f)
        for s in iter_sections(f, layout):
            sections[s.offset - data_offset] = s.link
    assert [e[0] for e in entries] == sorted(e[0] for e in entries)  # sha2-256, then blake3
    assert {e[0] for e in entries} == {0x12, 0x1E}
    assert len(entries) == len(sections)  # every block once; identity CIDs never
    for code, width, digest, offset in entries:
        link = sections[offset]  # the offset is a section's start, relative to the payload
        assert multihash_of(link) == (code, digest)
        assert width == len(digest) + 8
        # and at that offset, the section's varint
        length, _ = read_varint(data, data_offset + offset)
        assert length == len(link.cid_bytes) + len(store.get(link))


def test_export_missing_block_names_cid_and_path_and_leaves_nothing(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    gone = compute_link(b"never stored")
    mid = put(store, {"child": gone})
    root = put(store, {"mid": mid})
    target = tmp_path / "out.car"
    for version in (1, 2):
        with pytest.raises(BlockNotFoundError) as info:
            export_car(root, store, target, version=version)
        message = str(info.value)
        assert link_str(gone) in message
        assert f"{link_str(root)} → {link_str(mid)} → {link_str(gone)}" in message
        assert "Nothing was written" in message
        assert info.value.cid == gone
        assert leftovers(tmp_path) == []
    # An existing file at the target survives a failed export untouched.
    target.write_bytes(b"precious")
    with pytest.raises(BlockNotFoundError):
        export_car(root, store, target)
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path) == ["out.car"]


def test_export_refuses_a_corrupt_block(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    leaf = store.put(b"good bytes")
    root = put(store, {"leaf": leaf})
    store._blocks[leaf.cid_bytes] = b"bad bytes"
    with pytest.raises(CorruptBlockError, match=link_str(leaf)):
        export_car(root, store, tmp_path / "x.car")
    assert leftovers(tmp_path) == []


def test_export_cleans_up_on_interrupt(tmp_path: Path) -> None:
    class Interrupting(MemoryBlockstore):
        calls = 0

        def get(self, link: Link) -> bytes:
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().get(link)

    store = Interrupting()
    root = mixed_dag(store)
    with pytest.raises(KeyboardInterrupt):
        export_car(root, store, tmp_path / "x.car")
    assert leftovers(tmp_path) == []


def test_export_bad_arguments(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    with pytest.raises(ValueError, match="version"):
        export_car(root, store, tmp_path / "x.car", version=3)
    with pytest.raises(IsADirectoryError):
        export_car(root, store, tmp_path)
    with pytest.raises(ValueError, match="not a CID"):
        export_car("not-a-cid", store, tmp_path / "x.car")
    assert leftovers(tmp_path) == []


def test_export_deep_chain_needs_no_recursion(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    link = store.put(b"bottom")
    for depth in range(3000):
        link = put(store, {"next": link, "depth": depth})
    summary = export_car(link, store, tmp_path / "deep.car", version=2)
    assert summary.blocks == 3001
    assert verify_car(tmp_path / "deep.car").ok


def test_export_of_an_identity_root(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    leaf = store.put(b"leaf")
    value = encode({"leaf": leaf})
    root = Link(b"\x01\x71\x00" + varint(len(value)) + value)
    summary = export_car(root, store, tmp_path / "id.car")
    assert summary.blocks == 1  # the leaf; the root is its own CID
    assert [x.cid_bytes for x in file_order(tmp_path / "id.car")] == [leaf.cid_bytes]
    report = verify_car(tmp_path / "id.car")
    assert report.ok
    assert report.reachable == 2


@st.composite
def dags(draw: st.DrawFn) -> tuple[MemoryBlockstore, Link]:
    """A random DAG of raw, dag-cbor and dag-pb blocks; node i links only to nodes < i."""
    store = MemoryBlockstore()
    links: list[Link] = []
    for i in range(draw(st.integers(1, 25))):
        kind = "raw" if i == 0 else draw(st.sampled_from(["raw", "cbor", "pb"]))
        if kind == "raw":
            links.append(store.put(draw(st.binary(max_size=300))))
            continue
        children = draw(st.lists(st.integers(0, i - 1), max_size=6))
        if kind == "cbor":
            value = {"c": [links[c] for c in children], "n": draw(st.integers(-5, 5))}
            links.append(put(store, value))
        else:
            node = PBNode(
                links=tuple(PBLink(links[c], f"{k:02d}", 1) for k, c in enumerate(children)),
                data=draw(st.none() | st.binary(max_size=20)),
            )
            links.append(store.put(encode_pb(node), DAG_PB))
    return store, links[-1]


@given(dag=dags(), version=st.sampled_from([1, 2]))
def test_export_import_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, dag: tuple[MemoryBlockstore, Link], version: int
) -> None:
    store, root = dag
    path = tmp_path_factory.mktemp("prop") / "dag.car"
    export_car(root, store, path, version=version)
    expected = preorder(store, root)
    assert [x.cid_bytes for x in file_order(path)] == [x.cid_bytes for x in expected]
    target = MemoryBlockstore()
    assert to_link(import_car(path, target)) == root
    assert {x.cid_bytes: target.get(x) for x in target.iter_links()} == {
        x.cid_bytes: store.get(x) for x in expected
    }
    car = CarBlockstore(path, verify=True)
    assert all(car.get(x) == store.get(x) for x in expected)
    assert verify_car(path).ok


# -- import: refusing bad input --------------------------------------------------------------------


@pytest.fixture
def dag_car(tmp_path: Path) -> tuple[MemoryBlockstore, Link, Path, Path]:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    v1 = export_car(root, store, tmp_path / "v1.car").path
    v2 = export_car(root, store, tmp_path / "v2.car", version=2).path
    return store, root, v1, v2


def test_import_refuses_zero_and_two_roots(tmp_path: Path) -> None:
    a, b = compute_link(b"a"), compute_link(b"b")
    for roots, count in [([], "0 roots"), ([a, b], "2 roots")]:
        path = write_car(tmp_path / "r.car", roots, [(a, b"a"), (b, b"b")])
        target = MemoryBlockstore()
        with pytest.raises(CarError, match=count) as info:
            import_car(path, target)
        assert "exactly one root" in str(info.value)
        assert len(target) == 0
    assert not verify_car(write_car(tmp_path / "r.car", [], [(a, b"a")])).ok


def test_import_corrupt_block_names_cid_and_offset_and_puts_nothing(
    dag_car: tuple[MemoryBlockstore, Link, Path, Path],
) -> None:
    _, _, v1, v2 = dag_car
    for path in (v1, v2):
        with open(path, "rb") as f:
            layout = read_layout(f)
            victim = [s for s in iter_sections(f, layout) if s.data_length > 10][-1]
        flip(path, victim.data_offset + 3)
        target = MemoryBlockstore()
        with pytest.raises(CorruptBlockError) as info:
            import_car(path, target)
        assert link_str(victim.link) in str(info.value)
        assert f"at byte {victim.offset}" in str(info.value)
        assert len(target) == 0  # checked before anything was put
        report = verify_car(path)
        assert [x.cid_bytes for x in report.corrupt] == [victim.link.cid_bytes]
        assert not report.ok
        with pytest.raises(CorruptBlockError, match=link_str(victim.link)):
            CarBlockstore(path, verify=True).get(victim.link)


@pytest.mark.parametrize("version", [1, 2])
def test_truncated_at_every_offset(
    dag_car: tuple[MemoryBlockstore, Link, Path, Path], version: int, tmp_path: Path
) -> None:
    _, root, v1, v2 = dag_car
    full = (v1 if version == 1 else v2).read_bytes()
    boundaries = section_boundaries(v1)  # CARv1: where a cut leaves a shorter, valid CAR
    cut_path = tmp_path / "cut.car"
    for n in range(len(full)):
        cut_path.write_bytes(full[:n])
        if version == 1 and n in boundaries:
            assert to_link(import_car(cut_path, MemoryBlockstore())) == root
            continue
        target = MemoryBlockstore()
        with pytest.raises(TruncatedCarError, match=r"byte \d+") as info:
            import_car(cut_path, target)
        assert len(target) == 0, n
        assert isinstance(info.value, CarError)
        with pytest.raises(TruncatedCarError):
            CarBlockstore(cut_path)
        with pytest.raises(TruncatedCarError):
            verify_car(cut_path)


def test_truncated_v1_reports_the_offsets(tmp_path: Path) -> None:
    blocks = [(compute_link(b"x" * 100), b"x" * 100)]
    path = write_car(tmp_path / "t.car", [blocks[0][0]], blocks)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    section_at = len(data) - 100 - 36 - 2
    with pytest.raises(TruncatedCarError) as info:
        import_car(path, MemoryBlockstore())
    assert f"ends at byte {len(data) - 10}" in str(info.value)
    assert f"section at byte {section_at}" in str(info.value)


GARBAGE = {
    "text": b"hello, this is not a CAR file at all\n" * 20,
    "json": json.dumps({"roots": [], "version": 1}).encode(),
    "random": bytes(range(256)) * 4,
    "ff": b"\xff" * 64,
    "zero-header-length": b"\x00" + b"\x01" * 40,
    "huge-header-length": varint(1 << 40) + b"\0" * 40,
    "not-cbor-header": varint(5) + b"\xff\xff\xff\xff\xff",
    "header-not-a-map": varint(2) + encode([1]) + b"\0",
    "version-3": varint(len(encode({"roots": [], "version": 3})))
    + encode({"roots": [], "version": 3}),
    "roots-not-cids": varint(len(encode({"roots": ["x"], "version": 1})))
    + encode({"roots": ["x"], "version": 1}),
    "noncanonical-varint": b"\x80\x00" + b"\0" * 20,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_is_a_car_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / "garbage.car"
    path.write_bytes(GARBAGE[name])
    target = MemoryBlockstore()
    with pytest.raises(CarError):
        import_car(path, target)
    with pytest.raises(CarError):
        CarBlockstore(path)
    with pytest.raises(CarError):
        verify_car(path)
    assert len(target) == 0


def _v1_with_sections(tmp_path: Path, tail: bytes) -> Path:
    good = compute_link(b"good")
    path = tmp_path / "s.car"
    path.write_bytes(v1_payload([good], [(good, b"good")])[0] + tail)
    return path


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"\x00", "zero-length section"),
        (varint(64 << 20) + b"\0" * 64, "more than 32 MiB"),
        (varint(40) + b"\x02\x55\x12\x20" + b"\0" * 36, "invalid CID"),
        (varint(10) + b"\x01\x55\x12\x20" + b"\0" * 10, "too short for its"),
        (varint(40) + b"\x01\x55\x12\xff" + b"\0" * 36, "does not start with a valid CID"),
    ],
)
def test_bad_sections_name_their_offset(tmp_path: Path, tail: bytes, message: str) -> None:
    path = _v1_with_sections(tmp_path, tail)
    at = len(path.read_bytes()) - len(tail)
    with pytest.raises(CarError, match=message) as info:
        import_car(path, MemoryBlockstore())
    assert f"byte {at}" in str(info.value)


def test_bad_v2_headers(tmp_path: Path) -> None:
    blocks = list(sample_blocks().items())
    payload, _ = v1_payload([blocks[0][0]], blocks)
    path = tmp_path / "h.car"
    good = compose_v2(payload, None)
    cases = {
        "malformed": good[:11] + bytes(16) + struct.pack("<QQQ", 3, len(payload), 0) + payload,
        "overflow": good[:11] + bytes(16) + struct.pack("<QQQ", 1 << 63, 1, 0) + payload,
        "index-in-payload": good[:11]
        + bytes(16)
        + struct.pack("<QQQ", 51, len(payload), 60)
        + payload,
        "nested-v2": compose_v2(compose_v2(payload, None), None),
        "long-pragma": varint(len(encode({"roots": [], "version": 2})))
        + encode({"roots": [], "version": 2})
        + good[11:],
    }
    for name, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(CarError) as info:
            CarBlockstore(path)
        assert not isinstance(info.value, TruncatedCarError), name


def test_import_into_a_read_only_or_small_store_puts_nothing(
    dag_car: tuple[MemoryBlockstore, Link, Path, Path], tmp_path: Path
) -> None:
    _, _, v1, _ = dag_car
    with pytest.raises(ReadOnlyError):
        import_car(v1, CarBlockstore(v1))
    big = os.urandom((256 << 10) + 1)
    small_root = compute_link(b"root")
    path = write_car(
        tmp_path / "big.car", [small_root], [(small_root, b"root"), (compute_link(big), big)]
    )
    target = MemoryBlockstore(max_block_size=256 << 10)
    with pytest.raises(BlockTooLargeError, match="nothing was imported"):
        import_car(path, target)
    assert len(target) == 0


# -- verify ----------------------------------------------------------------------------------------


def test_verify_reports_missing_unreachable_duplicate_and_undecodable(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    gone = store.put(b"left out")
    leaf = store.put(b"leaf")
    garbage = compute_link(b"\xff\xff not cbor", DAG_CBOR)  # hashes fine, cannot be decoded
    root = put(store, {"gone": gone, "leaf": leaf, "garbage": garbage})
    extra = compute_link(b"extra")
    path = write_car(
        tmp_path / "v.car",
        [root],
        [
            (root, store.get(root)),
            (leaf, b"leaf"),
            (garbage, b"\xff\xff not cbor"),
            (extra, b"extra"),
            (leaf, b"leaf"),
        ],
        version=2,
    )
    report = verify_car(path)
    assert isinstance(report, CarReport)
    assert [x.cid_bytes for x in report.missing] == [gone.cid_bytes]
    assert [x.cid_bytes for x in report.unreachable] == [extra.cid_bytes]
    assert report.duplicates == 1
    assert report.blocks == 5
    assert [x.cid_bytes for x, _ in report.undecodable] == [garbage.cid_bytes]
    assert report.corrupt == ()
    assert report.index_errors == ()
    assert report.reachable == 3  # root, leaf, garbage
    problems = "\n".join(report.problems())
    assert f"missing block {link_str(gone)}" in problems
    assert f"unreachable block {link_str(extra)}" in problems
    assert not report.ok


def test_verify_reports_blocks_missing_from_the_index(tmp_path: Path) -> None:
    blocks = list(sample_blocks().items())
    payload, offsets = v1_payload([blocks[-1][0]], blocks)
    entries = [(*multihash_of(link), off) for (link, _), off in zip(blocks, offsets, strict=True)]
    path = tmp_path / "partial.car"
    path.write_bytes(compose_v2(payload, encode_multihash_index(entries[1:])))
    report = verify_car(path)
    assert report.index_errors == (
        f"the index has no entry for block {link_str(blocks[0][0])} at payload offset {offsets[0]}",
    )


# -- streaming -------------------------------------------------------------------------------------


def test_memory_does_not_grow_with_the_car(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    leaves = [store.put(os.urandom(16 << 10)) for _ in range(1200)]  # ~19 MiB of data
    root = put(store, {"leaves": leaves})
    path = tmp_path / "big.car"
    tracemalloc.start()
    try:
        export_car(root, store, path, version=2)
        export_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        import_car(path, _NullStore())
        import_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        verify_car(path)
        verify_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        CarBlockstore(write_car(tmp_path / "v1.car", [root], ((x, store.get(x)) for x in leaves)))
        scan_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert size > 18 << 20
    for peak in (export_peak, import_peak, verify_peak, scan_peak):
        assert peak < 6 << 20, (peak, size)


class _NullStore(MemoryBlockstore):
    """Accepts blocks and forgets them: measures the importer, not the store."""

    def _put(self, link: Link, data: bytes) -> None:
        pass

    def _replace(self, link: Link, data: bytes) -> None:
        pass  # import_car repairs: it replaces damaged copies through here


# -- interoperability with the reference JavaScript implementations --------------------------------


def run_js(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, *args], cwd=JS, capture_output=True, text=True, timeout=120, check=False
    )


def js_verify(node: str, path: Path) -> tuple[int, dict[str, object]]:
    done = run_js(node, str(JS / "car-verify.mjs"), str(path), "--order")
    return done.returncode, json.loads(done.stdout)


@pytest.mark.js
@pytest.mark.parametrize("version", [1, 2])
def test_js_reads_our_cars(node: str, tmp_path: Path, version: int) -> None:
    store = MemoryBlockstore()
    root = mixed_dag(store)
    path = tmp_path / f"ours-v{version}.car"
    export_car(root, store, path, version=version)
    rc, report = js_verify(node, path)
    assert rc == 0, report
    expected = [link_str(x) for x in preorder(store, root)]
    assert report["version"] == version
    assert report["roots"] == [link_str(root)]
    assert report["order"] == expected  # the reference reader sees our depth-first order
    assert report["randomAccess"] == {
        "checked": len(expected),
        "carReaderVersion": version,
        "indexedReaderVersion": version,
    }
    blocks = run_js(node, str(JS / "node_modules" / "ipfs-car" / "bin.js"), "blocks", str(path))
    assert blocks.returncode == 0, blocks.stderr
    assert blocks.stdout.split() == expected
    roots = run_js(node, str(JS / "node_modules" / "ipfs-car" / "bin.js"), "roots", str(path))
    assert roots.returncode == 0, roots.stderr
    assert roots.stdout.split() == [link_str(root)]


@pytest.mark.js
@settings(max_examples=10)  # each example starts node: keep the run short
@given(dag=dags(), version=st.sampled_from([1, 2]))
def test_js_reads_random_dags(
    node: str,
    tmp_path_factory: pytest.TempPathFactory,
    dag: tuple[MemoryBlockstore, Link],
    version: int,
) -> None:
    store, root = dag
    path = tmp_path_factory.mktemp("js") / "dag.car"
    export_car(root, store, path, version=version)
    rc, report = js_verify(node, path)
    assert rc == 0, report
    assert report["order"] == [link_str(x) for x in preorder(store, root)]


@pytest.mark.js
def test_js_checker_catches_what_it_should(node: str, tmp_path: Path) -> None:
    # The checker must fail on bad CARs, or its passing the good ones means nothing.
    store = MemoryBlockstore()
    root = mixed_dag(store)
    path = export_car(root, store, tmp_path / "bad.car").path
    with open(path, "rb") as f:
        victim = [s for s in iter_sections(f, read_layout(f)) if s.data_length > 10][-1]
    flip(path, victim.data_offset + 1)
    rc, report = js_verify(node, path)
    assert rc == 1
    assert report["badHash"] == [link_str(victim.link)]
    extra = compute_link(b"extra")
    noncanonical = compute_link(b"\xa1\x61b\x01\x61a\x02", DAG_CBOR)  # keys out of order
    path = write_car(
        tmp_path / "odd.car", [root], [(extra, b"extra"), (noncanonical, b"\xa1\x61b\x01\x61a\x02")]
    )
    rc, report = js_verify(node, path)
    assert rc == 1
    assert report["missing"] == [link_str(root)]
    assert sorted(report["unreachable"]) == sorted([link_str(extra), link_str(noncanonical)])


@pytest.mark.js
def test_we_read_cars_the_js_tools_write(node: str, tmp_path: Path) -> None:
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("hello\n")
    (source / "sub" / "big.bin").write_bytes(os.urandom(3 << 20))  # several chunks
    out = tmp_path / "packed.car"
    done = run_js(
        node,
        str(JS / "node_modules" / "ipfs-car" / "bin.js"),
        "pack",
        str(source),
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    report = verify_car(out)
    assert report.ok, report.problems()
    target = MemoryBlockstore()
    root = to_link(import_car(out, target))
    assert root == report.roots[0]
    assert len(target) == report.blocks
    car = CarBlockstore(out, verify=True)
    assert all(car.get(x) == target.get(x) for x in target.iter_links())
    # and what we export from it, they read
    again = export_car(root, target, tmp_path / "again.car", version=2).path
    rc, js_report = js_verify(node, again)
    assert rc == 0, js_report
