"""CAR transport and the UnixFS view: MB/s against plain copies, and conversion cost.

Part 1, CAR throughput. A dataset of incompressible float32 chunks of 1 MiB (no
compressor, so every chunk is one raw block) is written by ``to_ipld_zarr`` into a
``DirectoryBlockstore``. Then, warm cache (the blocks were just written):

* ``export_car`` (CARv1 and CARv2) and ``export_car_shards`` (64 MiB CARv2 shards) from the
  directory store, against **copying the block files** (read each block file, write it to a
  new file: the least any export must do) and against **copying one file of the CAR's size**
  (``shutil.copyfile``: the disk's own rate);
* ``import_car`` into a fresh ``DirectoryBlockstore`` (hash-checked twice, one file per block),
  against the same two baselines;
* reading every block back through ``CarBlockstore`` and ``CarSetBlockstore`` (index lookup +
  pread) against reading the block files of the directory store.

MB/s counts block data bytes (MB = 10^6).

Part 2, conversion. Two datasets of 100,000 chunks (2,000 with ``--quick``), one array
each: "flat", ``x`` of shape (100000,) in chunks of 1 (one directory ``x/c`` of 100,000
files: a HAMT shard), and "nested", ``y`` of shape (100000, 4, 4) in chunks of (1, 4, 4)
(100,000 subdirectories ``y/c/i`` each holding ``0/0``: 200,000 directories, as on disk).
Chunk blocks are real raw blocks of 4 and 64 bytes. ``to_unixfs`` and ``from_unixfs`` run
once on a fresh ``DirectoryBlockstore`` (and ``MemoryBlockstore``) wrapped in a
``CountingBlockstore`` (time, blocks written by codec, chunk blocks read), then again with
everything already stored (the repeat only hashes and skips).

    .venv/bin/python benchmarks/bench_car.py [--quick] [--tmpdir DIR]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from _common import Scratch, Timing, measure_pair, parse_args, print_table, write_results
from ipldwrite.blockstore import (
    CarBlockstore,
    CarSetBlockstore,
    CountingBlockstore,
    DirectoryBlockstore,
)
from ipldwrite.car import export_car, export_car_shards, import_car
from ipldwrite.convert import from_unixfs, to_unixfs
from ipldwrite.dag import commit_changes
from ipldwrite.ipld import RAW, Link, parse_cid_bytes, to_link
from ipldwrite.store import IPLDStore
from ipldwrite.xarray import to_ipld_zarr

MiB = 1 << 20


def mbps(nbytes: int, timing: Timing) -> float:
    return nbytes / timing.best / 1e6


# -- part 1 -------------------------------------------------------------------------------------


def block_files(store: DirectoryBlockstore) -> list[str]:
    return [store._file(link)[1] for link in store.iter_links()]


def copy_block_files(files: list[str], target: Path) -> None:
    target.mkdir(parents=True)
    for i, path in enumerate(files):
        with open(path, "rb") as f:
            data = f.read()
        with open(target / str(i), "wb") as g:
            g.write(data)


def read_block_files(files: list[str]) -> int:
    total = 0
    for path in files:
        with open(path, "rb") as f:
            total += len(f.read())
    return total


def bench_transport(total_mb: int, repeat: int, scratch: Scratch) -> list[dict[str, Any]]:
    base = scratch.root / "source"
    store = DirectoryBlockstore(base / "bs")
    n = total_mb * MiB // 4
    rows_count = total_mb
    data = np.random.default_rng(0).random(n, dtype=np.float64).astype("float32")
    ds = xr.Dataset({"v": (("t", "x"), data.reshape(rows_count, MiB // 4))})
    root = to_link(
        to_ipld_zarr(ds, store, encoding={"v": {"chunks": (1, MiB // 4), "compressors": None}})
    )
    files = block_files(store)
    nbytes = sum(os.path.getsize(p) for p in files)
    car = base / "whole.car"
    export_car(root, store, car, version=2)
    car_size = car.stat().st_size
    rows: list[dict[str, Any]] = []

    def target() -> Path:
        return scratch.fresh()

    state: dict[str, Path] = {}

    def fresh() -> None:
        state["dir"] = target()
        state["dir"].mkdir(parents=True)

    def row(operation: str, ours: Timing, baseline: str, theirs: Timing) -> None:
        rows.append(
            {
                "operation": operation,
                "data_mb": nbytes / 1e6,
                "ours_mb_per_s": mbps(nbytes, ours),
                "baseline": baseline,
                "baseline_mb_per_s": mbps(nbytes, theirs),
                "ours_over_baseline": theirs.best / ours.best,
                "ours": ours.to_json(),
                "theirs": theirs.to_json(),
            }
        )

    copy_files = (lambda: copy_block_files(files, state["dir"] / "copy"), fresh)
    copy_one = (lambda: shutil.copyfile(car, state["dir"] / "copy.car"), fresh)
    for version in (1, 2):
        ours = (lambda v=version: export_car(root, store, state["dir"] / "x.car", version=v), fresh)
        a, b = measure_pair(ours[0], copy_files[0], repeat=repeat, setup_a=ours[1], setup_b=fresh)
        row(f"export_car v{version}", a, "copy block files", b)
    shards = (lambda: export_car_shards(root, store, state["dir"] / "shards"), fresh)
    a, b = measure_pair(shards[0], copy_one[0], repeat=repeat, setup_a=fresh, setup_b=fresh)
    row("export_car_shards 64 MiB", a, f"copy one {car_size / 1e6:.0f} MB file", b)
    imp = (lambda: import_car(car, DirectoryBlockstore(state["dir"] / "bs")), fresh)
    a, b = measure_pair(imp[0], copy_files[0], repeat=repeat, setup_a=fresh, setup_b=fresh)
    row("import_car → DirectoryBlockstore", a, "copy block files", b)
    a, b = measure_pair(imp[0], copy_one[0], repeat=repeat, setup_a=fresh, setup_b=fresh)
    row("import_car → DirectoryBlockstore", a, f"copy one {car_size / 1e6:.0f} MB file", b)

    links = list(store.iter_links())
    export_car_shards(root, store, base / "shards", max_bytes=64 * MiB)
    single = CarBlockstore(car)
    carset = CarSetBlockstore(base / "shards")

    def read_all(bs: Any) -> None:
        for link in links:
            bs.get(link)

    a, b = measure_pair(lambda: read_all(single), lambda: read_block_files(files), repeat=repeat)
    row("CarBlockstore get (all blocks)", a, "read block files", b)
    a, b = measure_pair(lambda: read_all(carset), lambda: read_block_files(files), repeat=repeat)
    row("CarSetBlockstore get (all blocks)", a, "read block files", b)
    return rows


# -- part 2 -------------------------------------------------------------------------------------


class Recording(CountingBlockstore):
    """Also counts new blocks by codec (CountingBlockstore's kinds lump dag-pb with chunks)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.codecs: dict[str, int] = {}

    def _put(self, link: Link, data: bytes) -> None:
        if not self.inner._has(link):
            name = {0x55: "raw", 0x70: "dag-pb", 0x71: "dag-cbor"}[link.cid_bytes[1]]
            self.codecs[name] = self.codecs.get(name, 0) + 1
        super()._put(link, data)

    def reset(self) -> None:
        super().reset()
        self.codecs = {}


#: The two layouts of 100,000 chunks: all in one directory, or one directory per chunk.
LAYOUTS = {
    "flat": "x (N,) in chunks of 1: N files in x/c (a HAMT shard)",
    "nested": "y (N, 4, 4) in chunks of (1, 4, 4): N directories y/c/i holding 0/0",
}


def conversion_dataset(store: CountingBlockstore, chunks: int, layout: str) -> Link:
    """An array of ``chunks`` chunks, written without zarr's per-chunk overhead: the metadata
    through zarr, the chunk blocks (4 or 64 bytes) put and staged directly."""
    import zarr

    zstore = IPLDStore(store, read_only=False)
    group = zarr.open_group(zstore, mode="w", zarr_format=3)
    staged: dict[str, bytes | Link | None] = {}
    if layout == "flat":
        group.create_array("x", shape=(chunks,), chunks=(1,), dtype="int32", compressors=None)
        for i in range(chunks):
            staged[f"x/c/{i}"] = store.put(int(i).to_bytes(4, "little"))
    else:
        group.create_array(
            "y", shape=(chunks, 4, 4), chunks=(1, 4, 4), dtype="float32", compressors=None
        )
        for i in range(chunks):
            staged[f"y/c/{i}/0/0"] = store.put(np.full(16, i, dtype="float32").tobytes())
    return commit_changes(store, to_link(zstore.commit()), staged)


def bench_conversion(chunks: int, layout: str, tmp: Path, memory: bool) -> dict[str, Any]:
    from ipldwrite.blockstore import MemoryBlockstore

    inner = MemoryBlockstore() if memory else DirectoryBlockstore(tmp / f"conv-{layout}")
    store = Recording(inner)
    start = time.perf_counter()
    root = conversion_dataset(store, chunks, layout)
    build = time.perf_counter() - start
    result: dict[str, Any] = {
        "chunks": chunks,
        "layout": layout,
        "description": LAYOUTS[layout].replace("N", f"{chunks:,}"),
        "blockstore": type(inner).__name__,
        "dataset_build_s": build,
    }
    tree: Any = None
    for name in ("to_unixfs", "from_unixfs"):
        runs = []
        for attempt in range(2):  # the first writes; the repeat finds every block stored
            store.reset()
            start = time.perf_counter()
            out = to_unixfs(root, store) if name == "to_unixfs" else from_unixfs(tree, store)
            runs.append(time.perf_counter() - start)
            if attempt == 0:
                result[name] = {
                    "blocks_written": dict(store.codecs),
                    "blocks_read": dict(store.reads),
                    "raw_blocks_read": sum(
                        1 for raw in store.read_links if parse_cid_bytes(raw).codec == RAW
                    ),
                    "size_queries": dict(store.sizes),
                }
        result[name]["first_s"], result[name]["repeat_s"] = runs
        if name == "to_unixfs":
            tree = out
        else:
            assert to_link(out) == root  # the round trip is the identity
    result["tree"] = str(tree)
    return result


def main() -> None:
    args = parse_args(__doc__ or "", temp_dirs=True)
    total_mb = 16 if args.quick else 512
    repeat = 1 if args.quick else 5
    chunks = 2_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        scratch = Scratch(Path(tmp), sync=not args.quick)
        (Path(tmp) / "source").mkdir()
        transport = bench_transport(total_mb, repeat, scratch)
        conversion = [
            bench_conversion(chunks, layout, Path(tmp), memory=memory)
            for layout in LAYOUTS
            for memory in ((False,) if args.quick else (False, True))
        ]
    print_table(
        f"CAR throughput ({total_mb} MiB of 1 MiB raw chunk blocks, warm cache, MB/s of data)",
        ["operation", "ours MB/s", "baseline", "baseline MB/s", "ours/baseline"],
        [
            (
                r["operation"],
                f"{r['ours_mb_per_s']:.0f}",
                r["baseline"],
                f"{r['baseline_mb_per_s']:.0f}",
                f"{1 / r['ours_over_baseline']:.2f}x time",
            )
            for r in transport
        ],
        align="llllr",
    )
    print_table(
        f"Conversion of {chunks:,} chunks (first run; repeat with every block stored)",
        ["layout", "blockstore", "direction", "first s", "repeat s", "written", "raw read"],
        [
            (
                c["layout"],
                c["blockstore"],
                d,
                f"{c[d]['first_s']:.2f}",
                f"{c[d]['repeat_s']:.2f}",
                ", ".join(f"{k} {v}" for k, v in sorted(c[d]["blocks_written"].items())) or "0",
                c[d]["raw_blocks_read"],
            )
            for c in conversion
            for d in ("to_unixfs", "from_unixfs")
        ],
        align="lllrrlr",
    )
    write_results(
        args,
        "car",
        {"total_mb": total_mb, "repeat": repeat, "chunks_per_array": chunks},
        {"transport": transport, "conversion": conversion},
    )


if __name__ == "__main__":
    main()
