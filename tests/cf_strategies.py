"""Hypothesis strategies for CF-like datasets: what real climate files look like.

``cf_datasets()`` draws an ``xarray.Dataset`` with named dimensions (size 1 often, size 0
sometimes), monotonic 1-D index coordinates (numeric, datetime64 with CF units, cftime
calendars), bounds variables, string coordinates, scalar coordinates of many dtypes, data
variables of every dtype zarr v3 stores (with ``_FillValue``, NaN fills, packing) and odd
attribute values. ``cf_datatrees()`` draws an ``xarray.DataTree`` of such datasets in nested
groups. Every variable is numpy-backed and can be chunked with Dask along any of its
dimensions.

Some of what the strategies draw makes ``to_zarr`` itself warn (fixed-width byte strings
have no zarr v3 spec yet; Dask-backed object arrays are loaded to find their dtype): apply
``CF_WARNING_FILTERS`` to tests that write them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import strategies as st

__all__ = ["CF_WARNING_FILTERS", "cf_datasets", "cf_datatrees", "cf_dims"]

#: Warnings that ``to_zarr`` gives for some drawn datasets (ours are the same ones).
CF_WARNING_FILTERS = [
    pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning"),
    pytest.mark.filterwarnings(
        "ignore:variable .* has data in the form of a dask array with dtype=object"
        ":xarray.SerializationWarning"
    ),
]

DIM_NAMES = ("time", "level", "lat", "lon", "station")
CALENDARS = ("noleap", "360_day", "julian")  # non-standard: they stay cftime on reading
#: CF time units by the finest step they encode as integers.
TIME_UNITS = {
    "D": ("days since 1900-01-01", "hours since 2000-01-01 00:00:00"),
    "6h": ("hours since 2000-01-01 00:00:00", "seconds since 1970-01-01"),
    "MS": ("days since 1900-01-01", "minutes since 1999-12-30T12:00:00"),
}
NUMERIC = ("float32", "float64", "int8", "int16", "int32", "int64")
NUMERIC += ("uint8", "uint16", "uint32", "uint64")
DATA_DTYPES = (*NUMERIC, "bool", "complex64", "complex128", "datetime64[ns]")
DATA_DTYPES += ("timedelta64[ns]", "object", "<U5", "S4")

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=0, max_size=12
)
_attr_names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=10
).filter(lambda name: name not in ("_FillValue", "missing_value", "units", "calendar"))
_ints = st.integers(-(2**63), 2**63 - 1)


def _numpy_scalar(draw: st.DrawFn) -> Any:
    dtype = draw(st.sampled_from(["int8", "int16", "int32", "int64", "uint64", "float32"]))
    if dtype == "float32":
        return np.float32(draw(st.floats(width=32, allow_nan=False, allow_infinity=False)))
    info = np.iinfo(dtype)
    return np.dtype(dtype).type(draw(st.integers(int(info.min), int(info.max))))


@st.composite
def attr_values(draw: st.DrawFn) -> Any:
    """An attribute value as xarray writes it to zarr: odd ones included."""
    kind = draw(st.sampled_from(["text", "multiline", "int", "float", "numpy", "list", "nested"]))
    if kind == "text":
        return draw(_text)
    if kind == "multiline":
        return "\n".join(draw(st.lists(_text, min_size=2, max_size=4)))
    if kind == "int":
        return draw(_ints)
    if kind == "float":
        return draw(st.floats(allow_nan=True, allow_infinity=True))
    if kind == "numpy":
        if draw(st.booleans()):
            return _numpy_scalar(draw)
        return np.arange(draw(st.integers(1, 4)), dtype=draw(st.sampled_from(["i2", "f8"])))
    if kind == "list":
        return draw(st.lists(st.one_of(_ints, _text), max_size=4))
    return draw(st.lists(st.lists(st.integers(-5, 5), max_size=3), min_size=1, max_size=3))


def attrs_dicts(max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_attr_names, attr_values(), max_size=max_size)


@st.composite
def cf_dims(draw: st.DrawFn, max_dims: int = 3) -> dict[str, int]:
    """Dimension names (in CF order) and sizes: 1 often, 0 sometimes."""
    names = draw(st.lists(st.sampled_from(DIM_NAMES), min_size=1, max_size=max_dims, unique=True))
    sizes = st.sampled_from([0, 1, 1, 2, 3, 4, 5, 7])
    return {name: draw(sizes) for name in sorted(names, key=DIM_NAMES.index)}


def _monotonic(rng: np.random.Generator, size: int, dtype: str, descending: bool) -> Any:
    steps = rng.integers(1, 4, size).astype(dtype) if size else np.zeros(0, dtype)
    values = np.cumsum(steps, dtype=dtype)
    if np.dtype(dtype).kind == "f":
        values = values * np.asarray(0.5, dtype=dtype) - np.asarray(1.25, dtype=dtype)
    return values[::-1].copy() if descending else values


def _time_coord(draw: st.DrawFn, size: int) -> xr.Variable:
    freq = draw(st.sampled_from(["D", "6h", "MS"]))
    start = draw(st.sampled_from(["2000-01-01", "1979-03-01", "2020-02-28"]))
    calendar = draw(st.sampled_from(("numpy", *CALENDARS)))
    attrs = {"standard_name": "time", "axis": "T"}
    if calendar == "numpy":
        values: Any = pd.date_range(start, periods=size, freq=freq).values
    else:
        values = xr.date_range(start, periods=size, freq=freq, calendar=calendar, use_cftime=True)
        values = np.asarray(values)
    var = xr.Variable(("time",), values, attrs)
    if draw(st.booleans()):
        # With the dtype too: xarray refuses units alone for Dask-backed times (bounds).
        var.encoding.update(units=draw(st.sampled_from(TIME_UNITS[freq])), dtype="int64")
        if calendar != "numpy":
            var.encoding["calendar"] = calendar
    return var


def _string_values(rng: np.random.Generator, size: int, dtype: str) -> Any:
    words = np.array(["alpha", "b", "gamma-ray", "é✓", "", "x y"], dtype=object)
    values = words[rng.integers(0, len(words), size)]
    if dtype == "object":
        return values
    if dtype == "S4":
        return np.array([w.encode("utf-8")[:4] for w in values], dtype="S4")
    return values.astype(dtype)


def _index_coord(
    draw: st.DrawFn, rng: np.random.Generator, name: str, size: int
) -> xr.Variable | None:
    if name == "time":
        return _time_coord(draw, size)
    if name == "station":
        return xr.Variable(
            ("station",), np.array([f"st{i:03d}" for i in range(size)], dtype=object)
        )
    dtype = draw(st.sampled_from(["float32", "float64", "int32"]))
    values = _monotonic(rng, size, dtype, descending=name == "lat" and draw(st.booleans()))
    units = {"lat": "degrees_north", "lon": "degrees_east", "level": "hPa"}[name]
    return xr.Variable((name,), values, {"units": units, "standard_name": name})


def _bounds(coord: xr.Variable, name: str) -> xr.Variable:
    """CF bounds for ``coord`` along a size-2 ``bnds`` dimension."""
    values = coord.values
    if np.issubdtype(values.dtype, np.number):
        width = np.asarray(0.5, dtype=values.dtype) if values.dtype.kind == "f" else 1
        lower = values - width
        upper = values + width
    else:  # datetime64 or cftime: each step's start and the same instant
        lower = upper = values
    var = xr.Variable((name, "bnds"), np.stack([lower, upper], axis=-1))
    var.encoding.update(
        {k: v for k, v in coord.encoding.items() if k in ("units", "calendar", "dtype")}
    )
    return var


def _data(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: str
) -> tuple[Any, dict[str, Any]]:
    """Values of ``dtype`` and an encoding (fill values, packing) as CF files have."""
    size = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    encoding: dict[str, Any] = {}
    if kind == "f":
        values = rng.standard_normal(shape).astype(dtype)
        if size:
            values.flat[rng.integers(0, size)] = np.nan
        choice = rng.integers(0, 4)
        if choice == 1:
            encoding["_FillValue"] = np.dtype(dtype).type(np.nan)
        elif choice == 2:
            encoding["_FillValue"] = np.dtype(dtype).type(-9999.0)
        elif choice == 3:  # packed, as ERA files are
            values = (np.round(values * 100) / 100).astype(dtype)
            encoding.update(dtype="int16", scale_factor=0.01, add_offset=0.0, _FillValue=-32767)
        return values, encoding
    if kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(int(info.min), -1000), min(int(info.max) - 1, 1000)
        values = rng.integers(lo, hi, shape, endpoint=True).astype(dtype)
        if rng.integers(0, 2):
            encoding["_FillValue"] = np.dtype(dtype).type(info.max)
        return values, encoding
    if kind == "b":
        return rng.random(shape) > 0.5, encoding
    if kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype), {}
    if kind == "M":
        days = rng.integers(0, 20000, shape).astype("timedelta64[D]")
        values = (np.datetime64("1970-01-01", "ns") + days).astype(dtype)
        if size:
            values.flat[0] = np.datetime64("NaT")
        return values, encoding
    if kind == "m":
        values = (rng.integers(0, 48, shape) * np.timedelta64(1, "h")).astype(dtype)
        return values, encoding
    return _string_values(rng, size, dtype).reshape(shape), encoding


def _scalar_coord(draw: st.DrawFn, rng: np.random.Generator) -> tuple[str, xr.Variable]:
    name, dtype, attrs = draw(
        st.sampled_from(
            [
                ("height", "float64", {"units": "m", "positive": "up"}),
                ("air_pressure", "float32", {"units": "hPa"}),
                ("realization", "int32", {"standard_name": "realization"}),
                ("reftime", "datetime64[ns]", {"standard_name": "forecast_reference_time"}),
                ("forecast_period", "timedelta64[ns]", {}),
                ("experiment", "object", {}),
                ("member_code", "<U5", {}),
                ("is_analysis", "bool", {}),
                ("ensemble_flag", "uint8", {"flag_values": [0, 1]}),
            ]
        )
    )
    values, encoding = _data(rng, (), dtype)
    var = xr.Variable((), values, attrs)
    var.encoding.update(encoding)
    return name, var


@st.composite
def cf_datasets(
    draw: st.DrawFn,
    *,
    dims: dict[str, int] | None = None,
    max_data_vars: int = 3,
    index_coords: bool = True,
) -> xr.Dataset:
    """A CF-like Dataset; with ``dims`` given, over those dimensions."""
    dims = draw(cf_dims()) if dims is None else dims
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    coords: dict[str, xr.Variable] = {}
    data_vars: dict[str, xr.Variable] = {}
    if index_coords:
        for name, size in dims.items():
            if not draw(st.integers(0, 4)):
                continue  # a dimension without a coordinate, as in many files
            coord = _index_coord(draw, rng, name, size)
            if coord is None:
                continue
            if name != "station" and draw(st.booleans()):
                bounds = f"{name}_bnds"
                coord.attrs["bounds"] = bounds
                data_vars[bounds] = _bounds(coord, name)
            coords[name] = coord
    for _ in range(draw(st.integers(0, 2))):
        name, var = _scalar_coord(draw, rng)
        coords[name] = var
    if "station" in dims and draw(st.booleans()):
        dtype = draw(st.sampled_from(["object", "<U5", "S4"]))
        values = _string_values(rng, dims["station"], dtype)
        coords["station_name"] = xr.Variable(("station",), values, {"cf_role": "timeseries_id"})
    names = list(dims)
    for n in range(draw(st.integers(1, max_data_vars))):
        var_dims = [d for d in names if draw(st.booleans())] if names else []
        dtype = draw(st.sampled_from(DATA_DTYPES))
        values, encoding = _data(rng, tuple(dims[d] for d in var_dims), dtype)
        var = xr.Variable(tuple(var_dims), values, draw(attrs_dicts(3)))
        var.encoding.update(encoding)
        data_vars[f"var{n}_{np.dtype(dtype).kind}"] = var
    return xr.Dataset(data_vars, coords, attrs=draw(attrs_dicts()))


@st.composite
def cf_datatrees(draw: st.DrawFn, max_children: int = 3) -> xr.DataTree:
    """A DataTree: a root dataset with the coordinates, groups (nested up to two deep)
    with variables over the same dimensions, so every node aligns with its parents."""
    dims = draw(cf_dims())
    tree: dict[str, xr.Dataset] = {"/": draw(cf_datasets(dims=dims, max_data_vars=1))}
    paths = draw(
        st.lists(
            st.sampled_from(["/surface", "/upper", "/upper/levels", "/ocean/deep"]),
            min_size=1,
            max_size=max_children,
            unique=True,
        )
    )
    for path in sorted(paths):
        tree[path] = draw(cf_datasets(dims=dims, index_coords=False, max_data_vars=2))
    return xr.DataTree.from_dict(tree)
