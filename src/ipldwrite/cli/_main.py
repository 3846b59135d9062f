from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ipldwrite.cli import _blocks, _ipfs, _ops, _pack, _repair
from ipldwrite.cli._demo import demo
from ipldwrite.cli._errors import HANDLED, report
from ipldwrite.cli._ingest import ingest
from ipldwrite.cli._inspect import cat, info, ls

#: The handler -v installs on the "ipldwrite" logger (replaced, not stacked, on each call).
_log_handler: logging.Handler | None = None


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """-v: INFO from the library's loggers (ipldwrite.write, ipldwrite.merge, …); -vv: DEBUG."""
    global _log_handler  # noqa: PLW0603 -- one handler per process, whichever command sets it
    if not value:
        return value
    logger = logging.getLogger("ipldwrite")
    if _log_handler is not None:
        logger.removeHandler(_log_handler)
    _log_handler = logging.StreamHandler(sys.stderr)
    _log_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(_log_handler)
    logger.setLevel(logging.DEBUG if value > 1 else logging.INFO)
    return value


def _stop_logging() -> None:
    global _log_handler  # noqa: PLW0603
    if _log_handler is not None:
        logger = logging.getLogger("ipldwrite")
        logger.removeHandler(_log_handler)
        logger.setLevel(logging.NOTSET)
        _log_handler = None


def verbose_option() -> click.Option:
    return click.Option(
        ["--verbose", "-v"],
        count=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Log what is written and read (-vv: in detail), on stderr.",
    )


def json_flag() -> click.Option:
    # For commands without output of their own (none today): --json still makes errors JSON.
    return click.Option(["--json"], is_flag=True, expose_value=False, help="Errors as JSON.")


_CAUGHT: tuple[type[BaseException], ...] = (
    *HANDLED,
    click.ClickException,
    click.Abort,
    KeyboardInterrupt,
)


class IpldwriteGroup(click.Group):
    """The behaviour every subcommand shares, including commands registered later.

    Each command gets ``--json`` and ``-v``/``--verbose`` if it does not declare them. Errors
    become one red line (or, with ``--json``, one JSON object on stderr) and the exit code
    of cli/_errors.py, never a traceback; Ctrl-C exits 130.
    """

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        opts = {opt for param in cmd.params for opt in param.opts}
        if "--json" not in opts:
            cmd.params.append(json_flag())
        if not opts & {"-v", "--verbose"}:
            cmd.params.append(verbose_option())
        super().add_command(cmd, name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The raw arguments, not the parsed flag: a usage error can stop parsing before
        # --json is read, and it must be reported as JSON all the same.
        ctx.meta["ipldwrite.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        as_json = bool(ctx.meta.get("ipldwrite.json"))
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except _CAUGHT as exc:
            raise click.exceptions.Exit(report(exc, as_json=as_json)) from None
        finally:
            _stop_logging()  # -v lasts one command (several run in one process under tests)


@click.group(cls=IpldwriteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ipldwrite")
def main() -> None:
    """Write Zarr datasets as content-addressed IPLD graphs, in parallel, with Dask.

    Start with `ipldwrite demo`. Exit codes: 0 fine, 1 damaged or missing data, 2 bad
    input, 130 interrupted. Every command takes --json (errors too become JSON, on stderr)
    and -v (log what is written; -vv in detail).
    """


main.params.append(verbose_option())  # `ipldwrite -v CMD` as well as `ipldwrite CMD -v`
for command in [
    *(demo, ingest, ls, info, cat),
    *(*_ops.COMMANDS, *_blocks.COMMANDS, *_ipfs.COMMANDS, *_repair.COMMANDS, _pack.pack),
]:
    main.add_command(command)
main.add_command(ls, name="tree")
