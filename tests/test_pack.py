"""`ipldwrite pack`: a per-task-CAR write consolidated into CARv2 shards in place."""

from __future__ import annotations

import json
from pathlib import Path

import dask
import pytest
import xarray as xr
from click.testing import CliRunner

from datasets import climate_cube
from ipldwrite.blockstore import TaskCarBlockstore
from ipldwrite.car import pack_car_directory, verify_car
from ipldwrite.cli import main
from ipldwrite.errors import CarError
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr


def _task_car_write(directory: Path) -> tuple[xr.Dataset, object, int]:
    ds = climate_cube(16, 4, 6)
    lazy = ds.chunk({"time": 2})
    encoding = {
        str(n): {"chunks": (2, *v.shape[1:])}
        for n, v in ds.data_vars.items()
        if v.dims[:1] == ("time",)
    }
    with dask.config.set(scheduler="threads"):
        root = to_ipld_zarr(lazy, f"car:{directory}", encoding=encoding, progress=False)
    return ds, root, len(TaskCarBlockstore(directory).existing())


def test_pack_leaves_few_indexed_cars_that_read_the_same(tmp_path: Path) -> None:
    ds, root, tasks = _task_car_write(tmp_path / "cars")
    summary = pack_car_directory(tmp_path / "cars", [root], max_bytes=64 << 10)
    left = TaskCarBlockstore(tmp_path / "cars").existing()
    assert sorted(left) == sorted(summary.written)
    assert 1 < len(left) < tasks
    assert len(summary.removed) == tasks - 1  # the old <root>.car was replaced, not removed
    for path in left:
        assert verify_car(path).version == 2
    xr.testing.assert_identical(open_ipld_zarr(root, f"car:{tmp_path / 'cars'}").load(), ds)
    again = pack_car_directory(tmp_path / "cars", [root], max_bytes=64 << 10)
    assert sorted(again.written) == sorted(left)  # packing again changes nothing
    assert again.removed == ()


def test_pack_from_the_shell(tmp_path: Path) -> None:
    ds, root, tasks = _task_car_write(tmp_path / "cars")
    out = CliRunner().invoke(main, ["pack", f"car:{tmp_path / 'cars'}", str(root), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["removed"] == tasks - 1
    xr.testing.assert_identical(open_ipld_zarr(root, f"car:{tmp_path / 'cars'}").load(), ds)


def test_pack_refuses_an_empty_directory_and_no_roots(tmp_path: Path) -> None:
    with pytest.raises(CarError, match="nothing to pack"):
        pack_car_directory(tmp_path, ["bafkqaaa"])
    with pytest.raises(ValueError, match="root"):
        pack_car_directory(tmp_path, [])
