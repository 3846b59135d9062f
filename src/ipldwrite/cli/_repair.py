"""Mending a blockstore: replace damaged blocks from a good copy; find (and drop) orphans."""

from __future__ import annotations

import click

from ipldwrite.cli._common import (
    blockstore_option,
    emit,
    emit_report,
    json_option,
    open_blockstore,
)


@click.command("repair")
@click.argument("root")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="SOURCE",
    help="Where good copies live: a .car file, a directory of CARs, or another blockstore.",
)
@blockstore_option
@json_option
def repair_cmd(root: str, source: str, blockstore: str | None, as_json: bool) -> None:
    """Replace every missing or corrupt block under ROOT with its copy from SOURCE.

    Each copy is hashed before it is stored. Exits with 1 when damage remains (SOURCE
    lacks the block or holds it damaged too); `ipldwrite verify ROOT` passes otherwise.
    """
    from ipldwrite.audit import repair

    report = repair(root, open_blockstore(blockstore), open_blockstore(source))
    lines = [
        *(f"repaired block {p.cid} at {p.path}" for p in report.repaired),
        *(f"not repaired: {p}" for p in report.problems),
    ]
    summary = (
        f"{len(report.repaired)} blocks repaired, {len(report.problems)} problems left, "
        f"{report.blocks} blocks sound"
    )
    emit_report(as_json, report, lines, summary)


@click.command("gc")
@click.argument("roots", nargs=-1, required=True)
@click.option(
    "--delete",
    is_flag=True,
    help="Delete the orphans (only while no write uses the blockstore). Default: report.",
)
@blockstore_option
@json_option
def gc_cmd(roots: tuple[str, ...], delete: bool, blockstore: str | None, as_json: bool) -> None:
    """Report the blocks that none of ROOTS reaches (left by crashed or abandoned writes).

    Only lists them unless --delete is given.
    """
    from ipldwrite.audit import gc

    report = gc(roots, open_blockstore(blockstore), delete=delete)
    text = (
        f"{len(report.orphans)} orphan blocks ({report.orphan_bytes:,} bytes) not reachable "
        f"from {len(roots)} roots ({report.reachable} blocks reachable)"
        + (f"; {report.deleted} deleted" if delete else "; run with --delete to remove them")
        + (f"; {len(report.missing)} reachable blocks missing" if report.missing else "")
    )
    emit(as_json, report.to_json(), text)


COMMANDS = [repair_cmd, gc_cmd]
