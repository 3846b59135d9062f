"""Datasets on a real S3 server (moto, on loopback): a process cluster writing one object
per block, joins by CID, per-task CARs with storage_options and `pack`, and every entry
point taking an s3:// URL as a URL, never as a local path."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import Any

import dask
import pytest
import xarray as xr
from click.testing import CliRunner

from datasets import climate_cube
from ipldwrite import ops
from ipldwrite.blockstore import (
    CarBlockstore,
    CarSetBlockstore,
    DirectoryBlockstore,
    ObjectStoreBlockstore,
    TaskCarBlockstore,
    resolve_blockstore,
)
from ipldwrite.car import export_car, export_car_shards, import_car, pack_car_directory
from ipldwrite.cli import main
from ipldwrite.errors import UnsupportedBlockstoreError
from ipldwrite.ingest import ingest
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr
from s3_server import ACCESS_KEY, BUCKETS, REGION, SECRET_KEY, S3Server

pytest.importorskip("obstore")


def _prefix(bucket: str = BUCKETS[0]) -> str:
    return f"s3://{bucket}/{uuid.uuid4().hex}"


def lazy_cube() -> tuple[xr.Dataset, dict[str, Any]]:
    ds = climate_cube(24, 18, 36)
    encoding = {
        str(name): {"chunks": (2, *var.shape[1:])}
        for name, var in ds.data_vars.items()
        if var.dims[:1] == ("time",)
    }
    return ds.chunk({"time": 4}), encoding


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """Endpoint and credentials the way users give them: the environment (obstore and
    s3fs both read it). Runs in an empty directory, to see that no `s3:` folder appears."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ENDPOINT": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return s3_server


@pytest.mark.slow
def test_process_cluster_writes_to_s3_the_root_of_a_local_write(
    client: Any, s3_server: S3Server, tmp_path: Path
) -> None:
    lazy, encoding = lazy_cube()
    store = ObjectStoreBlockstore(_prefix(), **s3_server.obstore_options())
    root = lazy.pipe(to_ipld_zarr, store, client=client, encoding=encoding)
    with dask.config.set(scheduler="threads"):
        local = to_ipld_zarr(lazy, DirectoryBlockstore(tmp_path / "local"), encoding=encoding)
    assert root == local
    expected = lazy.compute()
    xr.testing.assert_identical(open_ipld_zarr(root, store).load(), expected)
    via_engine = xr.open_dataset(str(root), engine="ipld", blockstore=store)
    xr.testing.assert_identical(via_engine.load(), expected)


def test_concat_and_merge_on_s3(s3_server: S3Server) -> None:
    store = ObjectStoreBlockstore(_prefix(), **s3_server.obstore_options())
    ds = climate_cube(8, 4, 6)
    encoding: dict[str, Any] = {
        str(n): {"chunks": (2, *v.shape[1:])}
        for n, v in ds.data_vars.items()
        if v.dims[:1] == ("time",)
    }
    encoding["time"] = {"chunks": (2,), "units": "days since 2000-01-01"}
    whole = to_ipld_zarr(ds, store, encoding=encoding)
    first = to_ipld_zarr(ds.isel(time=slice(0, 4)), store, encoding=encoding)
    second = to_ipld_zarr(ds.isel(time=slice(4, 8)), store, encoding=encoding)
    assert ops.concat([first, second], "time", store) == whole
    left = to_ipld_zarr(ds[["t2m"]], store, encoding={"t2m": encoding["t2m"]})
    right = to_ipld_zarr(ds[["precip"]], store, encoding={"precip": encoding["precip"]})
    merged = ops.merge([left, right], store)
    xr.testing.assert_identical(open_ipld_zarr(merged, store).load(), ds[["t2m", "precip"]])


