"""Writing into and reading from IPFS: a real node's RPC API, our gateway, a local directory.

The node is the js-ipfs node of ``../shared/ipfsnode/`` (Kubo's RPC API, offline, loopback),
started fresh (empty repository) for each write so no variant finds blocks already there.

Part 1, write (each variant 3 times, in alternating order; best and all repeats). A
dataset of incompressible float32 (no compressor: every 512 KiB chunk is one raw block),
Dask-chunked into 8 tasks, written with the threaded scheduler:

* ``rpc-blocks``: ``to_ipld_zarr`` into ``KuboBlockstore(upload="blocks")``: each task
  buffers its blocks and sends them as concurrent ``block/put`` requests;
* ``rpc-car``: the same with ``upload="car"``: one ``dag/import`` CAR per task;
* ``local+import``: ``to_ipld_zarr`` into a local ``DirectoryBlockstore``, then
  ``export_car`` and one ``dag/import`` of the CAR (the baseline: today's path).

MB/s counts chunk data (MB = 10^6); requests are counted by the client (every HTTP request,
retries included). The root must be the same CID in every variant.

Part 2, read. The written dataset, opened (metadata only) and loaded (every chunk) from the
node through RPC, through ``ipldwrite serve`` (our gateway, over the local directory) with
``GatewayBlockstore``, and from the local directory itself: seconds and requests. Then a
dataset of 1,000 small variables, opened through each: requests per open, with the
metadata walk (one CAR for every metadata node) and without (a request per node).

    .venv/bin/python benchmarks/bench_ipfs.py [--quick] [--tmpdir DIR]
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from _common import parse_args, print_table, source_state, write_results
from ipldwrite import open_ipld_zarr, to_ipld_zarr
from ipldwrite.blockstore import DirectoryBlockstore, GatewayBlockstore, KuboBlockstore
from ipldwrite.car import export_car
from ipldwrite.gateway import GatewayServer

REPO = Path(__file__).resolve().parents[1]
KIT = REPO.parent / "shared" / "ipfsnode"
CHUNK = 512 << 10  # bytes per chunk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """A fresh js-ipfs node (empty repository) on free loopback ports."""

    def __init__(self, scratch: Path) -> None:
        target = REPO / ".ipfsnode" / "js"
        subprocess.run(["bash", str(KIT / "setup.sh"), str(target)], check=True)
        port = free_port()
        self.repo = scratch / f"node-{port}"
        out = subprocess.run(
            [
                "bash",
                str(KIT / "start.sh"),
                str(target),
                str(self.repo),
                str(port),
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        self.pid = int(out.stdout.split()[-1])
        self.api = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        time.sleep(1)
        shutil.rmtree(self.repo, ignore_errors=True)


def dataset(megabytes: int) -> xr.Dataset:
    per_chunk = CHUNK // 4 // 256  # rows of 256 float32 per chunk
    rows = max(8, megabytes * 10**6 // (256 * 4) // per_chunk * per_chunk)
    data = np.random.default_rng(0).random((rows, 256), dtype=np.float32)
    ds = xr.Dataset({"v": (("t", "x"), data)}, coords={"t": np.arange(rows)})
    return ds.chunk({"t": -(-rows // 8 // per_chunk) * per_chunk})


def encoding(ds: xr.Dataset) -> dict[str, Any]:
    return {"v": {"chunks": (CHUNK // 4 // 256, 256), "compressors": None}}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def write_rpc(ds: xr.Dataset, scratch: Path, upload: str) -> dict[str, Any]:
    node = Node(scratch)
    try:
        store = KuboBlockstore(node.api, upload=upload)  # type: ignore[arg-type]
        seconds, root = timed(
            lambda: to_ipld_zarr(ds, store, encoding=encoding(ds), progress=False)
        )
        requests = store.requests
        store.close()
    finally:
        node.stop()
    return {"seconds": seconds, "requests": requests, "root": str(root)}


def write_local_then_import(ds: xr.Dataset, scratch: Path) -> dict[str, Any]:
    node = Node(scratch)
    local = scratch / "local"
    shutil.rmtree(local, ignore_errors=True)
    try:
        write_s, root = timed(
            lambda: to_ipld_zarr(
                ds, DirectoryBlockstore(local), encoding=encoding(ds), progress=False
            )
        )
        car = scratch / "dataset.car"
        export_s, _ = timed(lambda: export_car(root, DirectoryBlockstore(local), car))
        store = KuboBlockstore(node.api)
        with open(car, "rb") as f:
            import_s, _ = timed(lambda: store.import_car(f))
        store.pin(root)
    finally:
        node.stop()
    return {
        "seconds": write_s + export_s + import_s,
        "requests": store.requests,
        "root": str(root),
        "write_s": write_s,
        "export_s": export_s,
        "import_s": import_s,
    }


def write_part(
    ds: xr.Dataset, scratch: Path, repeat: int
) -> tuple[list[dict[str, Any]], Path, str]:
    """Each variant ``repeat`` times, in alternating order (drift falls on all of them)."""
    nbytes = int(ds.v.nbytes)
    variants: dict[str, Callable[[], dict[str, Any]]] = {
        "rpc-blocks": lambda: write_rpc(ds, scratch, "blocks"),
        "rpc-car": lambda: write_rpc(ds, scratch, "car"),
        "local+import": lambda: write_local_then_import(ds, scratch),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for r in range(repeat):
        for name in list(variants)[:: 1 if r % 2 == 0 else -1]:
            runs[name].append(variants[name]())
    roots = {run["root"] for done in runs.values() for run in done}
    if len(roots) != 1:
        raise AssertionError(f"the variants wrote different roots: {roots}")
    rows = []
    for name, done in runs.items():
        best = min(run["seconds"] for run in done)
        rows.append(
            {
                "variant": name,
                "best_s": best,
                "repeats_s": [run["seconds"] for run in done],
                "mb_s": nbytes / best / 1e6,
                "requests": done[0]["requests"],
                **{k: v for k, v in done[0].items() if k.endswith("_s") and k != "seconds"},
            }
        )
    return rows, scratch / "local", roots.pop()


def read_part(local: Path, root: str, scratch: Path) -> list[dict[str, Any]]:
    node = Node(scratch)
    rows = []
    try:
        with open(scratch / "dataset.car", "rb") as f:
            KuboBlockstore(node.api).import_car(f)
        with GatewayServer(DirectoryBlockstore(local)) as server:
            sources: dict[str, Callable[[], Any]] = {
                "rpc": lambda: KuboBlockstore(node.api),
                "our-gateway": lambda: GatewayBlockstore(server.url),
                "local-directory": lambda: DirectoryBlockstore(local),
            }
            for name, make in sources.items():
                store = make()
                open_s, ds = timed(lambda store=store: open_ipld_zarr(root, store))
                opened = getattr(store, "requests", None)
                load_s, _ = timed(ds.load)
                rows.append(
                    {
                        "source": name,
                        "open_s": open_s,
                        "load_s": load_s,
                        "requests_open": opened,
                        "requests_total": getattr(store, "requests", None),
                    }
                )
    finally:
        node.stop()
    return rows


def many_variables_part(scratch: Path, count: int) -> list[dict[str, Any]]:
    ds = xr.Dataset({f"v{i:04d}": ("x", np.arange(4.0) + i) for i in range(count)})
    local = scratch / "many"
    root = to_ipld_zarr(ds, DirectoryBlockstore(local), progress=False)
    node = Node(scratch)
    rows = []
    try:
        car = scratch / "many.car"
        export_car(root, DirectoryBlockstore(local), car)
        with open(car, "rb") as f:
            KuboBlockstore(node.api).import_car(f)
        with GatewayServer(DirectoryBlockstore(local)) as server:
            sources: dict[str, Callable[[], Any]] = {
                "rpc": lambda: KuboBlockstore(node.api),
                "our-gateway (walk)": lambda: GatewayBlockstore(server.url),
                "our-gateway (no walk)": lambda: GatewayBlockstore(server.url, subtrees=False),
                "local-directory": lambda: DirectoryBlockstore(local),
            }
            for name, make in sources.items():
                store = make()
                open_s, _ = timed(lambda store=store: open_ipld_zarr(root, store))
                rows.append(
                    {
                        "source": name,
                        "variables": count,
                        "open_s": open_s,
                        "requests_open": getattr(store, "requests", None),
                    }
                )
    finally:
        node.stop()
    return rows


def main() -> None:
    args = parse_args(__doc__ or "", temp_dirs=True)
    megabytes = 20 if args.quick else int(os.environ.get("BENCH_IPFS_MB", "200"))
    variables = 100 if args.quick else 1000
    with tempfile.TemporaryDirectory(prefix="bench-ipfs-", dir=args.tmpdir) as tmp:
        scratch = Path(tmp)
        ds = dataset(megabytes)
        writes, local, root = write_part(ds, scratch, 1 if args.quick else 3)
        print_table(
            f"write {ds.v.nbytes / 1e6:.0f} MB into a fresh node",
            ["variant", "best s", "repeats s", "MB/s", "requests"],
            [
                [
                    r["variant"],
                    f"{r['best_s']:.2f}",
                    " ".join(f"{x:.1f}" for x in r["repeats_s"]),
                    f"{r['mb_s']:.1f}",
                    r["requests"],
                ]
                for r in writes
            ],
        )
        reads = read_part(local, root, scratch)
        print_table(
            "open and load",
            ["source", "open s", "load s", "requests (open)", "requests (all)"],
            [
                [
                    r["source"],
                    f"{r['open_s']:.3f}",
                    f"{r['load_s']:.2f}",
                    r["requests_open"],
                    r["requests_total"],
                ]
                for r in reads
            ],
        )
        many = many_variables_part(scratch, variables)
        print_table(
            f"open a dataset of {variables} variables",
            ["source", "open s", "requests"],
            [[r["source"], f"{r['open_s']:.2f}", r["requests_open"]] for r in many],
        )
    write_results(
        args,
        "ipfs",
        {
            "megabytes": round(ds.v.nbytes / 1e6),
            "chunk_bytes": CHUNK,
            "tasks": 8,
            "variables": variables,
            "node": "js-ipfs 0.66.1 (../shared/ipfsnode)",
            **source_state(),
        },
        {"write": writes, "read": reads, "open_many_variables": many},
    )


if __name__ == "__main__":
    main()
