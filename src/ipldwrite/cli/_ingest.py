from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from ipldwrite.cli._common import (
    blockstore_option,
    emit,
    json_option,
    open_blockstore,
    show_progress,
)

#: How long to wait for a --scheduler to answer: an address nobody serves fails fast.
CONNECT_TIMEOUT = "5s"


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A distributed client: on --scheduler, or a LocalCluster of --workers processes."""
    if scheduler is None and workers is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise click.BadParameter(
                f"no Dask scheduler answers at {scheduler} ({exc.__class__.__name__} after "
                f"{CONNECT_TIMEOUT}): start one (`dask scheduler`), check the address, or use "
                "--workers N for a local cluster",
                param_hint="--scheduler",
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _chunks(values: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for value in values:
        dim, _, size = value.partition("=")
        if not size.isdigit() or int(size) <= 0:
            raise click.BadParameter(f"{value!r}: expected DIM=SIZE with a positive integer")
        out[dim] = int(size)
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--concat-dim", required=True, help="Dimension the files follow each other along.")
@click.option(
    "--chunks",
    "chunks",
    multiple=True,
    metavar="DIM=SIZE",
    help="zarr chunk size, e.g. time=24. Repeatable.",
)
@click.option(
    "--scheduler", default=None, metavar="ADDRESS", help="A running Dask scheduler (tcp://…)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Start a local cluster of N worker processes.",
)
@click.option(
    "--per-file", is_flag=True, help="Write every file as its own dataset, then concat them."
)
@blockstore_option
@json_option
def ingest(
    paths: tuple[str, ...],
    concat_dim: str,
    chunks: tuple[str, ...],
    scheduler: str | None,
    workers: int | None,
    per_file: bool,
    blockstore: str | None,
    as_json: bool,
) -> None:
    """Write an archive of NetCDF files (glob patterns) as one dataset; print its root CID."""
    from ipldwrite.ingest import ingest as run

    store = open_blockstore(blockstore, create=True)
    with dask_client(scheduler, workers) as client:
        root = run(
            list(paths),
            concat_dim,
            store,
            chunks=_chunks(chunks),
            client=client,
            per_file=per_file,
            progress=show_progress(as_json),
        )
    emit(as_json, {"root": str(root)}, str(root))
