"""The py-hamt baseline of bench_ops.py: join two arrays with ``ShardedZarrStore.graft_store``.

Runs in its own virtual environment, because py-hamt 3.6 pins ``zarr==3.0.9`` and ipldwrite
needs ``zarr>=3.2`` (see benchmarks/README.md); it imports py-hamt and its dependencies only,
never ipldwrite. bench_ops.py starts it as a subprocess and reads one JSON line from stdout.

The workflow is the one py-hamt's tests (``tests/test_sharded_store_grafting.py``) and
dClimate's ETLs use to append a batch: open the existing store from its root CID, grow it
(``resize_store`` and ``resize_variable``), ``graft_store`` the batch at its chunk offset,
``flush``. Only that is timed. The two input stores, ``sharded_zarr_v1`` roots for one
variable ``temp`` of shape (N, 4, 4) in chunks of (1, 4, 4), are built untimed by encoding
their shard lists directly (through py-hamt's own ``set`` a million chunks would take
hours), then checked by reading chunks back through ``ShardedZarrStore``. No IPFS daemon
runs here: the content-addressed store is an in-memory dict keyed by CIDv1 (sha2-256), as
``ShardedZarrStore`` needs CIDs from its store (py-hamt's ``InMemoryCAS`` returns bare
hashes and is refused by it).

    <py-hamt venv>/bin/python benchmarks/_pyhamt_graft.py N_A N_B CHUNKS_PER_SHARD REPEAT
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
import warnings
from typing import Any

import dag_cbor
import zarr.core.buffer
from multiformats import CID
from py_hamt import ShardedZarrStore
from py_hamt.store_httpx import ContentAddressedStore

NY = NX = 4
NAME = "temp"


class MemoryCIDStore(ContentAddressedStore):
    """Blocks in a dict under their CIDv1; counts saves so the benchmark can report writes."""

    def __init__(self) -> None:
        self.blocks: dict[CID, bytes] = {}
        self.saves = 0
        self.new_blocks = 0

    async def save(self, data: bytes, codec: ContentAddressedStore.CodecInput) -> CID:
        return self.put(bytes(data), codec)

    def put(self, data: bytes, codec: str) -> CID:
        cid = CID("base32", 1, codec, ("sha2-256", hashlib.sha256(data).digest()))
        self.saves += 1
        if cid not in self.blocks:
            self.new_blocks += 1
            self.blocks[cid] = data
        return cid

    async def load(
        self,
        id: Any,
        offset: int | None = None,
        length: int | None = None,
        suffix: int | None = None,
    ) -> bytes:
        data = self.blocks[id if isinstance(id, CID) else CID.decode(str(id))]
        if offset is not None:
            return data[offset : None if length is None else offset + length]
        if suffix is not None:
            return data[-suffix:] if suffix else b""
        return data


def zarr_json(n: int) -> bytes:
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [n, NY, NX],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, NY, NX]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0.0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "dimension_names": ["time", "lat", "lon"],
        "attributes": {},
    }
    return json.dumps(doc, indent=2).encode()


def build_store(cas: MemoryCIDStore, n: int, per_shard: int, tag: str) -> str:
    """A sharded_zarr_v1 root over ``n`` chunks, as ``ShardedZarrStore.flush`` writes one."""
    links = [cas.put(f"{tag}-{i}".encode(), "raw") for i in range(n)]
    shards = []
    for start in range(0, n, per_shard):
        shard: list[CID | None] = list(links[start : start + per_shard])
        shard += [None] * (per_shard - len(shard))
        shards.append(cas.put(dag_cbor.encode(shard), "dag-cbor"))
    root = {
        "manifest_version": "sharded_zarr_v1",
        "metadata": {f"{NAME}/zarr.json": cas.put(zarr_json(n), "raw")},
        "chunks": {
            "array_shape": [n, NY, NX],
            "chunk_shape": [1, NY, NX],
            "sharding_config": {"chunks_per_shard": per_shard},
            "shard_cids": shards,
            "primary_array_path": NAME,
        },
    }
    return str(cas.put(dag_cbor.encode(root), "dag-cbor"))


async def read_chunk(cas: MemoryCIDStore, root: str, index: int) -> bytes | None:
    store = await ShardedZarrStore.open(cas=cas, read_only=True, root_cid=root)
    proto = zarr.core.buffer.default_buffer_prototype()
    value = await store.get(f"{NAME}/c/{index}/0/0", proto)
    return None if value is None else value.to_bytes()


async def graft(cas: MemoryCIDStore, a: str, b: str, n_a: int, n_b: int) -> str:
    """The timed part: grow A, graft B's chunk pointers after it, flush."""
    target = await ShardedZarrStore.open(cas=cas, read_only=False, root_cid=a)
    await target.resize_store((n_a + n_b, NY, NX))
    await target.resize_variable(NAME, (n_a + n_b, NY, NX))
    await target.graft_store(b, (n_a, 0, 0))
    return await target.flush()


async def main(n_a: int, n_b: int, per_shard: int, repeat: int) -> dict[str, Any]:
    cas = MemoryCIDStore()
    start = time.perf_counter()
    a = build_store(cas, n_a, per_shard, "a")
    b = build_store(cas, n_b, per_shard, "b")
    build_s = time.perf_counter() - start
    for root, n, tag in ((a, n_a, "a"), (b, n_b, "b")):
        for i in (0, n // 2, n - 1):
            assert await read_chunk(cas, root, i) == f"{tag}-{i}".encode(), (tag, i)
    seconds, saves, new_blocks = [], [], []
    joined = ""
    for _ in range(repeat):
        cas.saves = cas.new_blocks = 0
        start = time.perf_counter()
        joined = await graft(cas, a, b, n_a, n_b)
        seconds.append(time.perf_counter() - start)
        saves.append(cas.saves)
        new_blocks.append(cas.new_blocks)
    probes = [0, n_a - 1, n_a, n_a + n_b - 1]
    expected = [b"a-0", f"a-{n_a - 1}".encode(), b"b-0", f"b-{n_b - 1}".encode()]
    verified = [await read_chunk(cas, joined, i) for i in probes] == expected
    return {
        "n_a": n_a,
        "n_b": n_b,
        "chunks_per_shard": per_shard,
        "build_inputs_s": build_s,
        "seconds": seconds,
        "cas_saves": saves,
        "new_blocks_first": new_blocks[0],
        "verified": verified,
    }


if __name__ == "__main__":
    # sharded_zarr_v1 is deprecated in favour of v2, which is grafted the same way.
    warnings.simplefilter("ignore")
    n_a, n_b, per_shard, repeat = (int(v) for v in sys.argv[1:5])
    print(json.dumps(asyncio.run(main(n_a, n_b, per_shard, repeat))))
