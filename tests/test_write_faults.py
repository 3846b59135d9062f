"""Faults during writes: a full or failing disk, a crash before the root is returned,
concurrent writers, workers killed during the merge tree. Never a wrong root or a block
file under a valid name with wrong content."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from ipldwrite.audit import gc, verify
from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore, _directory
from ipldwrite.ipld import verify_block
from ipldwrite.xarray import open_ipld_zarr, to_ipld_zarr

ENC = {"v": {"chunks": (4, 8)}}


def dataset(seed: int, rows: int = 32) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset({"v": (("t", "x"), rng.standard_normal((rows, 8)).astype("f4"))})


def assert_every_file_is_sound(path: Path) -> None:
    """No temporary file left, and every block file hashes to the CID it is named by."""
    store = DirectoryBlockstore(path, verify=False)
    # zarr's other chunk writes can still be failing in its threads when the error reaches
    # the caller; each removes its own temporary file, so wait for them (bounded).
    deadline = time.monotonic() + 30
    while [p for p in (path / "blocks").rglob(".*") if p.is_file()]:
        assert time.monotonic() < deadline, "temporary files left behind"
        time.sleep(0.05)
    for link in store.iter_links():
        verify_block(link, store.get(link))


class FailingFile:
    """A file whose write stores half the bytes, then fails like a full or broken disk."""

    def __init__(self, f: Any, code: int) -> None:
        self.f, self.code = f, code

    def write(self, data: Any) -> int:
        self.f.write(bytes(data)[: len(data) // 2])
        raise OSError(self.code, os.strerror(self.code))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)

    def __enter__(self) -> FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_disk_error_mid_block_leaves_no_bad_block_and_a_usable_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    ds = dataset(0)
    expected = to_ipld_zarr(ds, MemoryBlockstore(), encoding=ENC)
    writes = {"n": 0}
    real_open = open

    def flaky_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(path, mode, *args, **kwargs)
        if "b" in mode and "w" in mode:
            writes["n"] += 1
            if writes["n"] > 3:  # the disk fills up after a few blocks
                return FailingFile(f, code)
        return f

    monkeypatch.setattr(_directory, "open", flaky_open, raising=False)
    store = DirectoryBlockstore(tmp_path)
    with pytest.raises(OSError, match="cannot write block b") as caught:
        to_ipld_zarr(ds, store, encoding=ENC)
    assert caught.value.errno == code
    assert str(tmp_path) in str(caught.value)
    assert_every_file_is_sound(tmp_path)
    monkeypatch.undo()  # space freed: the same write completes, reusing what was stored
    assert to_ipld_zarr(ds, store, encoding=ENC) == expected
    assert verify(expected, store).ok


CRASH_BEFORE_ROOT = textwrap.dedent(
    """
    import os, sys
    import numpy as np, xarray as xr
    from ipldwrite.blockstore import DirectoryBlockstore
    from ipldwrite.ipld import to_link
    from ipldwrite.xarray import to_ipld_zarr

    path, root, seed = sys.argv[1], to_link(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    ds = xr.Dataset({"v": (("t", "x"), rng.standard_normal((32, 8)).astype("f4"))})

    class Dies(DirectoryBlockstore):
        def _put(self, link, data):
            if link == root:
                os._exit(9)  # killed after every other block, before the root is stored
            super()._put(link, data)

    to_ipld_zarr(ds, Dies(path), encoding={"v": {"chunks": (4, 8)}})
    """
)


def test_a_crash_before_the_root_is_returned_then_a_rerun_reuses_the_blocks(
    tmp_path: Path,
) -> None:
    ds = dataset(1)
    expected = to_ipld_zarr(ds, MemoryBlockstore(), encoding=ENC)
    path = tmp_path / "bs"
    DirectoryBlockstore(path)
    child = subprocess.run(
        [sys.executable, "-c", CRASH_BEFORE_ROOT, str(path), str(expected), "1"], check=False
    )
    assert child.returncode == 9
    store = DirectoryBlockstore(path)
    before = set(store.iter_links())
    assert before
    assert_every_file_is_sound(path)
    assert set(gc([], store).orphans) == before  # nothing reaches them yet: reported
    assert to_ipld_zarr(ds, store, encoding=ENC) == expected
    after = set(store.iter_links())
    assert len(after - before) == 1  # only the root node was new
    assert gc([expected], store).orphans == []
    assert verify(expected, store).ok


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, xarray as xr
    from ipldwrite.blockstore import DirectoryBlockstore
    from ipldwrite.xarray import to_ipld_zarr

    path, seed = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(seed)
    ds = xr.Dataset({"v": (("t", "x"), rng.standard_normal((2000, 8)).astype("f4"))})
    print(to_ipld_zarr(ds, DirectoryBlockstore(path), encoding={"v": {"chunks": (4, 8)}}))
    """
)


@pytest.mark.slow
def test_concurrent_writers_into_one_directory_blockstore(tmp_path: Path) -> None:
    path = tmp_path / "bs"
    DirectoryBlockstore(path)
    seeds = [10, 11, 10, 11]  # two datasets, each written twice, all at once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(s)], stdout=subprocess.PIPE, text=True
        )
        for s in seeds
    ]
    roots = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert roots[0] == roots[2]
    assert roots[1] == roots[3]
    assert roots[0] != roots[1]
    store = DirectoryBlockstore(path)
    for seed, root in zip(seeds[:2], roots[:2], strict=True):
        assert verify(root, store).ok
        ds = dataset(seed, rows=2000)
        assert root == str(to_ipld_zarr(ds, MemoryBlockstore(), encoding=ENC))
        np.testing.assert_array_equal(open_ipld_zarr(root, store).v.values, ds.v.values)
    assert_every_file_is_sound(path)
    assert gc(roots[:2], store).orphans == []


@pytest.mark.slow
def test_a_worker_killed_in_the_merge_tree_gives_the_same_root(client: Any, tmp_path: Path) -> None:
    from cluster_helpers import DyingMergeBlockstore

    ds = dataset(2, rows=48)
    lazy = ds.chunk({"t": 8})  # 6 write tasks, then a merge task
    expected = to_ipld_zarr(ds, MemoryBlockstore(), encoding=ENC)
    marker = tmp_path / "killed"
    store = DyingMergeBlockstore(str(tmp_path / "shared"), str(marker))
    root = to_ipld_zarr(lazy, store, client=client, encoding=ENC)
    assert marker.exists()  # a worker really died inside a merge task
    assert root == expected
    assert verify(root, DirectoryBlockstore(tmp_path / "shared")).ok
    assert_every_file_is_sound(tmp_path / "shared")
