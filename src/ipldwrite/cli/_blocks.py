"""Moving and checking blocks: CAR export/import, verify, stat."""

from __future__ import annotations

import os

import click

from ipldwrite.cli._common import (
    blockstore_option,
    emit,
    emit_report,
    json_option,
    open_blockstore,
    show_progress,
)


@click.command("export-car")
@click.argument("root")
@click.argument("path")
@click.option("--v2", "version2", is_flag=True, help="Write CARv2 with a go-car index.")
@click.option(
    "--split",
    type=click.IntRange(min=1),
    default=None,
    metavar="MIB",
    help="Write PATH as a directory of CARv2 files of at most MIB MiB each, plus a root CAR.",
)
@blockstore_option
@json_option
def export_car_cmd(
    root: str, path: str, version2: bool, split: int | None, blockstore: str | None, as_json: bool
) -> None:
    """Write the whole dataset under ROOT into one CAR file (or --split into several)."""
    from ipldwrite.car import export_car, export_car_shards

    store = open_blockstore(blockstore)
    if split is not None:
        shards = export_car_shards(root, store, path, max_bytes=split << 20)
        files = [str(f) for f in shards.files]
        emit(
            as_json,
            {"root": str(root), "directory": path, "files": files, "blocks": shards.blocks},
            f"{shards.blocks} blocks in {len(files)} CAR files under {path} "
            f"(root CAR: {os.path.basename(shards.root_car)})",
        )
        return
    summary = export_car(root, store, path, version=2 if version2 else 1)
    emit(
        as_json,
        {"root": str(root), "path": path, "blocks": summary.blocks, "bytes": summary.size},
        str(summary),
    )


@click.command("to-unixfs")
@click.argument("root")
@blockstore_option
@json_option
def to_unixfs_cmd(root: str, blockstore: str | None, as_json: bool) -> None:
    """The UnixFS directory tree of a dataset (what `ipfs add -r` of its zarr store gives).

    Chunk files are the dataset's own chunk blocks; only directories and zarr.json are new.
    """
    from ipldwrite.convert import to_unixfs

    cid = to_unixfs(root, open_blockstore(blockstore))
    emit(as_json, {"root": str(root), "unixfs": str(cid)}, str(cid))


@click.command("from-unixfs")
@click.argument("cid")
@blockstore_option
@json_option
def from_unixfs_cmd(cid: str, blockstore: str | None, as_json: bool) -> None:
    """The zarr-on-IPLD dataset of a UnixFS zarr tree (ours, `ipfs add -r`, `ipfs-car pack`)."""
    from ipldwrite.convert import from_unixfs

    root = from_unixfs(cid, open_blockstore(blockstore))
    emit(as_json, {"unixfs": str(cid), "root": str(root)}, str(root))


@click.command("import-car")
@click.argument("path")
@blockstore_option
@json_option
def import_car_cmd(path: str, blockstore: str | None, as_json: bool) -> None:
    """Verify every block of a CAR, add them to the blockstore, print the root."""
    from ipldwrite.car import import_car

    root = import_car(path, open_blockstore(blockstore, create=True))
    emit(as_json, {"root": str(root)}, str(root))


@click.command("verify")
@click.argument("root")
@blockstore_option
@json_option
def verify_cmd(root: str, blockstore: str | None, as_json: bool) -> None:
    """Walk the whole DAG, re-hash every block, report missing and corrupt blocks.

    Exits with 1 when anything is wrong.
    """
    from ipldwrite.audit import verify

    report = verify(root, open_blockstore(blockstore), progress=show_progress(as_json))
    summary = (
        f"{report.blocks} blocks, {report.bytes} bytes checked, {len(report.problems)} problems"
    )
    emit_report(as_json, report, map(str, report.problems), summary)


@click.command("stat")
@click.argument("root")
@blockstore_option
@json_option
def stat_cmd(root: str, blockstore: str | None, as_json: bool) -> None:
    """Blocks, bytes, depth and deduplication of a dataset's DAG."""
    from ipldwrite.audit import stat

    s = stat(root, open_blockstore(blockstore), progress=show_progress(as_json))
    text = (
        f"{s.blocks} blocks, {s.bytes:,} bytes ({s.node_blocks} nodes, {s.node_bytes:,} bytes; "
        f"{s.chunk_blocks} chunk blocks, {s.chunk_bytes:,} bytes)\n"
        f"depth {s.depth}, {s.references} references, dedup ratio {s.dedup_ratio:.2f}"
    )
    emit(as_json, s.to_json(), text)


COMMANDS = [
    export_car_cmd,
    import_car_cmd,
    verify_cmd,
    stat_cmd,
    to_unixfs_cmd,
    from_unixfs_cmd,
]
