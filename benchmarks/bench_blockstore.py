"""Blockstore throughput: put and get MB/s against plain dicts and plain files.

For 1 MiB and 64 KiB blocks of random bytes:

* ``MemoryBlockstore`` against a plain ``dict`` (the same bytes under an integer key);
* ``DirectoryBlockstore`` in a temporary directory against plain files (one file per block,
  named by its number, in one flat directory; no atomic rename, no existence check).

``put`` hashes (sha2-256) and stores; ``put_many`` stores blocks whose links the caller
already has (no hashing), which is the like-for-like comparison with the baselines. The
sha256 rate of the same data is reported on its own, with its share of a ``put``. Every put
repeat starts from an empty store. Reads are warm-cache reads: the blocks were just
written and are in the page cache (dropping it needs root), so ``get`` measures the
blockstore's own overhead, not the disk. MB = 10^6 bytes.

    .venv/bin/python benchmarks/bench_blockstore.py [--quick]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _common import Scratch, Timing, measure, measure_pair, parse_args, print_table, write_results
from ipldwrite.blockstore import Blockstore, DirectoryBlockstore, MemoryBlockstore
from ipldwrite.ipld import compute_link

#: Something to time and its untimed set-up (run before every repeat), or None.
Run = tuple[Callable[[], object], Callable[[], object] | None]

MiB = 1 << 20
KiB = 1 << 10


def mbps(nbytes: int, timing: Timing) -> float:
    return nbytes / timing.best / 1e6


def bench_size(
    block_size: int, total: int, repeat: int, scratch: Scratch
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    count = total // block_size
    rng = np.random.default_rng(block_size)
    buffer = rng.integers(0, 256, size=count * block_size, dtype=np.uint8).tobytes()
    blocks = [buffer[i * block_size : (i + 1) * block_size] for i in range(count)]
    nbytes = count * block_size
    links = [compute_link(b) for b in blocks]
    pairs = list(zip(links, blocks, strict=True))
    rows: list[dict[str, Any]] = []

    hashing = measure(lambda: [hashlib.sha256(b).digest() for b in blocks], repeat=repeat)
    sha256 = {"block_size": block_size, "blocks": count, "mb_per_s": mbps(nbytes, hashing)}
    sha256.update(hashing.to_json())

    state: dict[str, Any] = {}

    def row(backend: str, operation: str, ours: Run, baseline: tuple[str, Run]) -> None:
        """Time ours and the baseline; a Run is (what to time, untimed set-up before it)."""
        baseline_name, (base_fn, base_setup) = baseline
        t_ours, t_base = measure_pair(
            ours[0], base_fn, repeat=repeat, setup_a=ours[1], setup_b=base_setup
        )
        rows.append(
            {
                "backend": backend,
                "block_size": block_size,
                "blocks": count,
                "operation": operation,
                "ours_mb_per_s": mbps(nbytes, t_ours),
                "baseline": baseline_name,
                "baseline_mb_per_s": mbps(nbytes, t_base),
                "ours_over_baseline": t_base.best / t_ours.best,
                "hash_share_of_ours": hashing.best / t_ours.best if operation == "put" else None,
                "ours": t_ours.to_json(),
                "baseline_timing": t_base.to_json(),
            }
        )

    # -- memory ----------------------------------------------------------------------------
    def new_memory() -> None:
        state["store"] = MemoryBlockstore()

    def new_dict() -> None:
        state["dict"] = {}

    def put_all() -> None:
        store: Blockstore = state["store"]
        for b in blocks:
            store.put(b)

    def put_many() -> None:
        state["store"].put_many(pairs)

    def get_all() -> None:
        store: Blockstore = state["store"]
        for link in links:
            store.get(link)

    def dict_put() -> None:
        d: dict[int, bytes] = state["dict"]
        for i, b in enumerate(blocks):
            d[i] = bytes(b)

    def dict_get() -> None:
        d: dict[int, bytes] = state["dict"]
        for i in range(count):
            d[i]  # the lookup is what is timed

    row("memory", "put", (put_all, new_memory), ("dict assign", (dict_put, new_dict)))
    row(
        "memory",
        "put_many (pre-hashed)",
        (put_many, new_memory),
        ("dict assign", (dict_put, new_dict)),
    )
    # The store and the dict hold every block from the last put_many and dict_put repeats.
    row("memory", "get", (get_all, None), ("dict lookup", (dict_get, None)))

    # -- directory --------------------------------------------------------------------------
    def new_directory() -> None:
        state["store"] = DirectoryBlockstore(scratch.fresh() / "blocks")

    def new_files() -> None:
        state["dir"] = scratch.fresh()
        state["dir"].mkdir()

    def files_put() -> None:
        directory = state["dir"]
        for i, b in enumerate(blocks):
            with open(os.path.join(directory, str(i)), "wb") as f:
                f.write(b)

    def files_get() -> None:
        directory = state["dir"]
        for i in range(count):
            with open(os.path.join(directory, str(i)), "rb") as f:
                f.read()

    row("directory", "put", (put_all, new_directory), ("plain files", (files_put, new_files)))
    row(
        "directory",
        "put_many (pre-hashed)",
        (put_many, new_directory),
        ("plain files", (files_put, new_files)),
    )
    # Reads: the blocks and the files written once more, side by side, then read back.
    state["store"] = DirectoryBlockstore(scratch.root / "get-blocks")
    state["dir"] = scratch.root / "get-files"
    state["dir"].mkdir()
    put_many()
    files_put()
    row("directory", "get (warm cache)", (get_all, None), ("plain files", (files_get, None)))
    shutil.rmtree(scratch.root / "get-blocks")
    shutil.rmtree(scratch.root / "get-files")
    return rows, sha256


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], temp_dirs=True)
    if args.quick:
        sizes = [(MiB, 16 * MiB), (64 * KiB, 8 * MiB)]
        repeat = 2
    else:
        sizes = [(MiB, 256 * MiB), (64 * KiB, 64 * MiB)]
        repeat = 5
    rows: list[dict[str, Any]] = []
    hashing: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ipldwrite-bench-", dir=args.tmpdir) as tmp:
        scratch = Scratch(Path(tmp), sync=not args.quick)
        for block_size, total in sizes:
            size_rows, sha256 = bench_size(block_size, total, repeat, scratch)
            rows.extend(size_rows)
            hashing.append(sha256)

    def label(size: int) -> str:
        return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"

    print_table(
        "Blockstore throughput (MB/s, best of repeats; ours/base > 1: ours faster)",
        ["backend", "block", "operation", "ours", "baseline", "base", "ours/base", "sha256 share"],
        [
            [
                r["backend"],
                label(r["block_size"]),
                r["operation"],
                f"{r['ours_mb_per_s']:,.0f}",
                r["baseline"],
                f"{r['baseline_mb_per_s']:,.0f}",
                f"{r['ours_over_baseline']:.3g}x",
                "-" if r["hash_share_of_ours"] is None else f"{r['hash_share_of_ours']:.0%}",
            ]
            for r in rows
        ],
        align="lrlrlrrr",
    )
    print_table(
        "Hashing the same data (hashlib.sha256, MB/s)",
        ["block", "blocks", "sha256"],
        [[label(h["block_size"]), h["blocks"], f"{h['mb_per_s']:,.0f}"] for h in hashing],
    )
    print(
        "\nReads are warm-cache reads (the page cache cannot be dropped without root). "
        "'sha256 share' is the time hashing alone takes as a fraction of a put."
    )
    write_results(
        args,
        "blockstore",
        {
            "sizes": [{"block_size": b, "total_bytes": t} for b, t in sizes],
            "repeat": repeat,
            "mb": 1_000_000,
            "reads": "warm page cache",
            "tmpdir": str(args.tmpdir or tempfile.gettempdir()),
        },
        {"rows": rows, "sha256": hashing},
    )


if __name__ == "__main__":
    main()
