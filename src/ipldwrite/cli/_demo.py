from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext

import click
import numpy as np

from ipldwrite.cli._common import (
    blockstore_option,
    emit,
    json_option,
    open_blockstore,
    show_progress,
)


@click.command()
@blockstore_option
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=365,
    show_default=True,
    help="Number of days to generate.",
)
@json_option
def demo(blockstore: str | None, days: int, as_json: bool) -> None:
    """Write a small climate dataset, print its root CID and read it back.

    The dataset is generated (daily 2 m temperature and precipitation on a 2.5° grid);
    it goes into the default blockstore unless --blockstore says otherwise.
    """
    from dask.diagnostics.progress import ProgressBar

    from ipldwrite.datasets import demo_climate
    from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

    store = open_blockstore(blockstore, create=True)
    ds = demo_climate(days)
    encoding = {str(v): {"chunks": (min(30, days), 73, 144)} for v in ds.data_vars}
    if not as_json:
        click.echo(f"Writing {ds.nbytes / 1e6:.1f} MB of demo climate data into {store!r}")
    start = time.perf_counter()
    progress: AbstractContextManager[object] = (
        ProgressBar(out=click.get_text_stream("stderr"))  # type: ignore[no-untyped-call,operator]
        if show_progress(as_json)
        else nullcontext()
    )
    with progress:
        root = to_ipld_zarr(
            ds.chunk({"time": min(30, days)}), store, encoding=encoding, progress=False
        )
    written = time.perf_counter() - start
    back = open_ipld_zarr(root, store)
    start = time.perf_counter()
    same = bool(np.array_equal(back["t2m"].values, ds["t2m"].values))
    read = time.perf_counter() - start
    if not same:
        raise click.ClickException(f"read-back of {root} differs from what was written")
    emit(
        as_json,
        {
            "root": str(root),
            "blockstore": str(store),
            "write_seconds": written,
            "read_seconds": read,
        },
        "\n".join(
            [
                f"Root CID: {root}",
                f"Wrote in {written:.2f} s; read back t2m in {read:.2f} s, identical.",
                "",
                repr(back),
                "",
                f"Open it in Python:  ipldwrite.open_ipld_zarr({str(root)!r})",
                f"Look inside:        ipldwrite ls {root}",
            ]
        ),
    )
