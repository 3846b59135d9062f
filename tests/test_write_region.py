"""A write task's commit (ArrayInDataset.with_chunks) against the general commit."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import ArrayInDataset, commit_changes
from ipldwrite.errors import FormatError
from ipldwrite.ipld import Link, compute_link, to_link
from ipldwrite.store import IPLDStore, write_region


def nested_template(store: MemoryBlockstore) -> Link:
    """Groups two deep, two arrays side by side, one of them with chunks already."""
    ipld = IPLDStore(store, read_only=False)
    root = zarr.open_group(ipld, mode="w", zarr_format=3, attributes={"title": "t"})
    inner = root.create_group("ocean").create_group("surface", attributes={"z": 1, "a": 2})
    inner.create_array("sst", shape=(6, 4), chunks=(2, 2), dtype="f4", fill_value=np.nan)
    done = inner.create_array("mask", shape=(6, 4), chunks=(3, 4), dtype="i1")
    done[:] = 1
    root.create_array("time", shape=(6,), chunks=(6,), dtype="i8")[:] = np.arange(6)
    return to_link(ipld.commit())


@pytest.mark.parametrize("path", ["ocean/surface/sst", "ocean/surface/mask", "time"])
def test_with_chunks_equals_the_general_commit(path: str) -> None:
    store = MemoryBlockstore()
    template = nested_template(store)
    target = ArrayInDataset.load(store, template, path)
    grid = target.node.keys.grid
    chunks: dict[tuple[int, ...], Link | None] = {
        index: compute_link(f"{path}{index}".encode()) for index in np.ndindex(*grid)
    }
    first = next(iter(chunks))
    chunks[first] = None  # a deletion, as zarr stages for an empty chunk
    staged = {f"{path}/{target.node.keys.format(i)}": link for i, link in chunks.items()}
    assert target.with_chunks(store, chunks) == commit_changes(store, template, staged)


def test_no_chunks_gives_back_the_template() -> None:
    store = MemoryBlockstore()
    template = nested_template(store)
    assert ArrayInDataset.load(store, template, "ocean/surface/mask").with_chunks(store, {}) == (
        template
    )


@pytest.mark.parametrize("path", ["ocean/surface", "nowhere", ""])
def test_a_path_that_is_not_an_array_is_refused(path: str) -> None:
    store = MemoryBlockstore()
    template = nested_template(store)
    with pytest.raises(FormatError, match="has no array at"):
        ArrayInDataset.load(store, template, path)


@pytest.mark.parametrize("chunk_threads", [1, 3, None])
@pytest.mark.parametrize("write_empty_chunks", [False, True])
@pytest.mark.parametrize(
    "rows", [slice(2, 4), slice(1, 4), slice(5, 6)], ids=["whole chunks", "partial", "last"]
)
def test_write_region_equals_writing_through_zarr_and_committing(
    chunk_threads: int | None, write_empty_chunks: bool, rows: slice
) -> None:
    """The tasks' codec pipeline writes what zarr's default one writes: same root, for
    whole chunks, chunks that must be read and merged, and all-fill chunks."""
    store = MemoryBlockstore()
    template = nested_template(store)
    ipld = IPLDStore(store, template, read_only=False)
    zarr.open_array(ipld, path="ocean/surface/sst", mode="r+")[:] = 7  # chunks to merge into
    base = to_link(ipld.commit())
    values = np.arange((rows.stop - rows.start) * 4, dtype="f4").reshape(-1, 4)
    values[:2, :2] = np.nan  # all fill: with whole chunks, one chunk is deleted or kept
    partial = write_region(
        store,
        base,
        "ocean/surface/sst",
        (rows, slice(None)),
        values,
        write_empty_chunks=write_empty_chunks,
        chunk_threads=chunk_threads,
    )
    ipld = IPLDStore(store, base, read_only=False)
    config = {"write_empty_chunks": write_empty_chunks}
    # with_config: before zarr 3.4.2, open_array ignored config= for an existing array.
    zarr.open_array(ipld, path="ocean/surface/sst", mode="r+").with_config(config)[rows] = values
    assert partial == to_link(ipld.commit())
    back = zarr.open_array(IPLDStore(store, partial), path="ocean/surface/sst", mode="r")
    np.testing.assert_array_equal(back[rows], values)
    expected = np.full((6, 4), 7, dtype="f4")
    expected[rows] = values
    np.testing.assert_array_equal(back[:], expected)
