"""zarr-python's internals that ipldwrite relies on, in one place, behind a version check.

ipldwrite renders zarr.json exactly as zarr writes it (so that a dataset read back, or
exported as UnixFS, has zarr's own bytes), parses array metadata to write chunks with
zarr's codecs, and gives write tasks a faster codec pipeline. zarr-python has no public
API for metadata documents or codec pipelines, so those come from ``zarr.core`` here.

Counted as public (imported directly elsewhere), as zarr's API reference lists them: the
top-level ``zarr`` namespace (``Array``, ``AsyncArray``, ``create_array``,
``open_array``), ``zarr.abc.store`` and ``zarr.abc.buffer`` (the store contract and
``Buffer``/``BufferPrototype``), ``zarr.buffer`` (``cpu``, ``default_buffer_prototype``),
``zarr.storage`` (``StorePath``, ``MemoryStore``), ``zarr.codecs``, ``zarr.errors`` and
``zarr.testing``. Everything under ``zarr.core`` and every underscore name is private and
imported only here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import cache
from typing import Any

import zarr
from zarr.abc.store import Store
from zarr.buffer import default_buffer_prototype
from zarr.storage import StorePath

from ipldwrite._compat import require_version

__all__ = [
    "METADATA_ERRORS",
    "ZARR_MINIMUM",
    "ZARR_VERSION",
    "ArrayV3Metadata",
    "array_from_metadata",
    "render_metadata",
    "task_pipeline",
]

#: Checked by the nox sessions ``oldest`` and ``newest`` (noxfile.py). Before 3.3, zarr
#: warns (UnstableSpecificationWarning) on every fixed-length string array; before 3.4.2,
#: ``zarr.open_array`` ignores ``config=`` for an existing array, so xarray's own
#: ``write_empty_chunks`` on an append or region write has no effect there while
#: ipldwrite's write tasks honour it.
ZARR_MINIMUM = "3.2.0"
ZARR_BELOW = "4"
ZARR_VERSION = require_version("zarr", zarr.__version__, ZARR_MINIMUM, ZARR_BELOW)

# After the version check: outside the range these may not exist (an ImportError without
# the supported range) or behave differently.
from zarr.core.array_spec import ArrayConfig, ArraySpec, parse_array_config  # noqa: E402
from zarr.core.group import GroupMetadata  # noqa: E402
from zarr.core.metadata.v3 import ArrayV3Metadata  # noqa: E402

#: What zarr's metadata classes raise for a document they cannot parse (every
#: zarr.errors class is a ValueError; missing or mistyped fields give KeyError/TypeError).
METADATA_ERRORS = (ValueError, TypeError, KeyError)

# FusedCodecPipeline (encode a batch of chunks synchronously, in a thread pool) is new in
# zarr 3.3; before it, write tasks use the array's default pipeline (same bytes, slower).
_HAS_FUSED_PIPELINE = ZARR_VERSION.release >= (3, 3)


def render_metadata(doc: dict[str, Any]) -> bytes:
    """The zarr.json bytes zarr writes for a v3 array or group document (key order and
    formatting are zarr's). Raises one of :data:`METADATA_ERRORS` if zarr cannot parse it."""
    meta: ArrayV3Metadata | GroupMetadata
    if doc.get("node_type") == "array":
        meta = ArrayV3Metadata.from_dict(dict(doc))
    else:
        meta = GroupMetadata.from_dict(dict(doc))
    return bytes(meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes())


def array_from_metadata(
    metadata: ArrayV3Metadata,
    store: Store,
    path: str,
    *,
    write_empty_chunks: bool | None = None,
    pipeline: Any = None,
) -> zarr.Array[Any]:
    """A zarr Array for already-parsed ``metadata`` at ``path`` of ``store``, without
    zarr re-reading zarr.json; with ``pipeline`` (from :func:`task_pipeline`) as its codec
    pipeline, if given."""
    config = None
    if write_empty_chunks is not None:
        config = parse_array_config({"write_empty_chunks": write_empty_chunks})
    async_array = zarr.AsyncArray(metadata, StorePath(store, path), config)
    if pipeline is not None:
        # AsyncArray is a frozen dataclass whose __init__ sets codec_pipeline this way
        # (zarr.core.array.AsyncArray); there is no argument for it.
        object.__setattr__(async_array, "codec_pipeline", pipeline)
    return zarr.Array(async_array)


@cache  # one class per thread count: at most os.cpu_count() of them
def _task_pipeline_class(chunk_threads: int) -> Any:
    from zarr.core.codec_pipeline import FusedCodecPipeline

    class TaskPipeline(FusedCodecPipeline):
        # Relies on FusedCodecPipeline's write/sync_transform/write_sync(max_workers=),
        # as in zarr 3.3 and 3.4.
        async def write(
            self, batch_info: Iterable[Any], value: Any, drop_axes: tuple[int, ...] = ()
        ) -> None:
            batch = list(batch_info)
            if not batch or self.sync_transform is None:
                return await super().write(batch, value, drop_axes)
            # Off zarr's event loop, which every thread of the process shares.
            await asyncio.to_thread(
                self.write_sync, batch, value, drop_axes, max_workers=chunk_threads
            )

    return TaskPipeline


def task_pipeline(metadata: ArrayV3Metadata, chunk_threads: int) -> Any:
    """The codec pipeline a write task uses for an array (None: the array's own).

    zarr's default pipeline schedules a coroutine and thread hops per chunk and codec,
    ~15% of a write task's CPU; the fused pipeline encodes the same bytes with the same
    codecs in one hop, on ``chunk_threads`` threads (1 when the write has more tasks than
    Dask has threads: every thread is already busy with a task). None before zarr 3.3.
    """
    if not _HAS_FUSED_PIPELINE:
        return None
    spec = ArraySpec(
        shape=metadata.chunks,
        dtype=metadata.data_type,
        fill_value=metadata.fill_value,
        config=ArrayConfig.from_dict({}),
        prototype=default_buffer_prototype(),
    )
    return (
        _task_pipeline_class(chunk_threads)
        .from_codecs(metadata.codecs)
        .evolve_from_array_spec(spec)
    )
