"""Commands that look inside a dataset without reading chunk data."""

from __future__ import annotations

import sys
from math import prod
from typing import Any

import click

from ipldwrite.cli._common import blockstore_option, emit, json_option, open_blockstore
from ipldwrite.dag import ArrayNode, DatasetReader, GroupNode, NodeIO, iter_entries
from ipldwrite.ipld import to_link


@click.command()
@click.argument("cid")
@blockstore_option
@click.option("--group", default=None, help="Path of the group to show.")
def info(cid: str, blockstore: str | None, group: str | None) -> None:
    """Show a dataset like xarray's repr, from metadata only."""
    from ipldwrite.xarray import open_ipld_zarr

    click.echo(repr(open_ipld_zarr(cid, open_blockstore(blockstore), group=group)))


def _describe(path: str, node: ArrayNode | GroupNode, io: NodeIO | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": "/" + path,
        "type": "array" if isinstance(node, ArrayNode) else "group",
    }
    if isinstance(node, ArrayNode) and io is not None:
        doc = node.doc
        entry.update(
            shape=list(node.keys.shape),
            chunks=list(node.keys.chunk_shape),
            dtype=doc.get("data_type"),
            dims=doc.get("dimension_names"),
            chunks_stored=sum(1 for _ in iter_entries(io, node.tiling, node.manifest)),
            chunks_total=prod(node.tiling.grid),
        )
    return entry


@click.command()
@click.argument("cid")
@blockstore_option
@json_option
def ls(cid: str, blockstore: str | None, as_json: bool) -> None:
    """List the hierarchy: groups, arrays with shape, dtype, chunking and stored chunks."""
    store = open_blockstore(blockstore)
    reader = DatasetReader(store, to_link(cid))
    io = NodeIO(store)
    rows = [_describe(path, node, io) for path, node in reader.walk()]
    lines = []
    for row in rows:
        depth = row["path"].count("/") - 1 if row["path"] != "/" else 0
        indent = "  " * depth
        name = row["path"].rsplit("/", 1)[-1]
        if row["type"] == "group":
            lines.append(f"{indent}{name}/" if name else f"/  (root {cid})")
        else:
            dims = ",".join(row["dims"] or [])
            stored = f"{row['chunks_stored']}/{row['chunks_total']} stored"
            lines.append(
                f"{indent}{name}  {row['dtype']} ({dims}) {tuple(row['shape'])} "
                f"chunks {tuple(row['chunks'])}  {stored}"
            )
    emit(as_json, {"root": cid, "nodes": rows}, "\n".join(lines))


@click.command()
@click.argument("target", metavar="CID/KEY")
@blockstore_option
def cat(target: str, blockstore: str | None) -> None:
    """Print the raw bytes of one zarr key, e.g. CID/t2m/zarr.json."""
    from ipldwrite.store import IPLDStore

    cid, _, key = target.partition("/")
    if not key:
        raise click.UsageError("give CID/KEY, for example bafy…/zarr.json")
    store = IPLDStore(open_blockstore(blockstore), cid)
    value = store.get_sync(key)
    if value is None:
        raise click.ClickException(f"{key!r} is not a key of {cid}")
    sys.stdout.buffer.write(value.to_bytes())
