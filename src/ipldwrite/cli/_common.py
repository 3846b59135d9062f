"""Options and output helpers every command shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ipldwrite.blockstore import Blockstore
from ipldwrite.errors import IpldWriteError
from ipldwrite.store import resolve_blockstore

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: 0 success, 1 a problem found in the data (verify), 2 bad usage or input.
EXIT_PROBLEM = 1
EXIT_USAGE = 2


def blockstore_option[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--blockstore",
        "-b",
        envvar="IPLDWRITE_BLOCKSTORE",
        default=None,
        metavar="PATH|URL",
        help="Blockstore directory, a .car file to read from, an IPFS node's RPC API "
        "(http://127.0.0.1:5001) or a gateway (gateway+http://…) "
        "(default: $IPLDWRITE_BLOCKSTORE or ~/.cache/ipldwrite/blocks).",
    )(func)


def json_option[F: Callable[..., Any]](func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def open_blockstore(path: str | None) -> Blockstore:
    try:
        return resolve_blockstore(path)
    except (OSError, IpldWriteError) as exc:
        raise click.ClickException(str(exc)) from None


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(code)
