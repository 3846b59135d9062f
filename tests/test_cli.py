from __future__ import annotations

import json
from pathlib import Path

import xarray as xr
from click.testing import CliRunner

from ipldwrite.cli import main
from ipldwrite.datasets import demo_climate
from ipldwrite.xarray import open_ipld_zarr


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_demo_writes_prints_the_root_and_reads_back(tmp_path: Path) -> None:
    blocks = str(tmp_path / "blocks")
    code, out = run("demo", "--blockstore", blocks, "--days", "40", "--json")
    assert code == 0, out
    report = json.loads(out)
    back = open_ipld_zarr(report["root"], blocks)
    xr.testing.assert_identical(back.load(), demo_climate(40))
    code, again = run("demo", "--blockstore", blocks, "--days", "40", "--json")
    assert json.loads(again)["root"] == report["root"]


def test_inspection_commands(tmp_path: Path) -> None:
    blocks = str(tmp_path / "blocks")
    root = json.loads(run("demo", "-b", blocks, "--days", "31", "--json")[1])["root"]
    code, out = run("ls", root, "-b", blocks)
    assert code == 0
    assert "t2m  float32 (time,lat,lon) (31, 73, 144)" in out
    code, out = run("ls", root, "-b", blocks, "--json")
    nodes = {n["path"]: n for n in json.loads(out)["nodes"]}
    assert nodes["/t2m"]["chunks_stored"] == nodes["/t2m"]["chunks_total"] == 2
    code, out = run("info", root, "-b", blocks)
    assert code == 0
    assert "Dimensions:" in out
    assert "t2m" in out
    code, out = run("cat", f"{root}/t2m/zarr.json", "-b", blocks)
    assert code == 0
    assert json.loads(out)["dimension_names"] == ["time", "lat", "lon"]


def test_bad_input_gives_one_clear_line_and_exit_code(tmp_path: Path) -> None:
    blocks = str(tmp_path / "blocks")
    root = json.loads(run("demo", "-b", blocks, "--days", "31", "--json")[1])["root"]
    code, out = run("ls", "bafynotacid", "-b", blocks)
    assert code == 2
    assert "is not a CID" in out
    assert "Traceback" not in out
    code, out = run("cat", f"{root}/no/such/key", "-b", blocks)
    assert code == 1
    assert "'no/such/key' is not a key" in out
    code, out = run("ls", root, "-b", str(tmp_path / "empty"))
    assert code == 2
    assert "no blockstore at" in out
    assert not (tmp_path / "empty").exists()
