"""`ipldwrite pack`: a finished per-task-CAR write, consolidated into CARv2 shards in place."""

from __future__ import annotations

import click

from ipldwrite.cli._common import emit, json_option


@click.command("pack")
@click.argument("directory")
@click.argument("roots", nargs=-1, required=True)
@click.option(
    "--max-mib",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Upper bound of each CARv2 file, in MiB.",
)
@json_option
def pack(directory: str, roots: tuple[str, ...], max_mib: int, as_json: bool) -> None:
    """Rewrite the datasets ROOTS of the per-task-CAR DIRECTORY (a path or a URL; `car:`
    accepted) as a few CARv2 shards and remove the task CARs, so opening reads O(shards)
    files, not O(tasks). Give every root the directory should keep. Credentials and
    endpoints of object stores come from the environment (AWS_*, GOOGLE_*, AZURE_*)."""
    from ipldwrite.car import pack_car_directory

    location = directory.removeprefix("car:")
    summary = pack_car_directory(location, roots, max_bytes=max_mib << 20)
    emit(
        as_json,
        {
            "directory": location,
            "roots": [str(r) for r in roots],
            "written": list(summary.written),
            "removed": len(summary.removed),
            "blocks": summary.blocks,
            "bytes": summary.size,
        },
        str(summary),
    )
