"""Merge scaling: the writer's merge tree over P partial roots and up to 10^6 chunk references.

One array shaped like a climate cube with N time steps, ``(N, 361, 720)`` float32 in chunks of
``(1, 361, 720)``: a chunk grid of ``(N, 1, 1)``, so N chunk references. Its metadata comes
from zarr through ``IPLDStore`` (the template, as the writer commits it). P partial datasets
each hold a disjoint run of N / P time chunks, as P Dask blocks of the writer would: a group
node, the array node and a manifest built with ``assemble(io, tiling, updates=...)`` from
``compute_link`` of 8 bytes per chunk (no chunk data: merging never reads chunks). They are
written untimed to a ``DirectoryBlockstore`` in a temporary directory.

What is timed is the writer's merge tree (``split_every=32``, the default: P / 32 merge
tasks at the first level, each depending on its inputs directly) computed by
``compute_root``, in four ways:

* ``cluster``: ``merge_roots`` of the P partial roots given by CID, on a
  ``distributed.LocalCluster`` (processes=True, 2 workers × 1 thread);
* ``cluster, roots on workers``: ``merge_tree`` over the roots already persisted in the
  workers' memory (untimed) as P Dask blocks, as the writer's write tasks leave them;
* ``threads``: ``merge_roots`` on Dask's threaded scheduler (2 threads);
* ``serial``: no Dask at all, ``merge_datasets`` called on groups of 32, level by level, in
  this process: the merging work alone.

The baseline for the two cluster ways is the same tree with no-op merges (``null tree``):
what the scheduler alone costs for P leaves on this machine. The blocks a merge wrote are
deleted (untimed) before the next repeat, so no repeat finds its output already stored, and
every merged root is checked against a direct ``assemble`` of all N entries.

Client memory: the peak RSS of this process (psutil, sampled every 2 ms) above its RSS just
before each merge, during the timed repeats; and, for P <= 1,000, the tracemalloc peak of one
extra, untimed merge (Python allocations of every thread of this process). With the
LocalCluster this process holds the client and the scheduler; with threads it also merges.
``--quick`` runs N <= 100,000 and P <= 100 once each, without the tracemalloc runs.

    .venv/bin/python benchmarks/bench_merge.py [--quick] [--tmpdir DIR]
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import psutil
import zarr
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from distributed import Client, LocalCluster, futures_of

from _common import fmt_rate, measure, parse_args, print_table, source_state, verdict, write_results
from ipldwrite.blockstore import Blockstore, DirectoryBlockstore, MemoryBlockstore
from ipldwrite.dag import (
    ArrayNode,
    GroupNode,
    NodeIO,
    assemble,
    load_node,
    merge_datasets,
    write_tree,
)
from ipldwrite.dask import compute_root, merge_roots, merge_tree, tree_graph
from ipldwrite.ipld import Link, compute_link, to_link
from ipldwrite.store import IPLDStore

SPLIT_EVERY = 32
TARGET_S = 10.0
TARGET_CHUNKS = 1_000_000
MODES = ("cluster", "cluster, roots on workers", "threads", "serial")
#: tracemalloc slows every Python line of this process; it gets one extra run, for small P.
TRACE_MAX_P = 1_000


class Template:
    """The committed template: a root group holding the array ``t2m`` with no chunks."""

    def __init__(self, blockstore: Blockstore, n: int) -> None:
        store = IPLDStore(blockstore, read_only=False)
        group = zarr.open_group(store, mode="w", zarr_format=3)
        group.create_array("t2m", shape=(n, 361, 720), chunks=(1, 361, 720), dtype="f4")
        self.link = to_link(store.commit())
        root = load_node(blockstore, self.link, "")
        assert isinstance(root, GroupNode)
        array = load_node(blockstore, root.members["t2m"], "t2m")
        assert isinstance(array, ArrayNode)
        self.group = root
        self.array = array

    def dataset(self, blockstore: Blockstore, entries: dict[tuple[int, ...], Link]) -> Link:
        """The root of the template plus ``entries`` (chunk index → link)."""
        manifest = assemble(NodeIO(blockstore), self.array.tiling, updates=entries)
        nodes = {"": self.group, "t2m": self.array.with_manifest(manifest)}
        return write_tree(blockstore, nodes)


def chunk_links(n: int) -> list[Link]:
    return [compute_link(i.to_bytes(8, "little")) for i in range(n)]


def block_files(path: Path) -> set[str]:
    return {os.path.join(d, f) for d, _, files in os.walk(path) for f in files}


class RSSPeak:
    """Peak resident memory of this process above its level when sampling starts, sampled
    by a background thread (psutil); the maximum over every sampled call is kept."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.peak_delta = 0

    @contextmanager
    def sampling(self) -> Iterator[None]:
        base = self.process.memory_info().rss
        peak = base
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(self.interval):
                peak = max(peak, self.process.memory_info().rss)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            peak = max(peak, self.process.memory_info().rss)
            self.peak_delta = max(self.peak_delta, peak - base)


