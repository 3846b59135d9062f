"""Talking to IPFS: serve a blockstore as a trustless gateway, push a dataset into a node."""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import click

from ipldwrite.blockstore import Blockstore
from ipldwrite.cli._common import blockstore_option, emit, json_option, open_blockstore


@click.command("serve")
@click.argument("blockstore", required=False, envvar="IPLDWRITE_BLOCKSTORE")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port (0: any free).")
def serve_cmd(blockstore: str | None, host: str, port: int) -> None:
    """Serve BLOCKSTORE (a directory, CARs, a node URL…) as a trustless IPFS gateway.

    Any IPFS HTTP client can then read it: GET /ipfs/<cid>?format=raw or ?format=car.
    Listens on 127.0.0.1 unless --host says otherwise; stop with Ctrl-C.
    """
    from ipldwrite.gateway import GatewayServer

    server = GatewayServer(open_blockstore(blockstore), host, port)
    click.echo(f"serving {server.blockstore!r} at {server.url}/ipfs/<cid>", err=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops
        server.serve_forever()


@click.command("push")
@click.argument("root")
@click.option("--to", "to", required=True, metavar="URL", help="The node's RPC API (http://…).")
@click.option(
    "--as",
    "mode",
    type=click.Choice(["car", "blocks"]),
    default="car",
    show_default=True,
    help="One dag/import of a CAR, or block/put of the blocks the node lacks.",
)
@click.option("--pin/--no-pin", default=True, show_default=True, help="Pin the root afterwards.")
@blockstore_option
@json_option
def push_cmd(
    root: str, to: str, mode: str, pin: bool, blockstore: str | None, as_json: bool
) -> None:
    """Copy the DAG under ROOT from --blockstore into the IPFS node at URL, and pin it."""
    from ipldwrite.blockstore import DagImporter, resolve_blockstore

    source = open_blockstore(blockstore)
    node = resolve_blockstore(to)
    if not isinstance(node, DagImporter):
        raise click.BadParameter(f"{to!r} is not an IPFS node's RPC API URL", param_hint="--to")
    started = time.perf_counter()
    if mode == "car":
        from ipldwrite.car import export_car

        with tempfile.TemporaryDirectory(prefix="ipldwrite-push-") as tmp:
            summary = export_car(root, source, Path(tmp) / "push.car")
            with open(summary.path, "rb") as f:
                node.import_car(f)
        blocks, size = summary.blocks, summary.size
    else:
        blocks, size = _push_blocks(root, source, node)
    if pin:
        node.pin(root)
    seconds = time.perf_counter() - started
    emit(
        as_json,
        {"root": root, "to": to, "blocks": blocks, "bytes": size, "pinned": pin},
        f"{root}: {blocks} blocks, {size:,} bytes into {to} in {seconds:.1f} s"
        + (" (pinned)" if pin else ""),
    )


def _push_blocks(root: str, source: Blockstore, node: Blockstore) -> tuple[int, int]:
    """block/put every block under ``root`` that the node lacks, in concurrent batches."""
    from ipldwrite.ipld import links_of, to_link

    sent = size = 0
    seen: set[bytes] = set()
    level = [to_link(root)]
    while level:  # breadth first: one batch of existence checks and puts per level
        level = [x for x in dict.fromkeys(level) if x.cid_bytes not in seen]
        seen.update(x.cid_bytes for x in level)
        blocks = list(source.get_many(level))
        lacking = [b for b, has in zip(blocks, node.has_many(level), strict=True) if not has]
        node.put_many(lacking)
        sent += len(lacking)
        size += sum(len(d) for _, d in lacking)
        level = [child for link, data in blocks for child in links_of(link, data)]
    return sent, size


COMMANDS = [serve_cmd, push_cmd]
