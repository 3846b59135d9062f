from __future__ import annotations

import click

from ipldwrite.cli import _blocks, _ops, _pack
from ipldwrite.cli._common import fail
from ipldwrite.cli._demo import demo
from ipldwrite.cli._ingest import ingest
from ipldwrite.cli._inspect import cat, info, ls
from ipldwrite.errors import IpldWriteError


class _Group(click.Group):
    """Turns ipldwrite's own errors into one red line and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (IpldWriteError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
            return None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ipldwrite")
def main() -> None:
    """Write Zarr datasets as content-addressed IPLD graphs, in parallel, with Dask.

    Start with `ipldwrite demo`.
    """


for command in [demo, ingest, ls, info, cat, *_ops.COMMANDS, *_blocks.COMMANDS, _pack.pack]:
    main.add_command(command)
main.add_command(ls, name="tree")