def roots_array(roots: list[bytes]) -> da.Array:
    values = np.empty(len(roots), dtype=object)
    values[:] = roots
    return da.from_array(values, chunks=1)


def _noop(inputs: list[Any]) -> Any:
    return inputs[0]


def null_tree(inputs: list[Any], dependencies: tuple[Any, ...] = ()) -> da.Array:
    """The merge tree's graph with merges that do nothing: the scheduler's share."""
    name = f"null-tree-{dask.base.tokenize(inputs, dependencies)}"
    graph, _ = tree_graph(inputs, _noop, SPLIT_EVERY, name)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies)
    return da.Array(hlg, name, chunks=(), dtype=object, meta=np.empty((), dtype=object))


def persisted_keys(array: da.Array) -> list[Any]:
    return list(flatten(array.__dask_keys__()))


def merge_serial(blockstore: Blockstore, roots: list[Link]) -> Link:
    level = roots
    while len(level) > 1:
        level = [
            merge_datasets(blockstore, level[i : i + SPLIT_EVERY])
            for i in range(0, len(level), SPLIT_EVERY)
        ]
    return level[0]


class Setup:
    """P partial datasets of N chunks in a fresh blockstore, and the expected merged root."""

    def __init__(self, n: int, p: int, links: list[Link], path: Path) -> None:
        self.n, self.p, self.path = n, p, path
        self.blockstore = DirectoryBlockstore(path)
        self.template = Template(self.blockstore, n)
        start = time.perf_counter()
        bounds = np.linspace(0, n, p + 1).astype(int)
        self.roots = [
            self.template.dataset(self.blockstore, {(i, 0, 0): links[i] for i in range(lo, hi)})
            for lo, hi in itertools.pairwise(bounds)
        ]
        self.build_s = time.perf_counter() - start
        # The reference goes to memory, so the merges do not find its blocks stored.
        self.expected = Template(MemoryBlockstore(), n).dataset(
            MemoryBlockstore(), {(i, 0, 0): links[i] for i in range(n)}
        )
        self.built = block_files(path)

    def drop_merge_output(self) -> None:
        for file in block_files(self.path) - self.built:
            os.unlink(file)
        os.sync()

    def runner(self, mode: str, client: Client) -> Callable[[], Link]:
        """One merge in ``mode``, returning the merged root."""
        raw = [r.cid_bytes for r in self.roots]

        def by_cid() -> Delayed:
            return merge_roots(self.roots, blockstore=self.blockstore, split_every=SPLIT_EVERY)

        if mode == "cluster":
            return lambda: compute_root(by_cid(), client=client, progress=False)
        if mode == "cluster, roots on workers":
            persisted = client.persist(roots_array(raw))
            client.gather(futures_of(persisted))
            tree = merge_tree(
                [persisted],
                blockstore=self.blockstore,
                template=self.template.link,
                split_every=SPLIT_EVERY,
            )
            return lambda: compute_root(tree, client=client, progress=False)
        if mode == "threads":
            return lambda: compute_root(by_cid(), client=None, progress=False)
        return lambda: merge_serial(self.blockstore, self.roots)


def bench_config(
    n: int, p: int, repeat: int, client: Client, links: list[Link], tmp: Path, *, trace: bool
) -> list[dict[str, Any]]:
    setup = Setup(n, p, links, tmp / f"n{n}-p{p}")
    rows = []
    for mode in MODES:
        merge = setup.runner(mode, client)
        merged: list[Link] = []
        rss = RSSPeak()

        def run(
            merge: Callable[[], Link] = merge, rss: RSSPeak = rss, merged: list[Link] = merged
        ) -> None:
            with rss.sampling():
                merged.append(merge())

        timing = measure(run, repeat=repeat, warmup=0, setup=setup.drop_merge_output)
        traced_peak = None
        if trace and p <= TRACE_MAX_P:
            setup.drop_merge_output()
            tracemalloc.start()
            merged.append(merge())
            traced_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        setup.drop_merge_output()
        assert all(m == setup.expected for m in merged), (n, p, mode)
        rows.append(
            {
                "chunks": n,
                "partials": p,
                "mode": mode,
                "build_partials_s": setup.build_s,
                "root_matches_direct_assemble": True,
                "rss_peak_delta_bytes": rss.peak_delta,
                "tracemalloc_peak_bytes": traced_peak,
                **timing.to_json(),
            }
        )
        traced = "-" if traced_peak is None else f"{traced_peak / 2**20:.1f}"
        print(
            f"  N={n:>9,} P={p:>6,} {mode:<26} best {timing.best:6.2f} s  median "
            f"{timing.median:6.2f} s  rss +{rss.peak_delta / 2**20:5.1f} MiB  tracemalloc "
            f"{traced} MiB",
            flush=True,
        )
    shutil.rmtree(setup.path)
    return rows


