"""The distributed writer's Dask side.

Every Dask block becomes a task that writes its region as a partial dataset (chunk blocks plus
the metadata nodes that reach them, on top of the template) and returns that partial's root
CID. A ``dask.array.reduction`` tree with ``split_every`` fan-in merges the partial roots on
the workers, rewriting metadata nodes only. Only CIDs (36 bytes each) travel between tasks
and to the client.

With a :class:`~ipldwrite.blockstore.TaskCarBlockstore` no blockstore is shared at all: each
task (write or merge) buffers its blocks and writes them as one CAR named by its root, and
reads only the CARs of its inputs and of the template.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt

from ipldwrite.blockstore import Blockstore, TaskCarBlockstore
from ipldwrite.dag import merge_datasets
from ipldwrite.errors import UnsafeBlockstoreError
from ipldwrite.ipld import Link, link_str
from ipldwrite.store import write_region

__all__ = [
    "check_blockstore_reachable",
    "compute_root",
    "merge_tree",
    "partial_roots",
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
    path: str,
    origin: tuple[int, ...],
    write_empty_chunks: bool,
    block_info: dict[Any, Any] | None = None,
) -> npt.NDArray[Any]:
    assert block_info is not None
    location = block_info[0]["array-location"]
    selection = tuple(
        slice(o + start, o + stop) for o, (start, stop) in zip(origin, location, strict=True)
    )
    # One CAR per task: the task's own buffer, written out under the partial root's name.
    target = blockstore.open_task() if isinstance(blockstore, TaskCarBlockstore) else blockstore
    root = write_region(
        target,
        Link(template),
        path,
        selection,
        block,
        write_empty_chunks=write_empty_chunks,
    )
    if isinstance(blockstore, TaskCarBlockstore):
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
) -> da.Array:
    """A 1-D object array of partial-root CIDs (as bytes), one per block of ``source``."""
    origin = tuple((s.start or 0) for s in region) if region else (0,) * source.ndim
    roots = da.map_blocks(
        _write_block,
        source,
        dtype=object,
        chunks=tuple((1,) * len(c) for c in source.chunks),
        meta=np.empty((0,) * source.ndim, dtype=object),
        name=f"ipldwrite-write-{path.replace('/', '.')}-{dask.base.tokenize(source, template)}",
        blockstore=blockstore,
        template=template.cid_bytes,
        path=path,
        origin=origin,
        write_empty_chunks=write_empty_chunks,
    )
    return roots.reshape(-1)


def _identity(x: npt.NDArray[Any], axis: Any = None, keepdims: bool = True) -> npt.NDArray[Any]:
    return x


def _merge_partials(
    x: npt.NDArray[Any] | list[Any],
    axis: Any = None,
    keepdims: bool = True,
    *,
    blockstore: Blockstore,
) -> npt.NDArray[Any]:
    raw = np.asarray(x, dtype=object).ravel()
    roots = [Link(b) for b in raw]
    # A merge reads its inputs' CARs (named by their roots) and writes the merged metadata.
    target = blockstore
    if isinstance(blockstore, TaskCarBlockstore):
        target = blockstore.open_task(roots)
    merged = merge_datasets(target, roots, labels=[f"partial dataset {link_str(r)}" for r in roots])
    if isinstance(blockstore, TaskCarBlockstore):
        blockstore.finish_task(target, merged)
    out = np.empty((1,) if keepdims else (), dtype=object)
    out[...] = merged.cid_bytes
    return out


def merge_tree(
    partials: Sequence[da.Array],
    *,
    blockstore: Blockstore,
    template: Link,
    split_every: int | None = None,
) -> da.Array:
    """A 0-d object array that computes to the merged root (bytes), merged on the workers."""
    if not partials:
        root = np.empty((), dtype=object)
        root[...] = template.cid_bytes
        return da.from_array(root, chunks=())
    flat = da.concatenate(list(partials)) if len(partials) > 1 else partials[0]
    merge = partial(_merge_partials, blockstore=blockstore)
    return da.reduction(
        flat,
        chunk=_identity,
        combine=merge,
        aggregate=merge,
        axis=0,
        keepdims=False,
        split_every=split_every or 16,
        concatenate=True,
        dtype=object,
        meta=np.empty((), dtype=object),
        name="ipldwrite-merge",
    )


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
    bar = show_progress(future, notebook=notebook)
    if notebook and bar is not None:
        from IPython.display import display

        display(bar)


def compute_root(
    root: da.Array,
    *,
    client: Any = None,
    progress: bool | None = None,
    retries: int = 0,
) -> Link:
    """Compute the merge tree with the given (or current) scheduler; show progress."""
    client = _current_client(client)
    if client is not None:
        future = client.compute(root, retries=retries)
        if _progress_wanted(progress):
            _show_distributed_progress(future)
        value = future.result()
    else:
        bar: AbstractContextManager[object] = nullcontext()
        if _progress_wanted(progress):
            from dask.diagnostics.progress import ProgressBar

            bar = ProgressBar()
        with bar:
            (value,) = dask.base.compute(root)
    return Link(bytes(np.asarray(value, dtype=object).item()))
