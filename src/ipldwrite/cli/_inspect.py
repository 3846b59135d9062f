"""Commands that look inside a dataset without reading chunk data."""

from __future__ import annotations

import base64
import json
import sys
from math import prod
from typing import Any

import click

from ipldwrite.cli._common import (
    blockstore_option,
    emit,
    fail,
    json_option,
    open_blockstore,
)
from ipldwrite.cli._errors import EXIT_DAMAGED
from ipldwrite.dag import ArrayNode, DatasetReader, GroupNode, NodeIO, iter_entries
from ipldwrite.ipld import to_link


@click.command()
@click.argument("cid")
@blockstore_option
@click.option("--group", default=None, help="Path of the group to show.")
@json_option
def info(cid: str, blockstore: str | None, group: str | None, as_json: bool) -> None:
    """Show a dataset like xarray's repr, from metadata only (--json: xarray's to_dict)."""
    from ipldwrite.xarray import open_ipld_zarr

    ds = open_ipld_zarr(cid, open_blockstore(blockstore), group=group)
    emit(as_json, {"root": cid, "group": group, **ds.to_dict(data=False)}, repr(ds))


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
@json_option
def cat(target: str, blockstore: str | None, as_json: bool) -> None:
    """Print the raw bytes of one zarr key, e.g. CID/t2m/zarr.json.

    With --json: the key, its size and its value (parsed if it is JSON, else base64).
    """
    from ipldwrite.store import IPLDStore

    cid, _, key = target.partition("/")
    if not key:
        raise click.UsageError("give CID/KEY, for example bafy…/zarr.json")
    store = IPLDStore(open_blockstore(blockstore), cid)
    value = store.get_sync(key)
    if value is None:
        fail(f"{key!r} is not a key of {cid}", EXIT_DAMAGED)
    data = value.to_bytes()
    if not as_json:
        sys.stdout.buffer.write(data)
        return
    out: dict[str, Any] = {"root": cid, "key": key, "size": len(data)}
    try:
        out["json"] = json.loads(data)
    except ValueError:
        out["base64"] = base64.b64encode(data).decode("ascii")
    emit(True, out, "")