def bench_null_trees(p: int, repeat: int, client: Client) -> list[dict[str, Any]]:
    raw = [bytes(36)] * p
    persisted = client.persist(roots_array(raw))
    client.gather(futures_of(persisted))
    on_workers = null_tree(persisted_keys(persisted), (persisted,))
    runs = {
        "cluster": lambda: client.compute(null_tree(raw)).result(),
        "cluster, roots on workers": lambda: client.compute(on_workers).result(),
        "threads": lambda: dask.compute(null_tree(raw), scheduler="threads"),
    }
    rows = []
    for mode, fn in runs.items():
        timing = measure(fn, repeat=repeat, warmup=0)
        rows.append({"partials": p, "mode": mode, **timing.to_json()})
        print(f"  null tree P={p:>6,} {mode:<26} best {timing.best:6.2f} s", flush=True)
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], temp_dirs=True)
    if args.quick:
        chunk_counts, partial_counts, repeat = (10_000, 100_000), (10, 100), 1
    else:
        chunk_counts, partial_counts = (10_000, 100_000, 1_000_000), (10, 100, 1_000, 10_000)
        repeat = 3
    configs = [(n, p) for n in chunk_counts for p in partial_counts if p * 10 <= n]
    links = chunk_links(max(chunk_counts))
    rows: list[dict[str, Any]] = []
    nulls: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="ipldwrite-bench-merge-", dir=args.tmpdir) as tmp,
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        # Not the default client: the threaded runs must not find it.
        Client(cluster, set_as_default=False) as client,
        dask.config.set(scheduler="threads", num_workers=2),
    ):
        # One untimed round first: imports and first-call costs in every worker and here.
        bench_config(1_000, 16, 1, client, links, Path(tmp), trace=False)
        print("warm-up done")
        for p in partial_counts:
            nulls.extend(bench_null_trees(p, 1 if p >= 10_000 else repeat, client))
        for n, p in configs:
            reps = 2 if p >= 10_000 else repeat
            # --quick skips the extra tracemalloc merges to stay short.
            rows.extend(bench_config(n, p, reps, client, links, Path(tmp), trace=not args.quick))

    null_s = {(r["partials"], r["mode"]): r["best_s"] for r in nulls}

    def mib(value: int | None) -> str:
        return "-" if value is None else f"{value / 2**20:,.1f}"

    print_table(
        f"Merge tree (split_every={SPLIT_EVERY}): wall seconds; null tree = the same tree "
        "with no-op merges (scheduler cost); client memory in MiB",
        [
            "chunks",
            "partials",
            "mode",
            "best s",
            "median s",
            "null tree s",
            "chunk refs/s",
            "RSS peak +",
            "tracemalloc",
        ],
        [
            [
                f"{r['chunks']:,}",
                f"{r['partials']:,}",
                r["mode"],
                f"{r['best_s']:.2f}",
                f"{r['median_s']:.2f}",
                f"{null_s[r['partials'], r['mode']]:.2f}"
                if (r["partials"], r["mode"]) in null_s
                else "",
                fmt_rate(r["chunks"] / r["best_s"]),
                mib(r["rss_peak_delta_bytes"]),
                mib(r["tracemalloc_peak_bytes"]),
            ]
            for r in rows
        ],
        align="rrlrrrrrr",
    )
    targets: dict[str, Any] = {}
    big = [r for r in rows if r["chunks"] == TARGET_CHUNKS]
    if big:
        print(f"\ntarget: {TARGET_CHUNKS:,} chunk refs merged in <= {TARGET_S:.0f} s (worst P):")
        for mode in MODES:
            worst = max((r for r in big if r["mode"] == mode), key=lambda r: r["median_s"])
            met = worst["median_s"] <= TARGET_S
            targets[f"merge_1m_within_10s[{mode}]"] = met
            print(
                f"  {mode:<26} worst median {worst['median_s']:6.2f} s (P={worst['partials']:,})"
                f": {verdict(met)}"
            )
    else:
        print(f"\n(--quick: the {TARGET_CHUNKS:,}-chunk target is measured by the full run)")
    config = {
        "array": "(N, 361, 720) float32, chunks (1, 361, 720): chunk grid (N, 1, 1)",
        "split_every": SPLIT_EVERY,
        "cluster": "LocalCluster(processes=True, n_workers=2, threads_per_worker=1)",
        "threads": "dask threaded scheduler, num_workers=2",
        "memory": {
            "rss_peak_delta_bytes": "psutil RSS of this (client) process, sampled every 2 ms "
            "during the timed repeats, peak minus the RSS just before each merge",
            "tracemalloc_peak_bytes": "tracemalloc peak of one extra untimed merge (P <= "
            f"{TRACE_MAX_P:,})",
        },
        "repeat": repeat,
        "source": source_state(),
    }
    write_results(args, "merge", config, {"rows": rows, "null_trees": nulls, "targets": targets})


if __name__ == "__main__":
    main()
