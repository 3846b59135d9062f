"""One Dask task's write: a region of one array, as a partial dataset of its own."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from ipldwrite.blockstore import Blockstore
from ipldwrite.ipld import Link, to_link
from ipldwrite.store._store import IPLDStore

__all__ = ["write_region"]


def write_region(
    blockstore: Blockstore,
    template: Link,
    path: str,
    selection: tuple[slice, ...],
    data: npt.NDArray[Any],
    *,
    write_empty_chunks: bool = False,
) -> Link:
    """Write ``data`` into ``selection`` of the array at ``path`` on top of ``template``.

    zarr does the encoding (codecs, fill-value handling, empty-chunk skipping), exactly as a
    sequential ``to_zarr`` would, so the chunk blocks — and therefore the root — are the
    same whoever writes them. The result is the template plus this region's chunks.
    """
    store = IPLDStore(blockstore, template, read_only=False)
    array = zarr.open_array(
        store,
        path=path,
        mode="r+",
        zarr_format=3,
        config={"write_empty_chunks": write_empty_chunks},
    )
    array[selection] = np.asarray(data)
    return to_link(store.commit())
