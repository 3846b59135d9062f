from __future__ import annotations

import json
from pathlib import Path

import xarray as xr
from click.testing import CliRunner

from datasets import climate_cube
from ipldwrite.cli import main
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_operations_from_the_shell(tmp_path: Path) -> None:
    blocks = str(tmp_path / "blocks")
    full = climate_cube(8, 4, 5)
    enc = {"t2m": {"chunks": (4, 4, 5)}, "time": {"chunks": (4,)}}
    parts = [
        str(to_ipld_zarr(full[["t2m"]].isel(time=slice(a, a + 4)), blocks, encoding=enc))
        for a in (0, 4)
    ]
    code, out = run("concat", *parts, "--dim", "time", "-b", blocks, "--json")
    assert code == 0, out
    joined = json.loads(out)["root"]
    xr.testing.assert_identical(open_ipld_zarr(joined, blocks).load(), full[["t2m"]])
    code, sub = run("subset", joined, "--isel", "time=4:8", "-b", blocks)
    assert open_ipld_zarr(sub.strip(), blocks).sizes["time"] == 4
    code, renamed = run("rename", joined, "t2m=tas", "-b", blocks)
    assert "tas" in open_ipld_zarr(renamed.strip(), blocks)
    code, tagged = run("assign-attrs", joined, "license=CC-BY-4.0", "version=2", "-b", blocks)
    attrs = open_ipld_zarr(tagged.strip(), blocks).attrs
    assert attrs["license"] == "CC-BY-4.0"
    assert attrs["version"] == 2
    code, grouped = run("regroup", f"a={parts[0]}", f"b={parts[1]}", "-b", blocks)
    code, moved = run("move", grouped.strip(), "b", "later/b", "-b", blocks)
    assert open_ipld_zarr(moved.strip(), blocks, group="later/b").sizes["time"] == 4
    code, out = run("concat", parts[1], parts[0], "--dim", "time", "-b", blocks)
    assert code == 2
    assert "overlaps or is out of order" in out