def test_every_entry_point_takes_s3_urls_as_urls(s3_env: S3Server, tmp_path: Path) -> None:
    url = _prefix()
    ds = climate_cube(6, 4, 6)
    root = to_ipld_zarr(ds, url)  # endpoint and credentials from the environment
    assert isinstance(resolve_blockstore(url), ObjectStoreBlockstore)
    xr.testing.assert_identical(open_ipld_zarr(root, url).load(), ds)
    assert ops.concat([root], "time", url) == root
    (tmp_path / "archive").mkdir()
    for i in range(2):
        ds.isel(time=slice(3 * i, 3 * i + 3)).to_netcdf(tmp_path / "archive" / f"part{i}.nc")
    pattern = str(tmp_path / "archive" / "*.nc")
    ingested = ingest(pattern, "time", url, chunks={"time": 3}, progress=False)
    assert ingested == ingest(pattern, "time", tmp_path / "local", chunks={"time": 3})

    cars = _prefix(BUCKETS[1])
    one = export_car(root, resolve_blockstore(url), f"{cars}/one.car", version=2)
    assert str(one.path).startswith("s3://")
    assert import_car(f"{cars}/one.car", DirectoryBlockstore(tmp_path / "imported")) == root
    xr.testing.assert_identical(open_ipld_zarr(root, f"{cars}/one.car").load(), ds)
    shards = export_car_shards(root, resolve_blockstore(url), f"{cars}/shards")
    assert all(str(p).startswith("s3://") for p in shards.files)
    xr.testing.assert_identical(open_ipld_zarr(root, CarSetBlockstore(f"{cars}/shards")).load(), ds)
    with pytest.raises(UnsupportedBlockstoreError, match="CarSetBlockstore"):
        CarBlockstore(f"{cars}/one.car")
    # The same CAR over plain HTTP, made public-read: fsspec's HTTP reader.
    key = f"{cars.removeprefix('s3://')}/one.car"
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem().chmod(key, acl="public-read")
    over_http = f"{s3_env.endpoint}/{key}"
    assert import_car(over_http, DirectoryBlockstore(tmp_path / "imported")) == root
    xr.testing.assert_identical(open_ipld_zarr(root, over_http).load(), ds)

    runner = CliRunner()
    out = runner.invoke(main, ["export-car", str(root), f"{cars}/cli.car", "-b", url])
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["import-car", f"{cars}/cli.car", "-b", str(tmp_path / "cli")])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == str(root)
    out = runner.invoke(main, ["ls", str(root), "-b", url])
    assert out.exit_code == 0, out.output
    # Nothing but the two directories asked for: no local `s3:` directory.
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["archive", "cli", "imported", "local"]


@pytest.mark.parametrize(
    ("call", "module", "extra"),
    [
        (
            lambda: export_car("bafkqaaa", DirectoryBlockstore("d"), "gs://bucket/x.car"),
            "gcsfs",
            "ipldwrite[gcs]",
        ),
        (
            lambda: import_car("az://box/x.car", DirectoryBlockstore("d")),
            "adlfs",
            "ipldwrite[azure]",
        ),
        (lambda: CarSetBlockstore("zz://host/dir"), None, "fsspec filesystem for zz://"),
        (
            lambda: export_car("bafkqaaa", DirectoryBlockstore("d"), "http://127.0.0.1:9/x.car"),
            None,
            "HTTP URLs are read-only",
        ),
    ],
)
def test_car_urls_without_their_filesystem_are_refused_naming_the_extra(
    call: Any, module: str | None, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if module is not None and importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here: the URL would be served")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedBlockstoreError) as info:
        call()
    assert extra in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["d"])


def _open_cost(server: S3Server, root: Any, store: Any) -> int:
    before = server.requests
    opened = open_ipld_zarr(root, store)
    opened["t2m"].isel(time=0).load()  # one chunk
    return server.requests - before


@pytest.mark.slow
def test_task_cars_on_s3_with_storage_options_then_pack(client: Any, s3_server: S3Server) -> None:
    lazy, encoding = lazy_cube()
    url = _prefix(BUCKETS[1])
    options = s3_server.storage_options()
    cars = resolve_blockstore(f"car:{url}", storage_options=options)
    assert isinstance(cars, TaskCarBlockstore)
    root = lazy.pipe(to_ipld_zarr, cars, client=client, encoding=encoding)
    with dask.config.set(scheduler="threads"):
        assert root == to_ipld_zarr(lazy, ObjectStoreBlockstore("memory://"), encoding=encoding)
    tasks = len(cars.existing())
    per_task = _open_cost(s3_server, root, TaskCarBlockstore(url, storage_options=options))
    summary = pack_car_directory(url, [root], storage_options=options)
    assert len(summary.removed) == tasks - 1  # every task CAR but the root's, replaced
    reopened = TaskCarBlockstore(url, storage_options=options)
    assert len(reopened.existing()) == len(summary.written) < tasks
    packed = _open_cost(s3_server, root, reopened)
    assert packed < per_task
    xr.testing.assert_identical(open_ipld_zarr(root, reopened).load(), lazy.compute())


def test_a_block_of_a_car_on_s3_is_one_range_request(s3_server: S3Server) -> None:
    store = ObjectStoreBlockstore("memory://")
    ds = climate_cube(6, 4, 6)
    root = to_ipld_zarr(ds, store)
    url = f"{_prefix(BUCKETS[1])}/shards"
    options = s3_server.storage_options()
    export_car_shards(root, store, url, storage_options=options)
    cars = CarSetBlockstore(url, storage_options=options)
    links = list(cars.iter_links())  # loads the indexes
    before = s3_server.requests
    for link in links[:5]:
        assert cars.get(link) == store.get(link)
    assert s3_server.requests - before == 5
