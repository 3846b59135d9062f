"""Manifest-node codec throughput: ours (cbrrr) against dag_cbor and libipld.

A manifest node is a DAG-CBOR list of 4096 entries: links to raw sha2-256 blocks, about 10%
null. Rates count entries (links and nulls) per second. Rows:

* ``encode`` / ``decode``: ipldwrite's strict codec, the reference ``dag_cbor`` package (with
  ``multiformats.CID`` links) and ``libipld`` (links as raw CID bytes);
* ``NodeIO.read``: blockstore get, decode and the structural check, on nodes never seen
  before by a reader with no cache;
* ``decode ..., GC paused``: our decode with the cyclic garbage collector off around the
  whole loop, and the collector's share of a normal decode loop: a guard, since a decode
  that allocates thousands of tracked links per node can spend most of its time in the GC;
* ``assemble``: a whole 1,000,000-chunk manifest built from an updates mapping into a
  MemoryBlockstore (tiling, node building, encoding, hashing, storing).

Target (issue 2): ours >= 2,000,000 links/s both ways.

    .venv/bin/python benchmarks/bench_codec.py [--quick]
"""

from __future__ import annotations

import gc
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

import dag_cbor
from multiformats import CID

from _common import (
    Timing,
    fmt_rate,
    fmt_ratio,
    measure,
    parse_args,
    print_table,
    verdict,
    write_results,
)
from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import NodeIO, Tiling, assemble
from ipldwrite.ipld import DAG_CBOR, Link, decode, encode

try:
    import libipld
except ImportError:  # an optional baseline: pip install libipld
    libipld = None

TARGET = 2_000_000
NODE_ENTRIES = 4096
NULL_FRACTION = 0.10
#: The rows that are ipldwrite as users run it (the others are baselines or diagnostics).
OURS = ("ipldwrite", "ipldwrite (cbrrr)")
#: The binary-CID prefix of a CIDv1 raw sha2-256 link (version, codec, hash, length).
RAW_SHA256_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])


def chunk_link(i: int) -> Link:
    """The link of an (imaginary) raw chunk number ``i``; cheap, so setup stays fast."""
    return Link(RAW_SHA256_PREFIX + hashlib.sha256(i.to_bytes(8, "little")).digest())


def make_node(seed: int) -> list[Link | None]:
    rng = random.Random(seed)
    return [
        None if rng.random() < NULL_FRACTION else chunk_link(seed * NODE_ENTRIES + i)
        for i in range(NODE_ENTRIES)
    ]


