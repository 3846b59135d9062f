"""Helia (@helia/http's trustless-gateway block broker, @helia/unixfs) reads from
``ipldwrite serve``: blocks and UnixFS files, each block hashed by Helia before use."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ipldwrite import to_ipld_zarr
from ipldwrite.blockstore import CountingBlockstore, MemoryBlockstore
from ipldwrite.convert import to_unixfs
from ipldwrite.datasets import demo_climate
from ipldwrite.gateway import GatewayServer
from ipldwrite.ipld import link_str, to_link
from ipldwrite.store import IPLDStore

pytestmark = pytest.mark.js

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def helia(gateway: str, requests: list[dict[str, str]]) -> list[Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the JS interoperability checks need Node 20")
    if not (JS_DIR / "node_modules" / "@helia" / "http").is_dir():
        pytest.skip("js/node_modules is missing; run `npm ci` in js/ to enable these checks")
    out = subprocess.run(
        [node, str(JS_DIR / "helia-fetch.mjs"), gateway, json.dumps(requests)],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    return [x if isinstance(x, dict) else base64.b64decode(x) for x in json.loads(out.stdout)]


def test_helia_fetches_our_blocks_and_unixfs_files() -> None:
    blocks = MemoryBlockstore()
    root = to_ipld_zarr(demo_climate(days=5), blocks)
    unixfs = to_unixfs(root, blocks)
    meta = IPLDStore(blocks, root).get_sync("t2m/zarr.json")
    assert meta is not None
    with GatewayServer(blocks) as server:
        got = helia(
            server.url,
            [
                {"kind": "block", "cid": str(root)},
                {"kind": "file", "cid": str(unixfs), "path": "t2m/zarr.json"},
                {"kind": "file", "cid": str(unixfs), "path": "lat/c/0"},
            ],
        )
    assert got[0] == blocks.get(to_link(root))
    assert got[1] == meta.to_bytes()
    lat = IPLDStore(blocks, root).get_sync("lat/c/0")
    assert lat is not None
    assert got[2] == lat.to_bytes()


def test_helia_refuses_a_corrupt_block_from_our_server() -> None:
    blocks = MemoryBlockstore()
    good = blocks.put(b"the real block")
    bad = blocks.put(b"a block to tamper with")
    blocks._blocks[bad.cid_bytes] = b"tampered bytes"
    counting = CountingBlockstore(blocks)
    with GatewayServer(counting) as server:
        answers = helia(
            server.url,
            [{"kind": "block", "cid": link_str(bad)}, {"kind": "block", "cid": link_str(good)}],
        )
    assert counting.reads["chunk"] >= 2  # the tampered bytes were sent, and refused
    assert isinstance(answers[0], dict)
    assert "Failed to load block" in answers[0]["error"]
    assert answers[1] == b"the real block"
