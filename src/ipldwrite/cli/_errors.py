"""Exit codes, and how an error reaches the user: the one place that maps errors to codes.

===  ==========================================================================
0    fine
1    damaged or missing data: a block that is absent or does not hash to its CID,
     a truncated or invalid CAR, a DAG that is not zarr-on-IPLD, a key not in a dataset
2    bad input: a malformed CID, option or path, a blockstore that cannot serve the
     command, datasets that cannot be combined as asked
130  interrupted (Ctrl-C)
===  ==========================================================================

Every command registered on the ``ipldwrite`` group gets this behaviour from the group
(:class:`ipldwrite.cli._main.IpldwriteGroup`), so new commands need no code of their own:
raise the library's errors and let them through.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ipldwrite import errors
from ipldwrite.ipld import link_str, to_link

EXIT_OK = 0
EXIT_DAMAGED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Error class -> exit code. The first class in an error's MRO that is listed here wins, so
#: subclasses inherit their parent's code (TruncatedCarError is a CarError: 1).
EXIT_CODES: dict[type[BaseException], int] = {
    # Damaged or missing data.
    errors.BlockError: EXIT_DAMAGED,  # missing, corrupt or oversized blocks
    errors.CarError: EXIT_DAMAGED,
    errors.CodecError: EXIT_DAMAGED,  # a block that is not canonical DAG-CBOR / DAG-PB
    errors.FormatError: EXIT_DAMAGED,
    # Bad input.
    errors.InvalidCIDError: EXIT_USAGE,
    errors.ReadOnlyError: EXIT_USAGE,
    errors.UnsafeBlockstoreError: EXIT_USAGE,
    errors.UnsupportedBlockstoreError: EXIT_USAGE,
    errors.UnsupportedVersionError: EXIT_USAGE,  # install a supported xarray/zarr
    errors.ChunkAlignmentError: EXIT_USAGE,
    errors.MergeConflictError: EXIT_USAGE,
    errors.IncompatibleDatasetsError: EXIT_USAGE,
    # Builtins our own code raises for bad input (paths, values, scheduler addresses).
    OSError: EXIT_USAGE,
    ValueError: EXIT_USAGE,
    TypeError: EXIT_USAGE,
}

#: Errors shown as one line: ours, and the builtins the library raises for bad input.
#: Anything else is a bug and keeps its traceback.
HANDLED: tuple[type[BaseException], ...] = (errors.IpldWriteError, OSError, ValueError, TypeError)


def exit_code(exc: BaseException) -> int:
    """The exit code for an error (see the module docstring)."""
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return EXIT_INTERRUPTED
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_USAGE


def error_json(exc: BaseException) -> dict[str, Any]:
    """``{"error": {"type", "message", "cid"}}``: what ``--json`` prints on stderr."""
    if isinstance(exc, click.ClickException):
        message = exc.format_message()
    elif isinstance(exc, KeyboardInterrupt | click.Abort):
        message = "interrupted"
    else:
        message = str(exc)
    cid = getattr(exc, "cid", None)
    return {
        "error": {
            "type": type(exc).__name__,
            "message": message,
            "cid": None if cid is None else _cid_text(cid),
        }
    }


def _cid_text(cid: object) -> str:
    try:
        return link_str(to_link(cid))
    except (errors.InvalidCIDError, TypeError, ValueError):
        return str(cid)


def report(exc: BaseException, *, as_json: bool) -> int:
    """Show ``exc`` on stderr (one JSON object, or one red line) and return its exit code."""
    code = exit_code(exc)
    if as_json:
        click.echo(json.dumps(error_json(exc)), err=True)
    elif isinstance(exc, click.ClickException):
        exc.show()  # usage errors keep click's hint ("Try 'ipldwrite ls -h' for help.")
    elif code == EXIT_INTERRUPTED:
        click.echo("Interrupted.", err=True)
    else:
        click.secho(f"Error: {error_json(exc)['error']['message']}", fg="red", err=True)
    return code
