"""Dataset algebra from the shell: each command prints the new root CID."""

from __future__ import annotations

import json
from typing import Any

import click

from ipldwrite.cli._common import blockstore_option, emit, json_option, open_blockstore

_COMBINE = click.Choice(["override", "drop", "identical", "no_conflicts", "drop_conflicts"])


def _done(as_json: bool, root: object, **extra: Any) -> None:
    emit(as_json, {"root": str(root), **extra}, str(root))


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r}: expected {what}")
        out[key] = rest
    return out


def _group(func: Any) -> Any:
    return click.option("--group", default="", help="Path of the group to operate on.")(func)


@click.command("concat")
@click.argument("cids", nargs=-1, required=True)
@click.option("--dim", required=True, help="The existing dimension to concatenate along.")
@click.option("--combine-attrs", type=_COMBINE, default="override", show_default=True)
@click.option("--no-check-coords", is_flag=True, help="Skip reading the coordinate along DIM.")
@_group
@blockstore_option
@json_option
def concat_cmd(
    cids: tuple[str, ...],
    dim: str,
    combine_attrs: str,
    no_check_coords: bool,
    group: str,
    blockstore: str | None,
    as_json: bool,
) -> None:
    """Concatenate datasets along DIM without touching chunk data."""
    from ipldwrite.ops import concat

    root = concat(
        list(cids),
        dim,
        open_blockstore(blockstore),
        group=group,
        combine_attrs=combine_attrs,  # type: ignore[arg-type]
        check_coords=not no_check_coords,
    )
    _done(as_json, root)


@click.command("merge")
@click.argument("cids", nargs=-1, required=True)
@click.option("--combine-attrs", type=_COMBINE, default="no_conflicts", show_default=True)
@_group
@blockstore_option
@json_option
def merge_cmd(
    cids: tuple[str, ...], combine_attrs: str, group: str, blockstore: str | None, as_json: bool
) -> None:
    """Union of the variables of datasets that share coordinates (order does not matter)."""
    from ipldwrite.ops import merge

    root = merge(list(cids), open_blockstore(blockstore), group=group, combine_attrs=combine_attrs)  # type: ignore[arg-type]
    _done(as_json, root)


@click.command("append")
@click.argument("root")
@click.argument("other")
@click.option("--dim", required=True)
@blockstore_option
@json_option
def append_cmd(root: str, other: str, dim: str, blockstore: str | None, as_json: bool) -> None:
    """Extend dataset ROOT along DIM with dataset OTHER (a CID)."""
    from ipldwrite.ops import append

    _done(as_json, append(root, other, dim, open_blockstore(blockstore)))


def _slice(text: str) -> slice:
    try:
        start, _, stop = text.partition(":")
        return slice(int(start) if start else None, int(stop) if stop else None)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected START:STOP (integers)") from None


@click.command("subset")
@click.argument("root")
@click.option(
    "--isel",
    "indexers",
    multiple=True,
    required=True,
    metavar="DIM=START:STOP",
    help="Chunk-aligned positional slice, e.g. time=0:365. Repeatable.",
)
@_group
@blockstore_option
@json_option
def subset_cmd(
    root: str, indexers: tuple[str, ...], group: str, blockstore: str | None, as_json: bool
) -> None:
    """Subset by chunk-aligned slices, by rewriting manifests only."""
    from ipldwrite.ops import isel

    sel = {dim: _slice(text) for dim, text in _pairs(indexers, "DIM=START:STOP").items()}
    _done(as_json, isel(root, sel, open_blockstore(blockstore), group=group))


@click.command("rename")
@click.argument("root")
@click.argument("mapping", nargs=-1, required=True, metavar="OLD=NEW...")
@_group
@blockstore_option
@json_option
def rename_cmd(
    root: str, mapping: tuple[str, ...], group: str, blockstore: str | None, as_json: bool
) -> None:
    """Rename variables and dimensions."""
    from ipldwrite.ops import rename

    _done(
        as_json, rename(root, _pairs(mapping, "OLD=NEW"), open_blockstore(blockstore), group=group)
    )


@click.command("drop-vars")
@click.argument("root")
@click.argument("names", nargs=-1, required=True)
@_group
@blockstore_option
@json_option
def drop_vars_cmd(
    root: str, names: tuple[str, ...], group: str, blockstore: str | None, as_json: bool
) -> None:
    """Remove variables."""
    from ipldwrite.ops import drop_vars

    _done(as_json, drop_vars(root, names, open_blockstore(blockstore), group=group))


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@click.command("assign-attrs")
@click.argument("root")
@click.argument("attrs", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--variable", default=None, help="Set the attributes of this variable.")
@_group
@blockstore_option
@json_option
def assign_attrs_cmd(
    root: str,
    attrs: tuple[str, ...],
    variable: str | None,
    group: str,
    blockstore: str | None,
    as_json: bool,
) -> None:
    """Set attributes (VALUE is JSON where it parses, else a string; null deletes)."""
    from ipldwrite.ops import assign_attrs

    values = {k: _json_value(v) for k, v in _pairs(attrs, "KEY=VALUE").items()}
    _done(
        as_json,
        assign_attrs(root, values, open_blockstore(blockstore), variable=variable, group=group),
    )


@click.command("regroup")
@click.argument("members", nargs=-1, required=True, metavar="NAME=CID...")
@blockstore_option
@json_option
def regroup_cmd(members: tuple[str, ...], blockstore: str | None, as_json: bool) -> None:
    """A new dataset whose groups are the given datasets (linked, not copied)."""
    from ipldwrite.ops import regroup

    _done(as_json, regroup(_pairs(members, "NAME=CID"), open_blockstore(blockstore)))


@click.command("move")
@click.argument("root")
@click.argument("source")
@click.argument("destination")
@blockstore_option
@json_option
def move_cmd(
    root: str, source: str, destination: str, blockstore: str | None, as_json: bool
) -> None:
    """Move a group or array to another path in the hierarchy."""
    from ipldwrite.ops import move

    _done(as_json, move(root, source, destination, open_blockstore(blockstore)))


COMMANDS = [
    concat_cmd,
    merge_cmd,
    append_cmd,
    subset_cmd,
    rename_cmd,
    drop_vars_cmd,
    assign_attrs_cmd,
    regroup_cmd,
    move_cmd,
]
