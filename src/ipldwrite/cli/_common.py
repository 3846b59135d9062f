"""Options and output helpers every command shares.

A new command takes ``blockstore_option`` and ``json_option``, opens its blockstore with
``open_blockstore`` (``create=True`` only for commands that bring new data), prints with
``emit``, shows progress only when ``show_progress`` says so, and lets the library's errors
through: the group maps them to exit codes and JSON (cli/_errors.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ipldwrite.blockstore import DEFAULT_BLOCKSTORE_PATH, Blockstore
from ipldwrite.cli._errors import EXIT_DAMAGED, EXIT_USAGE
from ipldwrite.store import resolve_blockstore

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes (the whole table is in cli/_errors.py): 1 damaged or missing data, 2 bad input.
EXIT_PROBLEM = EXIT_DAMAGED


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


def open_blockstore(path: str | None, *, create: bool = False) -> Blockstore:
    """The blockstore of ``-b``/``$IPLDWRITE_BLOCKSTORE``/the default.

    Only commands that bring new data (``create=True``: demo, ingest, import-car) may make
    a new local blockstore; every other command refuses a missing one instead of creating
    an empty directory and then reporting every block missing.
    """
    spec = path or os.environ.get("IPLDWRITE_BLOCKSTORE") or DEFAULT_BLOCKSTORE_PATH
    if not create and "://" not in spec and not spec.startswith("car:"):
        local = Path(spec).expanduser()
        if not local.exists() or (local.is_dir() and not any(local.iterdir())):
            raise FileNotFoundError(
                f"no blockstore at {local}: give the directory or .car file that holds the "
                "blocks with -b PATH (or $IPLDWRITE_BLOCKSTORE)"
            )
    return resolve_blockstore(spec)


def show_progress(as_json: bool) -> bool:
    """Progress bars go to stderr, only when it is a terminal and never with --json."""
    return not as_json and sys.stderr.isatty()


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text)


def emit_report(as_json: bool, report: Any, lines: Iterable[str], summary: str) -> None:
    """Print an audit report (``verify``, ``repair``): its JSON form, or its lines and an
    ``OK``/``DAMAGED`` summary; then exit with 1 when the report is not ok."""
    verdict = "OK" if report.ok else "DAMAGED"
    emit(as_json, report.to_json(), "\n".join([*lines, f"{verdict}: {summary}"]))
    if not report.ok:
        sys.exit(EXIT_PROBLEM)


class DataProblem(click.ClickException):
    """Damaged or missing data found by a command itself (a key not in a dataset)."""

    exit_code = EXIT_DAMAGED


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Stop the command: ``message`` on stderr (JSON under --json) and exit ``code``."""
    raise DataProblem(message) if code == EXIT_DAMAGED else click.UsageError(message)
