"""Object storage: the climate cube written to and read from a local S3 server, four ways.

The S3 server is moto's (``python -m moto.server``), in its own process on 127.0.0.1: a real
HTTP server speaking the S3 protocol, but a single Python process holding every object in
memory, so each request costs it milliseconds of CPU on the same two cores the writers
use. Its numbers measure request counts faithfully and throughput only relative to each
other: a real object store serves requests in parallel at network speed, and the
per-request overhead (which favours routes with fewer, larger requests) is much smaller
there. Every request it answers is counted from its access log.

Writers, on one ``distributed.LocalCluster`` of 2 worker processes x 1 thread, the same
Dask-backed cube (persisted in the workers first, so generation is not timed) with the
same encoding (zarr chunks of one time step, 1,039,680 bytes; zstd level 0):

* ``ipldwrite``: ``to_ipld_zarr`` on ``ObjectStoreBlockstore("s3://…")`` (obstore): one
  object per block, each task's blocks uploaded concurrently when it ends;
* ``ipldwrite unbatched``: the same with ``batch=False`` (one conditional put per block as
  it is written): what the per-task buffer buys;
* ``to_zarr``: ``ds.to_zarr(zarr.storage.ObjectStore(obstore S3Store))`` computed on the
  cluster;
* ``icechunk``: ``to_icechunk`` on ``icechunk.s3_storage(endpoint_url=…, allow_http=True,
  force_path_style=True)`` and one commit (repository created untimed);
* ``task CARs``: ``to_ipld_zarr`` on ``TaskCarBlockstore("s3://…")`` (s3fs), one CAR per
  task, then ``pack_car_directory`` (``ipldwrite pack``), timed apart.

Each write is opened back in this process and loaded whole (Dask threads), timed, with
its requests counted: requests per open are what a reader pays before the first byte of
data. Every route's data is checked against the source. Between routes the server is
reset (its memory freed) and the bucket made again, untimed.

    .venv/bin/python benchmarks/bench_objectstore.py [--quick]
    BENCH_STEPS=240 BENCH_LATENCY_MS=20 .venv/bin/python benchmarks/bench_objectstore.py
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import dask
import dask.array as da
import icechunk
import numpy as np
import xarray as xr
import zarr
from distributed import Client, LocalCluster, wait
from icechunk.xarray import to_icechunk
from obstore.store import S3Store
from zarr.codecs import ZstdCodec

from _common import fmt_ratio, parse_args, print_table, source_state, write_results
from bench_write import climate_cube
from ipldwrite import open_ipld_zarr, to_ipld_zarr
from ipldwrite.blockstore import ObjectStoreBlockstore, TaskCarBlockstore
from ipldwrite.car import pack_car_directory

BUCKET = "ipldwrite-bench"
KEY, SECRET, REGION = "bench", "bench", "us-east-1"  # moto takes any credentials
# werkzeug's access log line, '"GET /b/k HTTP/1.1" 200 -', in colour for some statuses.
_REQUEST = re.compile(r"HTTP/1\.[01](?:\x1b\[[0-9;]*m)?\" \d{3}")


class S3Server:
    """moto's server in a subprocess; ``requests()`` counts what it has answered."""

    def __init__(self, log: Path, latency_ms: float = 0) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        # moto answers a range request by copying the whole object, from a temporary file
        # once the object is above its buffer size (about 5 MiB): keep objects in memory, so a
        # range read of a 64 MiB CAR shard costs a copy, not a disk read too.
        env = {**os.environ, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(1 << 30)}
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        if latency_ms:
            script = Path(__file__).with_name("_moto_latency.py")
            command = [sys.executable, str(script), str(port), str(latency_ms)]
        self.proc = subprocess.Popen(
            command,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto did not start; see {log}")

    def requests(self) -> int:
        self._out.flush()
        return len(_REQUEST.findall(self.log.read_text(errors="replace")))

    def reset(self) -> None:
        """Drop every object (frees moto's memory) and make the bucket again."""
        post = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(post).read()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        ).create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        self._out.close()


def obstore_options(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "access_key_id": KEY,
        "secret_access_key": SECRET,
        "region": REGION,
        "allow_http": True,
    }


def storage_options(endpoint: str) -> dict[str, Any]:
    return {
        "key": KEY,
        "secret": SECRET,
        "endpoint_url": endpoint,
        "client_kwargs": {"region_name": REGION},
    }


