"""UnixFS files against the reference implementation, ipfs-unixfs-importer (Helia's importer).

Same bytes and layout options must give the same root CID; and our reader must read the DAGs
the importer writes, including the old unixfs-v0-2015 shape with dag-pb leaves.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.ipld import DAG_PB, RAW, link_str, parse_cid_bytes, to_link, verify_block
from ipldwrite.unixfs import read_file, write_file

pytestmark = pytest.mark.js

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "unixfs-file-cid.mjs"
MIB = 1 << 20

Importer = Callable[..., Any]


@pytest.fixture(scope="module")
def importer(tmp_path_factory: pytest.TempPathFactory) -> Importer:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the JS interoperability checks need Node 20")
    if not (JS_DIR / "node_modules" / "ipfs-unixfs-importer").is_dir():
        pytest.skip("js/node_modules is missing; run `npm ci` in js/ to enable these checks")
    tmp = tmp_path_factory.mktemp("js")

    def run(data: bytes, options: dict[str, Any], *, blocks: bool = False) -> Any:
        path = tmp / "input"
        path.write_bytes(data)
        args = [node, str(SCRIPT), str(path), json.dumps(options)]
        if blocks:
            args.append("--blocks")
        out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
        return json.loads(out.stdout) if blocks else out.stdout.strip()

    return run


V1_2025 = {"profile": "unixfs-v1-2025"}


@pytest.mark.parametrize("size", [0, 1, MIB, MIB + 1, 3 * MIB + MIB // 2])
def test_profile_unixfs_v1_2025(importer: Importer, size: int) -> None:
    data = os.urandom(size)
    ours = write_file(data, MemoryBlockstore().put)
    assert link_str(ours) == importer(data, V1_2025)


@pytest.mark.parametrize(
    ("size", "chunk", "fanout"),
    [
        (50_000, 1024, 4),  # 49 leaves -> 13 -> 4 -> 1: three levels
        (64 * 1024, 1024, 4),  # 64 leaves: a perfectly full tree
        (65 * 1024 + 1, 1024, 4),  # one byte more: a one-link node at each level
        (50_000, 333, 174),
        (20_000, 100, 2),
    ],
)
def test_multi_level_balanced_trees(importer: Importer, size: int, chunk: int, fanout: int) -> None:
    data = os.urandom(size)
    options = {"chunkSize": chunk, "maxChildrenPerNode": fanout, "rawLeaves": True, "cidVersion": 1}
    ours = write_file(data, MemoryBlockstore().put, chunk_size=chunk, max_children=fanout)
    assert link_str(ours) == importer(data, options)


@pytest.mark.parametrize(
    ("options", "leaf_codec"),
    [
        (V1_2025 | {"chunkSize": 1000, "maxChildrenPerNode": 5}, RAW),
        ({"profile": "unixfs-v0-2015", "chunkSize": 1000, "maxChildrenPerNode": 5}, DAG_PB),
        (
            {"rawLeaves": False, "leafType": "raw", "chunkSize": 700, "maxChildrenPerNode": 3},
            DAG_PB,
        ),
    ],
    ids=["v1-raw-leaves", "v0-dag-pb-file-leaves", "dag-pb-raw-type-leaves"],
)
def test_we_read_what_the_importer_writes(
    importer: Importer, options: dict[str, Any], leaf_codec: int
) -> None:
    data = os.urandom(23_456)
    dump = importer(data, options, blocks=True)
    codecs = {parse_cid_bytes(to_link(cid).cid_bytes).codec for cid in dump["blocks"]}
    assert codecs == {leaf_codec, DAG_PB}
    if "v0" in options.get("profile", ""):
        assert dump["root"].startswith("Qm")
    store = MemoryBlockstore()
    for cid, b64 in dump["blocks"].items():
        link, block = to_link(cid), base64.b64decode(b64)
        verify_block(link, block)
        store.put_block(link, block)
    root = to_link(dump["root"])
    assert read_file(root, store.get) == data
    assert read_file(root, store.get, 4321, 17_777) == data[4321:17_777]
