"""Pieces the process-based cluster tests ship to their workers (importable by them)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ipldwrite.blockstore import DirectoryBlockstore
from ipldwrite.ipld import DAG_CBOR, RAW, Link


def fail_once(
    block: npt.NDArray[Any], marker_dir: str, victim: tuple[int, ...], block_id: Any = None
) -> npt.NDArray[Any]:
    """Raise the first time block ``victim`` is computed (a transient error)."""
    marker = Path(marker_dir, "failed-once")
    if tuple(block_id) == victim and not marker.exists():
        marker.touch()
        raise RuntimeError("transient failure (injected by the test)")
    return block


class DyingBlockstore(DirectoryBlockstore):
    """Kills its worker process hard in the middle of writing chunk blocks, once."""

    def __init__(self, path: str, marker: str, after: int) -> None:
        super().__init__(path)
        self.marker = marker
        self.after = after
        self._puts = 0

    def _put(self, link: Link, data: bytes) -> None:
        if link.cid_bytes[1] == RAW and not os.path.exists(self.marker):
            self._puts += 1
            if self._puts > self.after:
                Path(self.marker).touch()
                os._exit(1)  # like the OOM killer: no cleanup, no exception
        super()._put(link, data)


def worker_pids() -> int:
    return os.getpid()


def as_float(block: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.asarray(block)


class DyingMergeBlockstore(DirectoryBlockstore):
    """Kills its worker process hard while a merge task writes its nodes, once."""

    def __init__(self, path: str, marker: str, merging: bool = False) -> None:
        super().__init__(path)
        self.marker = marker
        self.merging = merging

    def open_task(self, inputs: Sequence[Link] = ()) -> DirectoryBlockstore:
        # A merge task names the partial roots it reads; a write task names none.
        return DyingMergeBlockstore(str(self.path), self.marker, merging=bool(inputs))

    def _put(self, link: Link, data: bytes) -> None:
        if self.merging and link.cid_bytes[1] == DAG_CBOR and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        super()._put(link, data)