def encoding() -> dict[str, Any]:
    return {"t2m": {"chunks": (1, 361, 720), "compressors": (ZstdCodec(level=0),)}}


class Routes:
    """The writers and their readers; ``prefix`` is fresh for every route."""

    def __init__(self, client: Client, server: S3Server) -> None:
        self.client = client
        self.server = server
        self.endpoint = server.endpoint
        self.root: Any = None
        self.repo: icechunk.Repository | None = None

    def ours(self, ds: xr.Dataset, *, batch: bool = True) -> Callable[[], xr.Dataset]:
        store = ObjectStoreBlockstore(
            f"s3://{BUCKET}/ipld", batch=batch, **obstore_options(self.endpoint)
        )
        self.root = to_ipld_zarr(ds, store, client=self.client, encoding=encoding(), progress=False)
        return lambda: open_ipld_zarr(self.root, store)

    def to_zarr(self, ds: xr.Dataset) -> Callable[[], xr.Dataset]:
        # obstore 0.12 cannot pickle an S3Store given credentials or allow_http as options
        # (a panic); the workers take them from the environment instead (set in main()).
        store = zarr.storage.ObjectStore(
            S3Store(BUCKET, prefix="zarr", endpoint=self.endpoint, region=REGION)
        )
        delayed = ds.to_zarr(
            store, zarr_format=3, consolidated=False, encoding=encoding(), compute=False
        )
        self.client.compute(delayed).result()
        return lambda: xr.open_zarr(store, consolidated=False, zarr_format=3)

    def make_repo(self) -> None:
        storage = icechunk.s3_storage(
            bucket=BUCKET,
            prefix="icechunk",
            endpoint_url=self.endpoint,
            allow_http=True,
            force_path_style=True,
            region=REGION,
            access_key_id=KEY,
            secret_access_key=SECRET,
        )
        self.repo = icechunk.Repository.create(storage)

    def icechunk(self, ds: xr.Dataset) -> Callable[[], xr.Dataset]:
        assert self.repo is not None
        session = self.repo.writable_session("main")
        to_icechunk(ds, session, encoding=encoding())
        session.commit("bench")
        repo = self.repo
        return lambda: xr.open_zarr(
            repo.readonly_session(branch="main").store, consolidated=False, zarr_format=3
        )

    def task_cars(self, ds: xr.Dataset) -> Callable[[], xr.Dataset]:
        url = f"s3://{BUCKET}/cars"
        options = storage_options(self.endpoint)
        cars = TaskCarBlockstore(url, storage_options=options)
        self.root = to_ipld_zarr(ds, cars, client=self.client, encoding=encoding(), progress=False)
        return lambda: open_ipld_zarr(self.root, TaskCarBlockstore(url, storage_options=options))


