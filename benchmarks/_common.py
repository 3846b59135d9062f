"""Helpers shared by the benchmark scripts: arguments, timing, tables, JSON results.

Timings use :func:`time.perf_counter`, run warm-ups first and keep every repeat, so a result
can be read as best (least disturbed by the machine) or median (typical). Nothing here
asserts on a timing: a slow machine makes a slow number, never a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The load average when the benchmark started: other work on the machine skews timings.
START_LOAD = os.getloadavg()

#: Packages whose versions every result file records (missing ones are recorded as None).
PACKAGES = (
    "ipldwrite",
    "cbrrr",
    "dag-cbor",
    "multiformats",
    "libipld",
    "numpy",
    "zarr",
    "xarray",
    "dask",
    "numcodecs",
)


def parse_args(description: str, *, temp_dirs: bool = False) -> argparse.Namespace:
    """The common options; ``temp_dirs`` adds ``--tmpdir`` for scripts that write files."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small, fast variant (< 20 s) for smoke tests; writes <name>.quick.json",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR,
        help=f"directory for the JSON results (default: {RESULTS_DIR})",
    )
    if temp_dirs:
        parser.add_argument(
            "--tmpdir",
            type=Path,
            default=None,
            help="where the temporary stores go (default: the system's temporary directory; "
            "/dev/shm measures without the disk's file-creation cost)",
        )
    return parser.parse_args()


class Scratch:
    """Fresh, numbered directories under one root; making one removes the previous one.

    The removal and an ``os.sync()`` happen here, untimed, so the writeback of one repeat
    does not land in the next one's time and old repeats never pile up in the page cache.
    """

    def __init__(self, root: Path, *, sync: bool = True) -> None:
        self.root = root
        self.sync = sync  # off for --quick runs, whose timings are not the point
        self.count = 0
        self.current: Path | None = None

    def fresh(self) -> Path:
        if self.current is not None:
            shutil.rmtree(self.current)
        if self.sync:
            os.sync()
        self.count += 1
        self.current = self.root / f"run{self.count}"
        return self.current


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of each timed repeat (warm-ups excluded)."""

    seconds: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def rate(self, amount: float) -> float:
        """``amount`` per second at the best repeat (links/s, MB/s, ...)."""
        return amount / self.best

    def to_json(self) -> dict[str, Any]:
        return {"best_s": self.best, "median_s": self.median, "repeats_s": list(self.seconds)}


def measure(
    fn: Callable[[], object],
    *,
    repeat: int = 5,
    warmup: int = 1,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Time ``fn()`` ``repeat`` times after ``warmup`` untimed calls.

    ``setup`` runs before every call, untimed (fresh directories, cleared caches). A garbage
    collection before each call keeps one repeat's garbage out of the next one's time.
    """
    times = []
    for i in range(warmup + repeat):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
    return Timing(tuple(times))


def measure_pair(
    a: Callable[[], object],
    b: Callable[[], object],
    *,
    repeat: int = 5,
    warmup: int = 1,
    setup_a: Callable[[], object] | None = None,
    setup_b: Callable[[], object] | None = None,
) -> tuple[Timing, Timing]:
    """Time ``a`` and ``b`` in alternation (a b, b a, a b, ...), so that drift in the
    machine's state (page cache, other load, thermal) falls on both sides equally."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(warmup + repeat):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            timing = measure(
                (a, b)[side], repeat=1, warmup=0, setup=(setup_a, setup_b)[side]
            ).seconds[0]
            if i >= warmup:
                times[side].append(timing)
    return Timing(tuple(times[0])), Timing(tuple(times[1]))


def verdict(met: bool) -> str:
    return "PASS" if met else "FAIL"


def fmt_rate(value: float | None) -> str:
    """Human-readable rate: 12.3M, 456k, 7.89."""
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    align: str | None = None,
) -> None:
    """A plain-text table. ``align`` has one letter per column, ``l`` or ``r`` (default:
    the first column left-aligned, the rest right-aligned, as for numbers)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if a == "l" else cell.rjust(width)
            for cell, width, a in zip(row, widths, align, strict=True)
        ).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg_at_start": list(START_LOAD),
        "loadavg_at_end": list(os.getloadavg()),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def write_results(
    args: argparse.Namespace, name: str, config: dict[str, Any], results: Any
) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``<name>.quick.json`` with ``--quick``, so
    a smoke run never overwrites the numbers of a full run)."""
    load = max(START_LOAD[0], os.getloadavg()[0])
    if load > 0.5 * (os.cpu_count() or 1):
        print(
            f"\nwarning: the machine was busy (1-minute load average up to {load:.1f} on "
            f"{os.cpu_count()} cores); other work may have slowed these numbers down"
        )
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{name}{'.quick' if args.quick else ''}.json"
    payload = {
        "benchmark": name,
        "quick": args.quick,
        "machine": machine_info(),
        "config": config,
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nresults written to {path}")
    return path


def source_state() -> dict[str, Any]:
    """The git commit the numbers were taken at, and whether src/ had uncommitted changes
    (src/ moves fast; a number without its commit cannot be compared later)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent

    def git(*argv: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=root, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_dirty": None if status is None else bool(status),
    }
