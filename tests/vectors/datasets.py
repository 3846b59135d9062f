"""The pinned test vectors of docs/spec.md ("Test vectors"): small, deterministic datasets.

Every value is computed from integers (no random numbers), and every array is written
uncompressed (only the ``bytes`` codec), so chunk bytes do not depend on a compressor's
version. Regenerate the expectations only for a deliberate format change:
``python tests/vectors/generate.py`` (then bump the format version in docs/spec.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

Vector = tuple[xr.Dataset | xr.DataTree, dict[str, Any]]


def _raw(ds: xr.Dataset, **chunks: tuple[int, ...]) -> dict[str, Any]:
    """Encoding: no compressor for every variable, and the given chunks."""
    return {
        str(name): {
            "compressors": None,
            **({"chunks": chunks[str(name)]} if name in chunks else {}),
        }
        for name in ds.variables
    }


def one_d() -> Vector:
    ds = xr.Dataset(
        {"v": ("x", np.arange(100, dtype="float64") / 4, {"units": "m"})},
        coords={"x": np.arange(100, dtype="int32")},
        attrs={"title": "one_d"},
    )
    return ds, _raw(ds, v=(10,))


def four_d() -> Vector:
    shape = (70, 3, 20, 16)  # grid (70, 3, 5, 4): 4200 chunks, more than one leaf holds
    ds = xr.Dataset(
        {
            "v": (
                ("t", "z", "y", "x"),
                (np.arange(np.prod(shape)) % 32749).astype("int16").reshape(shape),
            )
        },
        coords={"t": np.arange(70, dtype="int64"), "z": np.array([1000, 850, 500], "int32")},
    )
    return ds, _raw(ds, v=(1, 1, 4, 4))


def zero_d() -> Vector:
    ds = xr.Dataset(
        {"p": ((), np.float64(3.5), {"units": "hPa"}), "n": ((), np.int32(-7))},
        coords={"height": ((), np.float32(2.0), {"units": "m"})},
    )
    return ds, _raw(ds)


def groups() -> Vector:
    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs={"title": "groups"}),
            "/a": xr.Dataset({"u": ("x", np.arange(4, dtype="uint8"))}),
            "/a/b": xr.Dataset({"w": (("y", "x"), np.arange(12, dtype="float32").reshape(3, 4))}),
        }
    )
    return tree, {"/a": {"u": {"compressors": None}}, "/a/b": {"w": {"compressors": None}}}


def big_chunk() -> Vector:
    # One chunk of 1,600,000 bytes: stored as a UnixFS file (two 1 MiB-bounded leaves).
    ds = xr.Dataset({"v": ("x", np.arange(200_000, dtype="float64"))})
    return ds, _raw(ds, v=(200_000,))


def strings() -> Vector:
    ds = xr.Dataset(
        {
            "names": ("s", np.array(["α", "beta", "", "γδ"], dtype=object)),
            "codes": ("s", np.array(["ab", "c", "def", "g"], dtype="<U3")),
        },
        attrs={"note": "strings"},
    )
    return ds, _raw(ds, names=(2,), codes=(2,))


VECTORS: dict[str, Callable[[], Vector]] = {
    "one_d": one_d,
    "four_d": four_d,
    "zero_d": zero_d,
    "groups": groups,
    "big_chunk": big_chunk,
    "strings": strings,
}
