"""The distributed writer's Dask side.

Every Dask block becomes a task that writes its region as a partial dataset (chunk blocks plus
the metadata nodes that reach them, on top of the template) and returns that partial's root
CID. A tree of merge tasks with ``split_every`` fan-in, built directly over the write tasks'
keys, merges the partial roots on the workers, rewriting metadata nodes only. Only CIDs (36
bytes each) travel between tasks and to the client.

With a :class:`~ipldwrite.blockstore.TaskCarBlockstore` no blockstore is shared at all: each
task (write or merge) buffers its blocks and writes them as one CAR named by its root, and
reads only the CARs of its inputs and of the template.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, redirect_stdout
from functools import partial
from typing import Any, cast

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from multiformats import CID

from ipldwrite.blockstore import Blockstore
from ipldwrite.dag import merge_datasets
from ipldwrite.errors import UnsafeBlockstoreError
from ipldwrite.ipld import Link, LinkLabel, to_link
from ipldwrite.store import write_region

write_log = logging.getLogger("ipldwrite.write")
merge_log = logging.getLogger("ipldwrite.merge")

__all__ = [
    "check_blockstore_reachable",
    "chunk_threads_for",
    "compute_root",
    "dask_threads",
    "merge_roots",
    "merge_tree",
    "partial_roots",
    "result_link",
]


def _current_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def check_blockstore_reachable(blockstore: Blockstore, client: Any = None) -> None:
    """Refuse a blockstore the workers cannot share, before anything is written."""
    if blockstore.shared_between_processes:
        return
    client = _current_client(client)
    if client is not None:
        pids = set(client.run(os.getpid).values())
        elsewhere = pids - {os.getpid()}
    else:
        scheduler = dask.config.get("scheduler", None)
        elsewhere = {"processes"} if scheduler in ("processes", "multiprocessing") else set()
    if elsewhere:
        raise UnsafeBlockstoreError(
            f"{blockstore!r} lives in this process, but the Dask workers run in other "
            "processes and would write into copies that vanish. Use a DirectoryBlockstore "
            "on a path every worker can reach (a shared filesystem for several machines), "
            "or a threaded / in-process scheduler."
        )


def _write_block(
    block: npt.NDArray[Any],
    *,
    blockstore: Blockstore,
    template: bytes,
    base: bytes,
    path: str,
    origin: tuple[int, ...],
    write_empty_chunks: bool,
    chunk_threads: int | None,
    block_info: dict[Any, Any] | None = None,
) -> npt.NDArray[Any]:
    assert block_info is not None
    location = block_info[0]["array-location"]
    selection = tuple(
        slice(o + start, o + stop) for o, (start, stop) in zip(origin, location, strict=True)
    )
    target = blockstore.open_task()
    root = write_region(
        target,
        Link(template),
        path,
        selection,
        block,
        write_empty_chunks=write_empty_chunks,
        chunk_threads=chunk_threads,
        base=Link(base),
    )
    blockstore.finish_task(target, root)
    out = np.empty((1,) * block.ndim, dtype=object)
    out[...] = root.cid_bytes
    return out


def partial_roots(
    source: da.Array,
    *,
    blockstore: Blockstore,
    template: Link,
    path: str,
    region: Sequence[slice] | None,
    write_empty_chunks: bool = False,
    chunk_threads: int | None = None,
    base: Link | None = None,
) -> da.Array:
    """An object array of partial-root CIDs (as bytes), one per block of ``source``;
    ``chunk_threads`` encode each block's chunks (see :func:`chunk_threads_for`).
    Partials are ``base`` (default: ``template``) plus a block's chunks; existing chunks
    are read from ``template`` (see :func:`~ipldwrite.store.write_region`)."""
    origin = tuple((s.start or 0) for s in region) if region else (0,) * source.ndim
    token = dask.base.tokenize(source, template, base)
    return da.map_blocks(
        _write_block,
        source,
        dtype=object,
        chunks=tuple((1,) * len(c) for c in source.chunks),
        meta=np.empty((0,) * source.ndim, dtype=object),
        name=f"ipldwrite-write-{path.replace('/', '.')}-{token}",
        blockstore=blockstore,
        template=template.cid_bytes,
        base=(base or template).cid_bytes,
        path=path,
        origin=origin,
        write_empty_chunks=write_empty_chunks,
        chunk_threads=chunk_threads,
    )


def dask_threads(client: Any = None) -> int:
    """How many tasks the current (or given) Dask scheduler runs at once."""
    client = _current_client(client)
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    scheduler = dask.config.get("scheduler", None)
    if scheduler in ("sync", "synchronous", "single-threaded"):
        return 1
    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def chunk_threads_for(write_tasks: int, client: Any = None) -> int | None:
    """Threads for encoding the chunks inside one write task: 1 when there are at least
    as many write tasks as Dask threads (Dask keeps every thread busy, and more threads
    per task would only contend), else None (zarr's default: one per CPU)."""
    return 1 if write_tasks >= dask_threads(client) else None


def result_link(value: Any) -> Link:
    """The root a write or merge task computed: its CID as bytes, bare or in the 1-element
    (or 0-d) object array that a Dask array's block or result holds."""
    return Link(bytes(np.asarray(value, dtype=object).item()))


def _merge_partials(roots: list[Any], blockstore: Blockstore) -> bytes:
    """One merge task: the merged root of its inputs (CIDs as bytes, or 1-element arrays
    of them as the write tasks return)."""
    links = [result_link(r) for r in roots]
    # A merge may need its inputs' blocks brought close (per-task CARs are named by roots).
    target = blockstore.open_task(links)
    merged = merge_datasets(target, links, kind="partial dataset")
    blockstore.finish_task(target, merged)
    merge_log.debug("merged %d partial datasets into %s", len(links), LinkLabel("", merged))
    return merged.cid_bytes


def tree_graph(
    inputs: Sequence[Any], merge: Callable[[list[Any]], Any], split_every: int, name: str
) -> tuple[dict[Any, Any], Any]:
    """A fan-in tree of ``merge`` tasks over ``inputs`` (Dask keys or CIDs as bytes):
    the graph and the key of its root.

    The first level depends on the inputs directly: no per-input task comes between a write
    task and its merge, so the scheduler handles P / split_every extra tasks, not P.
    """
    graph: dict[Any, Any] = {}
    level, depth = list(inputs), 0
    while len(level) > split_every:
        # As few groups as the fan-in allows, of even sizes: 17 inputs make groups of 9
        # and 8, not 16 and 1 (a task that merges nothing, and a longer critical path).
        groups = -(-len(level) // split_every)
        bounds = [len(level) * g // groups for g in range(groups + 1)]
        keys = []
        for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            key = (name, depth, j)
            graph[key] = (merge, level[lo:hi])
            keys.append(key)
        level, depth = keys, depth + 1
    # The root's key is (name,): the key of a 0-d Dask array named ``name``.
    graph[(name,)] = (merge, level)
    return graph, (name,)


def merge_tree(
    partials: Sequence[da.Array],
    *,
    blockstore: Blockstore,
    template: Link,
    split_every: int | None = None,
) -> da.Array:
    """A 0-d Dask array that computes to the merged root (bytes): the writes, merged on
    the workers.

    A Dask array rather than a Delayed so that computing it applies Dask's array
    optimisations: each write task stays fused with the blockwise work producing its block.
    """
    split = _check_split_every(split_every)
    if not partials:
        root = np.empty((), dtype=object)
        root[...] = template.cid_bytes
        return da.from_array(root, chunks=())
    inputs = [key for p in partials for key in flatten(p.__dask_keys__())]
    merge_log.info("merge tree over %d write tasks, fan-in %d", len(inputs), split)
    name = f"ipldwrite-merge-{dask.base.tokenize(*partials, split, blockstore)}"
    graph, _ = tree_graph(inputs, partial(_merge_partials, blockstore=blockstore), split, name)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=cast(Any, partials))
    return da.Array(hlg, name, chunks=(), dtype=object, meta=np.empty((), dtype=object))


def merge_roots(
    roots: Sequence[Link | CID | str], *, blockstore: Blockstore, split_every: int | None = None
) -> Delayed:
    """A Delayed that merges existing datasets by CID in a tree on the workers."""
    if not roots:
        raise ValueError("merge_roots needs at least one root")
    split = _check_split_every(split_every)
    raw = [to_link(r).cid_bytes for r in roots]
    name = f"ipldwrite-merge-{dask.base.tokenize(raw, split, blockstore)}"
    graph, root = tree_graph(raw, partial(_merge_partials, blockstore=blockstore), split, name)
    return Delayed(root, HighLevelGraph.from_collections(name, graph), layer=name)


def _check_split_every(split_every: int | None) -> int:
    # 32: a merge's cost is linear in its inputs, so a wider fan-in does the same work in
    # fewer levels and tasks (10^6 chunk refs from 10^4 partials: 3.1 s vs 4.2 s with 16),
    # and writes of up to 32 blocks finish with a single merge.
    split = 32 if split_every is None else split_every
    if not isinstance(split, int) or split < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
    return split


def _progress_wanted(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    if "ipykernel" in sys.modules:
        return True
    return sys.stderr.isatty()


def _show_distributed_progress(future: Any) -> None:
    from distributed import progress as show_progress

    # The notebook bar is an ipywidget, which is an optional dependency: without it, the
    # text bar works in notebooks as in terminals.
    notebook = "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None
    # The text bar blocks until the future is done and prints to stdout: send it to stderr,
    # where progress belongs (stdout carries the CID a script reads).
    with redirect_stdout(sys.stderr):
        bar = show_progress(future, notebook=notebook)
    if notebook and bar is not None:
        from IPython.display import display

        display(bar)


def compute_root(
    root: da.Array | Delayed,
    *,
    client: Any = None,
    progress: bool | None = None,
    retries: int = 0,
) -> Link:
    """Compute the merge tree with the given (or current) scheduler; show progress."""
    client = _current_client(client)
    start = time.perf_counter()
    if client is not None:
        future = client.compute(root, retries=retries)
        if _progress_wanted(progress):
            _show_distributed_progress(future)
        value = future.result()
    else:
        bar: AbstractContextManager[object] = nullcontext()
        if _progress_wanted(progress):
            from dask.diagnostics.progress import ProgressBar

            bar = ProgressBar(out=sys.stderr)
        with bar:
            (value,) = dask.base.compute(root)
    link = result_link(value)
    seconds = time.perf_counter() - start
    write_log.info("wrote %s in %.2f s (%s)", LinkLabel("", link), seconds, client or "threads")
    return link
