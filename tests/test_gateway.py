"""``ipldwrite serve``: the Trustless Gateway responses, our GatewayBlockstore over it, the
block cache, and ipfsspec (a client nobody here wrote) reading the UnixFS view."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr

from blockstore_conformance import BlockstoreTests
from ipldwrite import open_ipld_zarr, to_ipld_zarr
from ipldwrite.blockstore import (
    BlockCache,
    Blockstore,
    DirectoryBlockstore,
    GatewayBlockstore,
    MemoryBlockstore,
    resolve_blockstore,
)
from ipldwrite.convert import to_unixfs
from ipldwrite.errors import BlockNotFoundError, CorruptBlockError, ReadOnlyError
from ipldwrite.gateway import GatewayServer
from ipldwrite.ipld import DAG_CBOR, Link, compute_link, link_str, parse_cid_bytes, to_link
from ipldwrite.ipld._car import iter_blocks, read_layout

EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def dataset(variables: int = 3) -> xr.Dataset:
    rng = np.random.default_rng(3)
    return xr.Dataset(
        {f"v{i}": (("time", "x"), rng.random((6, 40))) for i in range(variables)},
        coords={"time": np.arange(6), "x": np.arange(40)},
    )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GatewayServer, MemoryBlockstore, Link]]:
    blocks = MemoryBlockstore()
    root = Link(bytes(to_ipld_zarr(dataset(), blocks, encoding={"v0": {"chunks": (2, 40)}})))
    with GatewayServer(blocks) as server:
        yield server, blocks, root


def car_links(body: bytes) -> list[Link]:
    f = io.BytesIO(body)
    return [s.link for s, _ in iter_blocks(f, read_layout(f))]


def test_raw_block_response(served: Any) -> None:
    server, blocks, root = served
    r = httpx.get(f"{server.url}/ipfs/{link_str(root)}?format=raw")
    assert r.status_code == 200
    assert r.content == blocks.get(root)
    assert r.headers["content-type"] == "application/vnd.ipld.raw"
    assert "immutable" in r.headers["cache-control"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["etag"]
    by_accept = httpx.get(
        f"{server.url}/ipfs/{link_str(root)}", headers={"Accept": "application/vnd.ipld.raw"}
    )
    assert by_accept.content == r.content
    head = httpx.head(f"{server.url}/ipfs/{link_str(root)}?format=raw")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(r.content))
    assert head.content == b""


def test_missing_and_bad_requests(served: Any) -> None:
    server, _, root = served
    assert httpx.get(f"{server.url}/ipfs/{EMPTY_RAW}?format=raw").status_code == 404
    assert httpx.head(f"{server.url}/ipfs/{EMPTY_RAW}?format=raw").status_code == 404
    assert httpx.get(f"{server.url}/ipfs/{EMPTY_RAW}?format=car").status_code == 404
    assert httpx.get(f"{server.url}/ipfs/not-a-cid?format=raw").status_code == 400
    assert httpx.get(f"{server.url}/ipns/x?format=raw").status_code == 400
    cid = link_str(root)
    assert httpx.get(f"{server.url}/ipfs/{cid}?format=car&dag-scope=most").status_code == 400
    assert httpx.get(f"{server.url}/ipfs/{cid}/x?format=raw").status_code == 400
    # entity-bytes on what is not a file is ignored: the entity of a DAG-CBOR node is itself
    ranged = httpx.get(f"{server.url}/ipfs/{cid}?format=car&entity-bytes=0:9")
    assert ranged.status_code == 200
    assert car_links(ranged.content) == [root]


def test_probe_paths() -> None:
    with GatewayServer(MemoryBlockstore()) as server:
        raw = httpx.get(f"{server.url}/ipfs/bafkqaaa?format=raw")
        assert raw.status_code == 200
        assert raw.content == b""
        car = httpx.get(f"{server.url}/ipfs/bafkqaaa?format=car")
        assert car.status_code == 200
        f = io.BytesIO(car.content)
        assert [link_str(x) for x in read_layout(f).roots] == ["bafkqaaa"]


def test_car_scopes_and_the_metadata_walk(served: Any) -> None:
    server, _, root = served
    url = f"{server.url}/ipfs/{link_str(root)}"
    everything = httpx.get(url, params={"format": "car"})
    assert everything.headers["content-type"].startswith("application/vnd.ipld.car;version=1")
    every = car_links(everything.content)
    assert len(every) == len({x.cid_bytes for x in every})  # dups=n
    assert every[0] == root  # depth first, the root first
    block = car_links(httpx.get(url, params={"format": "car", "dag-scope": "block"}).content)
    assert block == [root]
    walk = car_links(
        httpx.get(
            url, params={"format": "car", "dag-scope": "block", "ipldwrite-walk": "dag-cbor"}
        ).content
    )
    nodes = [x for x in every if parse_cid_bytes(x.cid_bytes).codec == DAG_CBOR]
    assert sorted(x.cid_bytes for x in walk) == sorted(x.cid_bytes for x in nodes)
    assert len(walk) < len(every)  # no chunks


def test_car_paths_prove_the_way(served: Any) -> None:
    server, blocks, root = served
    unixfs = link_str(Link(bytes(to_unixfs(root, blocks))))
    r = httpx.get(
        f"{server.url}/ipfs/{unixfs}/v0/zarr.json", params={"format": "car", "dag-scope": "block"}
    )
    assert r.status_code == 200
    roots = r.headers["x-ipfs-roots"].split(",")
    assert len(roots) == 3
    assert roots[0] == unixfs
    assert len(car_links(r.content)) == 3
    assert (
        httpx.get(f"{server.url}/ipfs/{unixfs}/nope", params={"format": "car"}).status_code == 404
    )
    file = httpx.get(f"{server.url}/ipfs/{unixfs}/v0/zarr.json")
    assert file.status_code == 200
    assert b'"zarr_format": 3' in file.content
    assert httpx.get(f"{server.url}/ipfs/{unixfs}/v0").status_code == 406


class TestGatewayBlockstore(BlockstoreTests):
    writable = False
    supports_listing = False

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        # verify=False: the server hands out what it holds, tampered or not, so that the
        # client's own check is what these tests see.
        self.blocks = MemoryBlockstore(verify=False)
        with GatewayServer(self.blocks) as server:
            self.url = server.url
            yield

    def make(self, tmp_path: Any, blocks: dict[Link, bytes], **kwargs: Any) -> Blockstore:
        self.blocks.put_many(blocks.items())
        kwargs.pop("verify", None)  # a gateway's blocks are always verified
        return GatewayBlockstore(self.url, **kwargs)

    def corrupt(self, store: Blockstore, link: Link) -> None:
        self.blocks._blocks[link.cid_bytes] = b"tampered"

    def test_read_only_refuses_writes(self, tmp_path: Any) -> None:
        store = self.make(tmp_path, {})
        with pytest.raises(ReadOnlyError, match="read-only"):
            store.put(b"nope")


def test_open_takes_few_requests_thanks_to_the_metadata_walk() -> None:
    blocks = MemoryBlockstore()
    ds = xr.Dataset({f"v{i}": ("x", np.arange(4.0) + i) for i in range(200)})
    root = to_ipld_zarr(ds, blocks)
    with GatewayServer(blocks) as server:
        walked = GatewayBlockstore(server.url)
        opened = open_ipld_zarr(root, walked)
        assert len(opened.data_vars) == 200
        assert walked.requests <= 3  # the whole metadata tree came in one CAR
        plain = GatewayBlockstore(server.url, subtrees=False)
        open_ipld_zarr(root, plain)
        assert plain.requests > 200  # one per array node
        xr.testing.assert_identical(opened.load(), ds)


def _mock_gateways(good: bytes, bad: bytes) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "bad.example":
            return httpx.Response(200, content=bad)
        if request.url.host == "gone.example":
            return httpx.Response(404)
        return httpx.Response(200, content=good)

    return httpx.MockTransport(handler)


def test_failover_past_corrupt_and_missing_gateways() -> None:
    data = b"the block"
    link = compute_link(data)
    transport = _mock_gateways(data, b"not the block")
    store = GatewayBlockstore(
        ["http://bad.example", "http://gone.example", "http://good.example"], transport=transport
    )
    assert store.get(link) == data
    assert store.urls[store._first] == "http://good.example"
    only_bad = GatewayBlockstore(["http://bad.example"], transport=transport)
    with pytest.raises(CorruptBlockError, match=r"bad\.example"):
        only_bad.get(link)
    only_gone = GatewayBlockstore(["http://gone.example"], transport=transport)
    with pytest.raises(BlockNotFoundError, match=link_str(link)):
        only_gone.get(link)


def test_gateway_url_scheme() -> None:
    store = resolve_blockstore("gateway+http://127.0.0.1:8080/")
    assert isinstance(store, GatewayBlockstore)
    assert store.urls == ["http://127.0.0.1:8080"]


def test_block_cache_is_bounded_in_bytes_and_counts() -> None:
    cache = BlockCache(max_bytes=10)
    links = [compute_link(bytes([i]) * 4) for i in range(3)]
    for i, link in enumerate(links):
        cache.put(link, bytes([i]) * 4)
    assert cache.bytes == 8  # the oldest went: 3 x 4 > 10
    assert cache.get(links[0]) is None
    assert cache.get(links[2]) == b"\2" * 4
    assert (cache.hits, cache.misses) == (1, 1)
    cache.put(compute_link(b"x" * 11), b"x" * 11)  # bigger than the whole cache: not kept
    assert cache.bytes == 8


# ipfsspec never closes the aiohttp session of the filesystems zarr makes: its own leak,
# collected (and forgiven) here rather than in whatever test runs next.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ipfsspec_reads_the_unixfs_view(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ipfsspec (PyPI) opens the dataset's UnixFS view through our gateway."""
    pytest.importorskip("ipfsspec")
    import fsspec

    server, blocks, root = served
    unixfs = to_unixfs(root, blocks)
    monkeypatch.setenv("IPFS_GATEWAY", server.url)
    fs = fsspec.filesystem("ipfs", skip_instance_cache=True)
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(str(unixfs), detail=False)}
    assert {"zarr.json", "v0", "time"} <= names
    theirs = xr.open_zarr(
        f"ipfs://{unixfs}", consolidated=False, storage_options={"skip_instance_cache": True}
    )
    xr.testing.assert_identical(theirs.load(), open_ipld_zarr(root, blocks).load())
    del theirs, fs
    gc.collect()


