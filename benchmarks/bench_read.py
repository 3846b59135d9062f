"""Reading a dataset back: ``open_ipld_zarr`` on a DirectoryBlockstore against
``xarray.open_zarr`` on a plain zarr v3 directory holding the same data.

A synthetic climate cube (time x lat x lon, float32: a smooth field plus noise, zstd through
zarr's default codecs) is written both ways, in two chunkings:

* (30, 181, 360): 7.8 MB chunks, above the 1 MiB block limit, so each chunk is a UnixFS
  file DAG of 1 MiB raw leaves in our format;
* (4, 181, 360): 1.04 MB chunks, which stay single raw blocks.

Rows: ``write`` (``to_ipld_zarr`` against ``to_zarr``, sequential, into empty directories),
``open`` (metadata only), ``full read`` (open + ``.load()``) and ``random access`` (single
time steps ``ds.isel(time=i).load()`` at seeded random indices, dataset opened beforehand).
A last table gives the cost of verified reads (every block re-hashed, the default) over
``verify=False`` for the two read rows.
Reads are warm-cache reads for both sides. Ratio = open_zarr's time / ours (> 1: ours
faster).

Target (issue 2): reads >= 0.8x of open_zarr.

    .venv/bin/python benchmarks/bench_read.py [--quick] [--tmpdir DIR]
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from _common import Scratch, Timing, measure_pair, parse_args, print_table, verdict, write_results
from ipldwrite.blockstore import DirectoryBlockstore
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

TARGET = 0.8
READ_ROWS = ("full read", "random access")


def climate_cube(nt: int, ny: int, nx: int, seed: int = 0) -> xr.Dataset:
    """Daily 2 m temperature: latitude gradient, a seasonal cycle and weather noise."""
    rng = np.random.default_rng(seed)
    lat = np.linspace(-90.0, 90.0, ny)
    lon = np.linspace(0.0, 360.0, nx, endpoint=False)
    day = np.arange(nt)
    field = (
        273.0
        + 30.0 * np.cos(np.deg2rad(lat))[None, :, None]
        + 10.0 * np.sin(2 * np.pi * day / 365.0)[:, None, None]
    ).astype(np.float32)
    t2m = field + rng.normal(0.0, 2.0, size=(nt, ny, nx)).astype(np.float32)
    return xr.Dataset(
        {"t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 m temperature"})},
        coords={"time": pd.date_range("2000-01-01", periods=nt, freq="D"), "lat": lat, "lon": lon},
        attrs={"title": "ipldwrite read benchmark (synthetic)"},
    )


def bench_variant(
    ds: xr.Dataset,
    chunks: tuple[int, ...],
    scratch: Scratch,
    *,
    repeat: int,
    write_repeat: int,
    steps: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    encoding = {"t2m": {"chunks": chunks}}
    state: dict[str, Any] = {}

    def new_dir() -> None:
        state["dir"] = scratch.fresh()

    def write_ours() -> None:
        to_ipld_zarr(ds, DirectoryBlockstore(state["dir"]), encoding=encoding)

    def write_zarr() -> None:
        ds.to_zarr(state["dir"], zarr_format=3, consolidated=False, encoding=encoding)

    timings: dict[str, tuple[Timing, Timing]] = {}
    timings["write"] = measure_pair(
        write_ours, write_zarr, repeat=write_repeat, setup_a=new_dir, setup_b=new_dir
    )

    # The copies that are read back, side by side.
    tag = "x".join(map(str, chunks))
    blocks = DirectoryBlockstore(scratch.root / f"ipld-{tag}")
    root = to_ipld_zarr(ds, blocks, encoding=encoding)
    zarr_path = scratch.root / f"zarr-{tag}"
    ds.to_zarr(zarr_path, zarr_format=3, consolidated=False, encoding=encoding)
    blocks_path = blocks.path

    def open_ours() -> xr.Dataset:
        # A new blockstore object each time: nothing cached from the previous repeat.
        return open_ipld_zarr(root, DirectoryBlockstore(blocks_path, create=False))

    def open_zarr() -> xr.Dataset:
        return xr.open_zarr(zarr_path, consolidated=False)

    ours_loaded, zarr_loaded = open_ours().load(), open_zarr().load()
    same = bool(ours_loaded.identical(zarr_loaded)) and bool(
        np.array_equal(ours_loaded["t2m"].values, ds["t2m"].values)
    )
    if not same:
        raise SystemExit(f"chunks {chunks}: the two copies read back differently")
    del ours_loaded, zarr_loaded

    timings["open"] = measure_pair(open_ours, open_zarr, repeat=repeat)
    timings["full read"] = measure_pair(
        lambda: open_ours().load(), lambda: open_zarr().load(), repeat=repeat
    )

    indices = np.random.default_rng(1).integers(0, ds.sizes["time"], size=steps).tolist()

    def opener(fn: Callable[[], xr.Dataset]) -> Callable[[], None]:
        def setup() -> None:
            state["ds"] = fn()

        return setup

    def random_access() -> None:
        opened = state["ds"]
        for i in indices:
            opened.isel(time=i).load()

    timings["random access"] = measure_pair(
        random_access,
        random_access,
        repeat=repeat,
        setup_a=opener(open_ours),
        setup_b=opener(open_zarr),
    )

    # What checking every block against its CID (the default) costs: the same reads with
    # verify=False, the opt-out for a trusted store.
    def open_unverified() -> xr.Dataset:
        return open_ipld_zarr(root, DirectoryBlockstore(blocks_path, create=False, verify=False))

    verify_cost = {
        "full read": measure_pair(
            lambda: open_ours().load(), lambda: open_unverified().load(), repeat=repeat
        ),
        "random access": measure_pair(
            random_access,
            random_access,
            repeat=repeat,
            setup_a=opener(open_ours),
            setup_b=opener(open_unverified),
        ),
    }

    chunk_mb = int(np.prod(chunks)) * ds["t2m"].dtype.itemsize / 1e6
    label = f"{'x'.join(map(str, chunks))} ({chunk_mb:.2f} MB chunks)"
    rows = []
    for operation, (ours, theirs) in timings.items():
        ratio = theirs.best / ours.best
        rows.append(
            {
                "variant": label,
                "chunks": list(chunks),
                "operation": operation,
                "ours": ours.to_json(),
                "open_zarr": theirs.to_json(),
                "ratio_theirs_over_ours": ratio,
                "ratio_median": theirs.median / ours.median,
                "target_met": ratio >= TARGET if operation in READ_ROWS else None,
            }
        )
    info = {
        "variant": label,
        "chunk_bytes_uncompressed": int(np.prod(chunks)) * ds["t2m"].dtype.itemsize,
        "ours_bytes_on_disk": dir_size(blocks_path),
        "zarr_bytes_on_disk": dir_size(zarr_path),
        "ours_files": file_count(blocks_path),
        "zarr_files": file_count(zarr_path),
        "random_access_steps": steps,
        "same_data_read_back": same,
        "verify_cost": [
            {
                "operation": operation,
                "verified": on.to_json(),
                "unverified": off.to_json(),
                "cost_best": on.best / off.best - 1,
                "cost_median": on.median / off.median - 1,
            }
            for operation, (on, off) in verify_cost.items()
        ],
    }
    return rows, info


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def file_count(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], temp_dirs=True)
    if args.quick:
        shape = (96, 91, 180)
        variants = [(24, 91, 180), (4, 91, 180)]
        repeat, write_repeat, steps = 3, 1, 20
    else:
        shape = (365, 181, 360)
        variants = [(30, 181, 360), (4, 181, 360)]
        repeat, write_repeat, steps = 15, 5, 50
    ds = climate_cube(*shape)
    print(
        f"cube {shape} float32, {ds['t2m'].nbytes / 1e6:.1f} MB; "
        f"best and median of {repeat} repeats (writes: {write_repeat})"
    )
    rows: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ipldwrite-bench-", dir=args.tmpdir) as tmp:
        scratch = Scratch(Path(tmp), sync=not args.quick)
        for chunks in variants:
            variant_rows, info = bench_variant(
                ds, chunks, scratch, repeat=repeat, write_repeat=write_repeat, steps=steps
            )
            rows.extend(variant_rows)
            infos.append(info)

    table = []
    for r in rows:
        ours, theirs = r["ours"], r["open_zarr"]
        target = "-" if r["target_met"] is None else verdict(r["target_met"])
        table.append(
            [
                r["variant"],
                r["operation"],
                f"{ours['best_s']:.3f}",
                f"{ours['median_s']:.3f}",
                f"{theirs['best_s']:.3f}",
                f"{theirs['median_s']:.3f}",
                f"{r['ratio_theirs_over_ours']:.2f}x",
                f"{r['ratio_median']:.2f}x",
                target,
            ]
        )
    print_table(
        "Read back (seconds; ratio = open_zarr / ours, > 1: ours faster; target >= 0.80x on reads)",
        [
            "variant",
            "operation",
            "ours best",
            "median",
            "zarr best",
            "median",
            "ratio",
            "(median)",
            "target",
        ],
        table,
        align="llrrrrrrl",
    )
    print_table(
        "On disk",
        ["variant", "ours MB", "ours files", "zarr MB", "zarr files"],
        [
            [
                i["variant"],
                f"{i['ours_bytes_on_disk'] / 1e6:.1f}",
                i["ours_files"],
                f"{i['zarr_bytes_on_disk'] / 1e6:.1f}",
                i["zarr_files"],
            ]
            for i in infos
        ],
    )
    print_table(
        "Cost of verified reads (the default) over verify=False (seconds)",
        ["variant", "operation", "verified best", "median", "unverified best", "median", "cost"],
        [
            [
                i["variant"],
                c["operation"],
                f"{c['verified']['best_s']:.3f}",
                f"{c['verified']['median_s']:.3f}",
                f"{c['unverified']['best_s']:.3f}",
                f"{c['unverified']['median_s']:.3f}",
                f"{c['cost_best']:+.1%}",
            ]
            for i in infos
            for c in i["verify_cost"]
        ],
        align="llrrrrr",
    )
    write_results(
        args,
        "read",
        {
            "shape": list(shape),
            "dtype": "float32",
            "variants": [list(v) for v in variants],
            "repeat": repeat,
            "write_repeat": write_repeat,
            "random_access_steps": steps,
            "target_ratio": TARGET,
            "tmpdir": str(args.tmpdir or tempfile.gettempdir()),
        },
        {"rows": rows, "variants": infos},
    )


if __name__ == "__main__":
    main()
