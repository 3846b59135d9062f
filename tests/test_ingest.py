"""Ingesting an archive of NetCDF files: both strategies, one root; bad archives refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from conftest import SHARED_DATA
from datasets import climate_cube
from ipldwrite.blockstore import DirectoryBlockstore
from ipldwrite.cli import main
from ipldwrite.errors import IncompatibleDatasetsError
from ipldwrite.ingest import ingest
from ipldwrite.xarray import open_ipld_zarr


def monthly_files(tmp_path: Path, ds: xr.Dataset) -> str:
    folder = tmp_path / "archive"
    folder.mkdir()
    for (year, month), part in ds.groupby(["time.year", "time.month"]):
        part.to_netcdf(folder / f"cube-{year}-{month:02d}.nc")
    return str(folder / "*.nc")


def test_both_strategies_give_one_root(tmp_path: Path) -> None:
    full = climate_cube(60, 6, 8)
    pattern = monthly_files(tmp_path, full)
    store = DirectoryBlockstore(tmp_path / "blocks")
    whole = ingest(pattern, "time", store, chunks={"time": 1})
    per_file = ingest(pattern, "time", store, chunks={"time": 1}, per_file=True)
    assert whole == per_file
    xr.testing.assert_allclose(open_ipld_zarr(whole, store).load(), full)


@pytest.mark.slow
def test_per_file_on_a_process_cluster(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    full = climate_cube(60, 6, 8)
    pattern = monthly_files(tmp_path, full)
    store = DirectoryBlockstore(tmp_path / "blocks")
    expected = ingest(pattern, "time", store, chunks={"time": 1})
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        assert (
            ingest(pattern, "time", store, chunks={"time": 1}, per_file=True, client=client)
            == expected
        )
        assert ingest(pattern, "time", store, chunks={"time": 1}, client=client) == expected


def test_bad_archives_are_named_before_anything_is_written(tmp_path: Path) -> None:
    full = climate_cube(60, 6, 8)
    pattern = monthly_files(tmp_path, full)
    folder = Path(pattern).parent
    store = DirectoryBlockstore(tmp_path / "blocks")
    full.isel(time=slice(25, 35)).to_netcdf(folder / "overlap.nc")
    with pytest.raises(IncompatibleDatasetsError, match=r"overlap\.nc|cube-2000-01\.nc.*overlap"):
        ingest(pattern, "time", store)
    (folder / "overlap.nc").unlink()
    full.isel(time=slice(0, 5)).drop_vars("wind").to_netcdf(folder / "cube-1999-12.nc")
    with pytest.raises(IncompatibleDatasetsError, match=r"variables \['wind'\]"):
        ingest(pattern, "time", store)
    (folder / "cube-1999-12.nc").unlink()
    with pytest.raises(IncompatibleDatasetsError, match="not a multiple of the chunk size 7"):
        ingest(pattern, "time", store, chunks={"time": 7}, per_file=True)
    assert list(store.iter_links()) == []  # nothing was written
    code = CliRunner().invoke(
        main,
        ["ingest", str(folder / "none*.nc"), "--concat-dim", "time", "-b", str(tmp_path / "b")],
    )
    assert code.exit_code == 2
    assert "no file matches" in code.output


@pytest.mark.skipif(
    not (SHARED_DATA / "eraint_uvz.nc").exists(), reason="../shared/data is not on this machine"
)
@pytest.mark.filterwarnings("ignore::xarray.SerializationWarning")
def test_a_real_reanalysis_file_split_by_month(tmp_path: Path) -> None:
    era = xr.open_dataset(SHARED_DATA / "eraint_uvz.nc")
    folder = tmp_path / "era"
    folder.mkdir()
    for n in range(era.sizes["month"]):
        era.isel(month=slice(n, n + 1)).to_netcdf(folder / f"era-{n}.nc")
    store = DirectoryBlockstore(tmp_path / "blocks")
    runner = CliRunner()
    args: list[Any] = [
        str(folder / "*.nc"),
        "--concat-dim",
        "month",
        "--chunks",
        "month=1",
        "-b",
        str(tmp_path / "blocks"),
    ]
    whole = runner.invoke(main, ["ingest", *args]).output.strip()
    split = runner.invoke(main, ["ingest", *args, "--per-file"]).output.strip()
    assert whole == split
    back = open_ipld_zarr(whole, store).load()
    np.testing.assert_allclose(back["z"].values, era["z"].values, rtol=1e-6)