def test_the_serve_command(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys
    import time

    root = to_ipld_zarr(dataset(1), tmp_path / "blocks")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(Path(sys.executable).parent / "ipldwrite"), "serve", str(tmp_path / "blocks")]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/ipfs/{root}"
        for _ in range(100):
            try:
                answer = httpx.get(url, params={"format": "raw"})
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.content == DirectoryBlockstore(tmp_path / "blocks").get(to_link(root))
        assert httpx.get(url, params={"format": "car"}).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stderr is not None
        server.stderr.close()


def test_entity_bytes_sends_only_the_blocks_of_the_range() -> None:
    from ipldwrite.unixfs import write_file

    blocks = MemoryBlockstore()
    data = np.random.default_rng(1).bytes(5 << 20)  # five distinct 1 MiB leaves, one node
    file = write_file(data, blocks.put)
    with GatewayServer(blocks) as server:
        url = f"{server.url}/ipfs/{link_str(file)}"

        def leaves(spec: str) -> list[Link]:
            r = httpx.get(url, params={"format": "car", "entity-bytes": spec})
            assert r.status_code == 200, r.text
            got = car_links(r.content)
            assert got[0] == file
            return got[1:]

        assert len(leaves("0:*")) == 5
        assert len(leaves("0:10")) == 1
        assert len(leaves("1048575:1048576")) == 2  # the last byte of one leaf, first of next
        assert len(leaves("-10:*")) == 1
        assert (
            httpx.get(url, params={"format": "car", "entity-bytes": "9999999:*"}).status_code == 400
        )
