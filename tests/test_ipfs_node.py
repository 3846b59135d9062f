"""Against a real, independent IPFS node (js-ipfs with Kubo's RPC API): write, read, pin."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from blockstore_conformance import BlockstoreTests
from ipfs_node import IpfsNode
from ipldwrite import open_ipld_zarr, to_ipld_zarr
from ipldwrite.blockstore import (
    Blockstore,
    GatewayBlockstore,
    KuboBlockstore,
    MemoryBlockstore,
    resolve_blockstore,
)
from ipldwrite.car import export_car, import_car
from ipldwrite.cli import main
from ipldwrite.errors import BlockNotFoundError, BlockTooLargeError, CorruptBlockError, RemoteError
from ipldwrite.gateway import GatewayServer
from ipldwrite.ipld import DAG_CBOR, Link, compute_link, encode, link_str, to_link
from ipldwrite.ops import concat


def small_dataset(days: int = 8) -> xr.Dataset:
    rng = np.random.default_rng(7)
    return xr.Dataset(
        {"t": (("time", "x"), rng.random((days, 50), dtype=np.float32))},
        coords={"time": np.arange(days), "x": np.arange(50.0)},
        attrs={"title": "ipfs test"},
    )


class TestKuboBlockstore(BlockstoreTests):
    supports_listing = False

    @pytest.fixture(autouse=True)
    def _node(self, ipfs_node: IpfsNode) -> None:
        self.api = ipfs_node.api

    def make(self, tmp_path: Path, blocks: dict[Link, bytes], **kwargs: Any) -> Blockstore:
        store = KuboBlockstore(self.api, **kwargs)
        store.put_many(blocks.items())
        return store


def test_url_resolves_to_the_node(ipfs_node: IpfsNode) -> None:
    store = resolve_blockstore(ipfs_node.api + "/api/v0/")
    assert isinstance(store, KuboBlockstore)
    assert store.url == ipfs_node.api
    assert pickle.loads(pickle.dumps(store)) == store


@pytest.mark.slow
def test_distributed_write_into_the_node_gives_the_local_root(
    ipfs_node: IpfsNode, client: Any
) -> None:
    ds = small_dataset(12).chunk({"time": 3})
    local = to_ipld_zarr(ds, MemoryBlockstore(), encoding={"t": {"chunks": (3, 50)}})
    root = to_ipld_zarr(ds, ipfs_node.api, client=client, encoding={"t": {"chunks": (3, 50)}})
    assert root == local
    node = KuboBlockstore(ipfs_node.api)
    node.pin(root)  # the node walks every block of the DAG: all of them arrived
    xr.testing.assert_identical(open_ipld_zarr(root, ipfs_node.api).load(), ds.compute())
    xr.testing.assert_identical(
        xr.open_dataset(f"ipfs://{root}", engine="ipld", blockstore=ipfs_node.api).load(),
        ds.compute(),
    )


def test_read_back_identical_through_rpc_and_our_gateway(ipfs_node: IpfsNode) -> None:
    ds = small_dataset()
    root = to_ipld_zarr(ds, ipfs_node.api)
    via_rpc = KuboBlockstore(ipfs_node.api)
    xr.testing.assert_identical(open_ipld_zarr(root, via_rpc).load(), ds)
    with GatewayServer(KuboBlockstore(ipfs_node.api)) as server:
        gateway = GatewayBlockstore(server.url)
        xr.testing.assert_identical(open_ipld_zarr(root, gateway).load(), ds)
        assert gateway.cache.misses > 0
        before = gateway.requests
        xr.testing.assert_identical(open_ipld_zarr(root, gateway).load(), ds)
        assert gateway.requests == before  # everything came from the cache the second time
        assert gateway.cache.hits > 0


def test_pin_fails_for_a_dag_with_a_missing_block(ipfs_node: IpfsNode) -> None:
    node = KuboBlockstore(ipfs_node.api)
    absent = compute_link(b"never stored " + str(time.time()).encode())
    parent = node.put(encode({"child": absent}), DAG_CBOR)
    with pytest.raises(RemoteError, match="pin/add") as info:
        node.pin(parent)
    assert info.value.status == 500


def test_missing_block_is_block_not_found_quickly(ipfs_node: IpfsNode) -> None:
    node = KuboBlockstore(ipfs_node.api, timeout=10)
    absent = compute_link(b"absent " + str(time.time()).encode())
    started = time.monotonic()
    with pytest.raises(BlockNotFoundError, match=link_str(absent)) as info:
        node.get(absent)
    assert info.value.cid == absent
    assert time.monotonic() - started < 10
    assert not node.has(absent)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers (a hung node)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_node_that_never_answers_gives_block_not_found_within_the_timeout(
    silent_server: str,
) -> None:
    link = compute_link(b"anything")
    for store in (
        KuboBlockstore(silent_server, timeout=0.3, retries=1),
        GatewayBlockstore(silent_server, timeout=0.3, retries=1),
    ):
        started = time.monotonic()
        with pytest.raises(BlockNotFoundError, match="within the timeout"):
            store.get(link)
        assert time.monotonic() - started < 10
        store.close()


def test_the_node_refuses_a_block_over_1_mib_and_we_never_send_one(ipfs_node: IpfsNode) -> None:
    big = b"\1" * ((1 << 20) + 1)
    refused = httpx.post(
        f"{ipfs_node.api}/api/v0/block/put",
        params={"cid-codec": "raw", "mhtype": "sha2-256"},
        files={"data": ("b", big)},
        timeout=30,
    )
    assert refused.status_code == 500
    node = KuboBlockstore(ipfs_node.api)
    with pytest.raises(BlockTooLargeError, match="above the limit"):
        node.put(big)
    with pytest.raises(BlockTooLargeError):
        node.put_many([(compute_link(b"ok"), b"ok"), (compute_link(big), big)])
    assert node.requests == 0  # refused before any request
    assert not node.has(compute_link(b"ok"))  # a batch is checked whole before sending


def test_import_car_concat_and_the_cli_write_into_the_node(
    ipfs_node: IpfsNode, tmp_path: Path
) -> None:
    local = MemoryBlockstore()
    a = to_ipld_zarr(small_dataset(4), local, encoding={"t": {"chunks": (2, 50)}})
    b_ds = small_dataset(4).assign_coords(time=np.arange(4, 8))
    b = to_ipld_zarr(b_ds, local, encoding={"t": {"chunks": (2, 50)}})
    export_car(a, local, tmp_path / "a.car")
    export_car(b, local, tmp_path / "b.car")
    node = KuboBlockstore(ipfs_node.api)
    assert import_car(tmp_path / "a.car", node) == a
    result = CliRunner().invoke(
        main, ["import-car", str(tmp_path / "b.car"), "--blockstore", ipfs_node.api]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(b)
    joined = concat([a, b], "time", node)
    assert joined == concat([a, b], "time", local)
    node.pin(joined)
    listed = CliRunner().invoke(main, ["ls", str(joined), "-b", ipfs_node.api])
    assert listed.exit_code == 0, listed.output
    assert "t  float32" in listed.output


@pytest.mark.parametrize("mode", ["car", "blocks"])
def test_push_copies_and_pins(ipfs_node: IpfsNode, tmp_path: Path, mode: str) -> None:
    ds = small_dataset().assign_attrs(mode=mode)
    root = to_ipld_zarr(ds, tmp_path / "blocks")
    result = CliRunner().invoke(
        main,
        ["push", str(root), "--to", ipfs_node.api, "--as", mode, "-b", str(tmp_path / "blocks")],
    )
    assert result.exit_code == 0, result.output
    assert "(pinned)" in result.output
    ls = httpx.post(f"{ipfs_node.api}/api/v0/pin/ls", params={"arg": str(root)}, timeout=30)
    assert ls.status_code == 200
    assert str(root) in ls.text
    xr.testing.assert_identical(open_ipld_zarr(root, ipfs_node.api).load(), ds)


# -- a fake server beside the real one, for answers a real node never gives -----------------


def test_a_corrupt_answer_from_a_node_is_refused() -> None:
    link = compute_link(b"the real bytes")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"tampered"))
    store = KuboBlockstore("http://127.0.0.1:9", transport=transport)
    with pytest.raises(CorruptBlockError, match=link_str(link)) as info:
        store.get(link)
    assert info.value.cid == link
    assert len(store.cache) == 0


def test_a_node_that_stores_under_another_cid_is_refused() -> None:
    other = compute_link(b"other")
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json={"Key": link_str(other), "Size": 5})
    )
    store = KuboBlockstore("http://127.0.0.1:9", transport=transport)
    with pytest.raises(RemoteError, match=f"stored a block under {link_str(other)}"):
        store.put(b"mine!")


def test_transient_errors_are_retried() -> None:
    data = b"eventually"
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) < 3 else 200, content=data)

    store = KuboBlockstore("http://127.0.0.1:9", transport=httpx.MockTransport(flaky), retries=3)
    assert store.get(compute_link(data)) == data
    assert len(calls) == 3


def test_dag_cbor_root_of_node_is_our_cid(ipfs_node: IpfsNode) -> None:
    node = KuboBlockstore(ipfs_node.api)
    value = {"hello": "ipfs", "n": 3}
    link = node.put(encode(value), DAG_CBOR)
    stat = httpx.post(
        f"{ipfs_node.api}/api/v0/block/stat", params={"arg": link_str(link)}, timeout=30
    )
    assert to_link(stat.json()["Key"]) == link


def test_ingest_into_the_node_from_the_cli(ipfs_node: IpfsNode, tmp_path: Path) -> None:
    ds = small_dataset(6)
    for i in range(3):
        ds.isel(time=slice(2 * i, 2 * i + 2)).to_netcdf(tmp_path / f"part-{i}.nc")
    args = ["ingest", str(tmp_path / "part-*.nc"), "--concat-dim", "time", "--chunks", "time=2"]
    local = CliRunner().invoke(main, [*args, "-b", str(tmp_path / "blocks")])
    into_node = CliRunner().invoke(main, [*args, "-b", ipfs_node.api])
    assert into_node.exit_code == 0, into_node.output
    assert into_node.output.strip() == local.output.strip()
    root = into_node.output.strip()
    KuboBlockstore(ipfs_node.api).pin(root)
    xr.testing.assert_identical(open_ipld_zarr(root, ipfs_node.api).load(), ds)


def test_threads_racing_on_a_fresh_store_share_one_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ipldwrite.blockstore import _network

    made: list[object] = []
    real = _network.HttpSession

    def counted(**kwargs: Any) -> Any:
        made.append(1)
        time.sleep(0.05)  # widen the window a racing thread would slip through
        return real(**kwargs)

    monkeypatch.setattr(_network, "HttpSession", counted)
    data = b"shared"
    store = KuboBlockstore(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=data)),
    )
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: store.get(compute_link(data)), range(32)))
    assert got == [data] * 32
    assert len(made) == 1
    store.close()


def test_headers_go_with_every_request() -> None:
    seen: list[str | None] = []
    data = b"authorised"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, content=data)

    store = KuboBlockstore(
        "http://127.0.0.1:9",
        headers={"Authorization": "Bearer secret"},
        transport=httpx.MockTransport(handler),
    )
    assert store.get(compute_link(data)) == data
    plain = KuboBlockstore("http://127.0.0.1:9", headers={"Authorization": "Bearer secret"})
    assert pickle.loads(pickle.dumps(plain)).headers == {"Authorization": "Bearer secret"}
    assert seen == ["Bearer secret"]
    store.close()