def read_back(server: S3Server, opener: Callable[[], xr.Dataset], ds: xr.Dataset) -> dict[str, Any]:
    """Open (requests, seconds), then load everything with Dask threads (requests, seconds)."""
    before = server.requests()
    start = time.perf_counter()
    back = opener()
    open_s = time.perf_counter() - start
    opened = server.requests()
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        loaded = back.load()
    load_s = time.perf_counter() - start
    loaded_requests = server.requests()
    np.testing.assert_array_equal(loaded["t2m"].values, ds["t2m"].values)
    np.testing.assert_array_equal(loaded["time"].values, ds["time"].values)
    return {
        "open_requests": opened - before,
        "open_s": open_s,
        "load_requests": loaded_requests - opened,
        "load_s": load_s,
        "load_mb_per_s": ds.nbytes / load_s / 1e6,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    steps = 24 if args.quick else int(os.environ.get("BENCH_STEPS", "720"))
    # BENCH_LATENCY_MS: each request delayed this long, concurrently (a real store's
    # latency); the results then go to objectstore-latency<ms>.json.
    latency = float(os.environ.get("BENCH_LATENCY_MS", "0"))
    os.environ.setdefault("ICECHUNK_LOG", "error")
    icechunk.set_logs_filter(None)
    # For the to_zarr route's pickled S3Store (see Routes.to_zarr); workers inherit these.
    os.environ.update(
        AWS_ACCESS_KEY_ID=KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_ALLOW_HTTP="true",
        AWS_REGION=REGION,
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ipldwrite-bench-s3-") as tmp:
        server = S3Server(Path(tmp, "moto.log"), latency)
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        )
        try:
            with Client(cluster) as client:
                results = run(client, server, steps)
        finally:
            cluster.close()
            server.stop()
    config = {
        "steps": steps,
        "shape": [steps, 361, 720],
        "zarr_chunk_bytes": 361 * 720 * 4,
        "dask_chunk_steps": 24,
        "cluster": "2 worker processes x 1 thread",
        "server": "moto (python -m moto.server), one process, objects in memory",
        "latency_ms": latency,
        "source": source_state(),
    }
    name = f"objectstore-latency{latency:g}ms" if latency else "objectstore"
    write_results(args, name, config, results)


def run(client: Client, server: S3Server, steps: int) -> dict[str, Any]:
    ds = climate_cube(steps, 361, 720, 24).persist()
    wait([v.data for v in ds.variables.values() if isinstance(v.data, da.Array)])
    expected = ds.compute()
    routes = Routes(client, server)
    plan: list[tuple[str, Callable[[], Callable[[], xr.Dataset]], Callable[[], None]]] = [
        ("ipldwrite", lambda: routes.ours(ds), lambda: None),
        ("ipldwrite unbatched", lambda: routes.ours(ds, batch=False), lambda: None),
        ("to_zarr", lambda: routes.to_zarr(ds), lambda: None),
        ("icechunk", lambda: routes.icechunk(ds), routes.make_repo),
        ("task CARs", lambda: routes.task_cars(ds), lambda: None),
    ]
    gb = ds.nbytes / 1e9
    out: dict[str, Any] = {"nbytes": ds.nbytes, "routes": {}}
    roots = []
    for name, write, setup in plan:
        server.reset()
        setup()
        before = server.requests()
        start = time.perf_counter()
        opener = write()
        seconds = time.perf_counter() - start
        requests = server.requests() - before
        row: dict[str, Any] = {
            "write_s": seconds,
            "write_mb_per_s": ds.nbytes / seconds / 1e6,
            "write_requests": requests,
            "write_requests_per_gb": requests / gb,
            **read_back(server, opener, expected),
        }
        if name.startswith(("ipldwrite", "task")):
            roots.append(str(routes.root))
        if name == "task CARs":
            url = f"s3://{BUCKET}/cars"
            options = storage_options(server.endpoint)
            row["task_cars"] = len(TaskCarBlockstore(url, storage_options=options).existing())
            before = server.requests()
            start = time.perf_counter()
            packed = pack_car_directory(url, [routes.root], storage_options=options)
            row["pack_s"] = time.perf_counter() - start
            row["pack_requests"] = server.requests() - before
            row["packed_cars"] = len(packed.written)
            after = read_back(server, opener, expected)
            row["after_pack"] = after
        out["routes"][name] = row
        print(f"{name}: {row['write_s']:.1f} s, {requests} requests", flush=True)
    assert len(set(roots)) == 1, roots  # same content, same root, whatever the route
    out["root"] = roots[0]
    r = out["routes"]
    out["ratios"] = {
        f"to_zarr_s_over_{name}_s": r["to_zarr"]["write_s"] / r[name]["write_s"] for name in r
    } | {f"icechunk_s_over_{name}_s": r["icechunk"]["write_s"] / r[name]["write_s"] for name in r}
    rows = [
        (
            name,
            f"{row['write_s']:.1f}",
            f"{row['write_mb_per_s']:.0f}",
            f"{row['write_requests_per_gb']:.0f}",
            fmt_ratio(r["to_zarr"]["write_s"] / row["write_s"]),
            row["open_requests"],
            f"{row['open_s']:.2f}",
            row["load_requests"],
            f"{row['load_s']:.1f}",
        )
        for name, row in r.items()
    ]
    tc = r["task CARs"]
    rows.append(
        (
            "task CARs, packed",
            f"+{tc['pack_s']:.1f}",
            "",
            f"+{tc['pack_requests'] / gb:.0f}",
            "",
            tc["after_pack"]["open_requests"],
            f"{tc['after_pack']['open_s']:.2f}",
            tc["after_pack"]["load_requests"],
            f"{tc['after_pack']['load_s']:.1f}",
        )
    )
    print_table(
        f"{ds.nbytes / 1e6:.0f} MB cube on moto S3, 2 worker processes "
        f"({tc['task_cars']} task CARs -> {tc['packed_cars']} packed)",
        [
            "route",
            "write s",
            "MB/s",
            "requests/GB",
            "to_zarr s / route s",
            "open req",
            "open s",
            "load req",
            "load s",
        ],
        rows,
    )
    return out


if __name__ == "__main__":
    main()