def gc_share(fn: Callable[[], object]) -> dict[str, Any]:
    """Run ``fn`` once and report the fraction of its time spent in the cyclic garbage
    collector, and how many collections of each generation ran."""
    state: dict[str, Any] = {"gc_s": 0.0, "collections": [0, 0, 0], "start": 0.0}

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            state["start"] = time.perf_counter()
        else:
            state["gc_s"] += time.perf_counter() - state["start"]
            state["collections"][info["generation"]] += 1

    gc.callbacks.append(callback)
    try:
        start = time.perf_counter()
        fn()
        total = time.perf_counter() - start
    finally:
        gc.callbacks.remove(callback)
    return {
        "total_s": total,
        "gc_s": state["gc_s"],
        "gc_fraction": state["gc_s"] / total,
        "collections_by_generation": state["collections"],
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    quick = args.quick
    # Decoding allocates one GC-tracked Link per entry, so the garbage collector's share of
    # the time only settles after a few hundred nodes: each timed repeat must be that long.
    loops = 60 if quick else 250  # codec calls per timed repeat (fast codecs)
    repeat = 3 if quick else 7
    slow_repeat = 1 if quick else 3  # the pure-Python reference codec is ~1000x slower
    read_nodes = 60 if quick else 250
    manifest_chunks = 50_000 if quick else 1_000_000
    manifest_repeat = 2 if quick else 3

    node = make_node(0)
    nulls = sum(entry is None for entry in node)
    data = encode(node)
    print(
        f"manifest node: {NODE_ENTRIES} entries ({NODE_ENTRIES - nulls} links, {nulls} null), "
        f"{len(data):,} bytes of DAG-CBOR; rates count entries per second"
    )

    # The same node in each baseline's own link type; all three must write the same bytes.
    ref_node = [None if e is None else CID.decode(e.cid_bytes) for e in node]
    raw_node = [None if e is None else e.cid_bytes for e in node]
    same_bytes = {"dag_cbor": dag_cbor.encode(ref_node) == data}
    decoded_same = {
        "ipldwrite": decode(data) == node,
        "dag_cbor": [None if c is None else bytes(c) for c in dag_cbor.decode(data)] == raw_node,
    }
    if libipld is not None:
        # libipld takes and returns links as raw binary CIDs (no multibase 0x00 prefix).
        same_bytes["libipld"] = libipld.encode_dag_cbor(raw_node) == data
        decoded_same["libipld"] = libipld.decode_dag_cbor(data) == raw_node
    else:
        print("libipld is not installed (pip install libipld): its rows are skipped")

    def loop(fn: Any, arg: Any, n: int) -> Any:
        def run() -> None:
            for _ in range(n):
                fn(arg)

        return run

    timings: dict[tuple[str, str], tuple[Timing, int]] = {}
    fast_entries = NODE_ENTRIES * loops
    timings["encode", "ipldwrite (cbrrr)"] = (
        measure(loop(encode, node, loops), repeat=repeat),
        fast_entries,
    )
    if libipld is not None:
        timings["encode", "libipld"] = (
            measure(loop(libipld.encode_dag_cbor, raw_node, loops), repeat=repeat),
            fast_entries,
        )
    timings["encode", "dag_cbor + multiformats"] = (
        measure(lambda: dag_cbor.encode(ref_node), repeat=slow_repeat),
        NODE_ENTRIES,
    )
    timings["decode", "ipldwrite (cbrrr)"] = (
        measure(loop(decode, data, loops), repeat=repeat),
        fast_entries,
    )
    if libipld is not None:
        timings["decode", "libipld"] = (
            measure(loop(libipld.decode_dag_cbor, data, loops), repeat=repeat),
            fast_entries,
        )
    timings["decode", "dag_cbor + multiformats"] = (
        measure(lambda: dag_cbor.decode(data), repeat=slow_repeat, warmup=0 if quick else 1),
        NODE_ENTRIES,
    )

    # The same decode with the garbage collector paused: how much of the time is the GC's.
    gc.disable()
    try:
        timings["decode", "ipldwrite (cbrrr), GC paused"] = (
            measure(loop(decode, data, loops), repeat=repeat),
            fast_entries,
        )
    finally:
        gc.enable()
    decode_gc = gc_share(loop(decode, data, loops))

    # NodeIO.read: distinct nodes (so distinct links) and no cache, so every read decodes.
    store = MemoryBlockstore()
    links = [store.put(encode(make_node(seed)), DAG_CBOR) for seed in range(1, read_nodes + 1)]
    reader = NodeIO(store, cache_nodes=0)

    def read_all() -> None:
        for link in links:
            reader.read(link, NODE_ENTRIES)

    reads_before = reader.reads
    timings["NodeIO.read", "ipldwrite"] = (
        measure(read_all, repeat=repeat),
        len(links) * NODE_ENTRIES,
    )
    expected_reads = (repeat + 1) * len(links)
    assert reader.reads - reads_before == expected_reads, "NodeIO.read was served from its cache"

    # A whole manifest, end to end: the chunk links exist already (a writer has them).
    updates = {(i,): chunk_link(i) for i in range(manifest_chunks)}
    tiling = Tiling.for_grid((manifest_chunks,))
    state: dict[str, Any] = {}

    def fresh_io() -> None:
        state["io"] = NodeIO(MemoryBlockstore())

    def build() -> None:
        state["root"] = assemble(state["io"], tiling, updates=updates)

    label = f"assemble {manifest_chunks:,} chunks"
    timings[label, "ipldwrite"] = (
        measure(build, repeat=manifest_repeat, setup=fresh_io),
        manifest_chunks,
    )
    manifest_nodes = state["io"].writes

    # -- report ------------------------------------------------------------------------
    ours_rate = {op: timing.rate(n) for (op, impl), (timing, n) in timings.items() if impl in OURS}
    rows = []
    results = []
    for (op, impl), (timing, n) in timings.items():
        rate = timing.rate(n)
        ratio = ours_rate[op] / rate
        rows.append([op, impl, fmt_rate(rate), fmt_rate(n / timing.median), fmt_ratio(ratio)])
        results.append(
            {
                "operation": op,
                "implementation": impl,
                "entries_per_call": n,
                "links_per_s_best": rate,
                "links_per_s_median": n / timing.median,
                "ours_over_this": ratio,
                **timing.to_json(),
            }
        )
    print_table(
        "Manifest-node codec (links/s; best of repeats, median; ours/this > 1: ours faster)",
        ["operation", "implementation", "best", "median", "ours/this"],
        rows,
        align="llrrr",
    )

    target_rows = []
    targets = {}
    for op, rate in ours_rate.items():
        met = rate >= TARGET
        formal = op in ("encode", "decode")
        targets[op] = {"links_per_s": rate, "met": met, "issue_target": formal}
        scope = "issue 2 target" if formal else "same bar, informational"
        target_rows.append([op, fmt_rate(rate), f">= {fmt_rate(TARGET)}", verdict(met), scope])
    print_table(
        "Target: ours >= 2,000,000 links/s",
        ["operation", "ours", "target", "", "scope"],
        target_rows,
        align="lrrll",
    )
    print(f"\nsame bytes as ours when encoding: {same_bytes}; same values decoded: {decoded_same}")
    print(
        f"garbage collector's share of {loops} decodes: {decode_gc['gc_fraction']:.0%} "
        f"(collections by generation: {decode_gc['collections_by_generation']})"
    )
    print(f"the {manifest_chunks:,}-chunk manifest has {manifest_nodes} nodes")

    write_results(
        args,
        "codec",
        {
            "node_entries": NODE_ENTRIES,
            "node_links": NODE_ENTRIES - nulls,
            "node_bytes": len(data),
            "loops_per_repeat": loops,
            "repeat": repeat,
            "slow_repeat": slow_repeat,
            "read_nodes": read_nodes,
            "manifest_chunks": manifest_chunks,
            "manifest_nodes": manifest_nodes,
            "rate_unit": "manifest entries (links and nulls) per second",
        },
        {
            "rows": results,
            "targets": targets,
            "target_links_per_s": TARGET,
            "same_bytes_as_ours": same_bytes,
            "same_values_decoded": decoded_same,
            "libipld_installed": libipld is not None,
            "decode_gc_share": decode_gc,
        },
    )


if __name__ == "__main__":
    main()
