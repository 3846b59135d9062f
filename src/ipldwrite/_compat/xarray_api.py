"""xarray's internals that ipldwrite relies on, in one place, behind a version check.

The writer (``ipldwrite.xarray.plan_write``) runs the first half of ``Dataset.to_zarr``
(validation, encoding, the store's metadata writes) and keeps the Dask arrays that
``to_zarr`` would hand to ``dask.array.store``; xarray has no public API for that half,
so its private writer functions are used here. ``ops`` re-encodes CF times exactly as
xarray does, with xarray's own coder.

Counted as public (imported directly elsewhere): the top-level ``xarray`` namespace
(``Dataset``, ``DataArray``, ``DataTree``, ``open_zarr``, ...) and the backend-plugin API
that ``xarray.backends`` exports for third-party engines (``BackendEntrypoint``,
``ZarrBackendEntrypoint``). Everything from a submodule of ``xarray.backends``, from
``xarray.coding``, ``xarray.namedarray`` or ``xarray.core``, and every underscore name,
is private and imported only here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from ipldwrite._compat import require_version

__all__ = [
    "XARRAY_MINIMUM",
    "XARRAY_VERSION",
    "ArrayWriter",
    "decode_cf_datetime",
    "dump_to_store",
    "encode_cf_datetime",
    "is_chunk_alignment_error",
    "is_chunked_array",
    "keep_close",
    "validate_dataset",
    "writable_zarr_store",
]

#: Checked by the nox sessions ``oldest`` and ``newest`` (noxfile.py). Before 2025.9.1,
#: xarray writes ``fill_value: 0.0`` rather than NaN for float arrays in zarr v3 (another
#: root CID for the same dataset) and keeps its writer helpers in ``xarray.backends.api``.
XARRAY_MINIMUM = "2025.9.1"
XARRAY_BELOW = "2027"
XARRAY_VERSION = require_version("xarray", xr.__version__, XARRAY_MINIMUM, XARRAY_BELOW)

# Imported once the version is known to be supported (an ImportError would not say which
# versions are).
from xarray.backends.common import ArrayWriter  # noqa: E402  (a class: what to_zarr passes)
from xarray.backends.writers import (  # noqa: E402  (to_zarr's helpers; here since 2025.9.1)
    _validate_dataset_names,
    get_writable_zarr_store,
)
from xarray.backends.writers import dump_to_store as _dump_to_store  # noqa: E402
from xarray.coding.times import decode_cf_datetime as _decode_cf_datetime  # noqa: E402
from xarray.coding.times import encode_cf_datetime as _encode_cf_datetime  # noqa: E402
from xarray.namedarray.pycompat import is_chunked_array  # noqa: E402


def writable_zarr_store(store: Any, **to_zarr_options: Any) -> Any:
    """xarray's ZarrStore over ``store`` (zarr v3, not consolidated), opened as ``to_zarr``
    opens it with these of its options (``mode``, ``group``, ``append_dim``, ``region``,
    ``safe_chunks``, ``align_chunks``, ``write_empty_chunks``): it checks the mode, group,
    append dimension and region against the store."""
    return get_writable_zarr_store(store, consolidated=False, zarr_format=3, **to_zarr_options)


def validate_dataset(zstore: Any, ds: xr.Dataset, encoding: dict[str, Any]) -> xr.Dataset:
    """``to_zarr``'s checks, in its order: variable names, then the region (``"auto"``
    regions resolved against the store: the returned dataset), then the encoding."""
    _validate_dataset_names(ds)
    # ZarrStore methods (private): the region and encoding checks to_zarr runs.
    ds = zstore._validate_and_autodetect_region(ds)
    zstore._validate_encoding(encoding)
    return ds


def dump_to_store(
    ds: xr.Dataset, zstore: Any, writer: ArrayWriter, encoding: dict[str, Any]
) -> None:
    """Encode ``ds`` and write it to ``zstore`` as ``to_zarr`` does: metadata and
    numpy-backed values are written, Dask arrays are added to ``writer``."""
    _dump_to_store(ds, zstore, writer, encoding=encoding)  # type: ignore[no-untyped-call]


def is_chunk_alignment_error(exc: ValueError) -> bool:
    """Whether ``exc`` is xarray's refusal of Dask chunks that straddle zarr chunks.

    xarray raises a plain ValueError; its messages (ZarrStore's chunk checks,
    ``xarray/backends/chunks.py`` and ``zarr.py``) contain one of these phrases in every
    supported version.
    """
    text = str(exc)
    return "Dask chunk" in text or "uniform chunk" in text


def keep_close(out: xr.Dataset, ds: xr.Dataset) -> xr.Dataset:
    """``out`` (a dataset rebuilt from ``ds``'s variables) closes what ``ds`` closes.

    Dataset has no public getter for its close callback (``_close``), only the setter.
    """
    out.set_close(ds._close)
    return out


def decode_cf_datetime(
    values: npt.NDArray[Any], units: str, calendar: str | None = None
) -> npt.NDArray[Any]:
    """CF-encoded times as datetime64 or cftime dates, as xarray decodes them."""
    return np.asarray(_decode_cf_datetime(values, units, calendar))


def encode_cf_datetime(
    dates: npt.NDArray[Any], units: str, calendar: str, dtype: np.dtype[Any]
) -> npt.NDArray[Any]:
    """Dates as numbers in ``units`` since the epoch it names, as xarray encodes them."""
    encoded, _, _ = _encode_cf_datetime(dates, units, calendar, dtype=dtype)
    return np.asarray(encoded)
