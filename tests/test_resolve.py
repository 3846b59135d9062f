"""What users write as a blockstore: paths, car: directories, URLs (never taken for paths)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xarray as xr

from ipldwrite import to_ipld_zarr
from ipldwrite.blockstore import (
    CarSetBlockstore,
    DirectoryBlockstore,
    MemoryBlockstore,
    TaskCarBlockstore,
    resolve_blockstore,
)
from ipldwrite.errors import UnsupportedBlockstoreError


def test_paths_and_file_urls_are_directories(tmp_path: Path) -> None:
    assert isinstance(resolve_blockstore(tmp_path / "a"), DirectoryBlockstore)
    store = resolve_blockstore(f"file://{tmp_path}/b")
    assert isinstance(store, DirectoryBlockstore)
    assert os.path.samefile(store.path, tmp_path / "b") or store.path == f"{tmp_path}/b"


def test_instances_pass_through() -> None:
    store = MemoryBlockstore()
    assert resolve_blockstore(store) is store


def test_car_prefix_is_a_task_car_directory(tmp_path: Path) -> None:
    assert isinstance(resolve_blockstore(f"car:{tmp_path}"), TaskCarBlockstore)


def test_directory_of_cars_is_a_car_set(tmp_path: Path) -> None:
    (tmp_path / "x.car").write_bytes(b"")
    assert isinstance(resolve_blockstore(tmp_path), CarSetBlockstore)


@pytest.mark.parametrize("url", ["zz://bucket/x", "weird+scheme://host/p"])
def test_unknown_url_schemes_are_refused_not_made_into_directories(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedBlockstoreError, match="never taken for local paths") as info:
        resolve_blockstore(url)
    assert info.value.url == url
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_an_unserved_url_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedBlockstoreError, match="zz://"):
        to_ipld_zarr(xr.Dataset({"a": ("x", [1, 2, 3])}), "zz://bucket/x")
    assert list(tmp_path.iterdir()) == []


def test_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="Blockstore, a directory path or a URL"):
        resolve_blockstore(42)  # type: ignore[arg-type]
