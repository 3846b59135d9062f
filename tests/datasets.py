"""Datasets the tests write: generated ones that exercise the format, and real files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from conftest import SHARED_DATA


def climate_cube(
    times: int = 12, lat: int = 18, lon: int = 36, *, seed: int = 0, start: str = "2000-01-01"
) -> xr.Dataset:
    """A small climate-like dataset: several dtypes, NaN fills, attributes, a 4-D variable."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=times, freq="D")
    lats = np.linspace(-85, 85, lat, dtype="float32")
    lons = np.linspace(0, 350, lon, dtype="float32")
    levels = np.array([1000, 850, 500], dtype="int32")
    t2m = (280 + 10 * rng.standard_normal((times, lat, lon))).astype("float32")
    t2m[0, 0, :5] = np.nan
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 m temperature"}),
            "precip": (
                ("time", "lat", "lon"),
                rng.gamma(1.0, 2.0, (times, lat, lon)).astype("float32"),
                {"units": "mm/day", "valid_min": 0.0},
            ),
            "wind": (
                ("time", "level", "lat", "lon"),
                rng.standard_normal((times, 3, lat, lon)).astype("float64"),
                {"units": "m s-1"},
            ),
            "land": (("lat", "lon"), rng.random((lat, lon)) > 0.7),
            "station_count": (("time",), rng.integers(0, 500, times).astype("int16")),
            "quality": (("lat", "lon"), rng.integers(0, 255, (lat, lon)).astype("uint8")),
        },
        coords={"time": time, "lat": lats, "lon": lons, "level": levels},
        attrs={
            "title": "ipldwrite test cube",
            "Conventions": "CF-1.8",
            "history": "généré pour les tests ✓",
            "levels_hpa": [1000, 850, 500],
        },
    )
    ds["t2m"].encoding.update({"_FillValue": np.float32(np.nan)})
    ds["precip"].encoding.update({"_FillValue": np.float32(-9999.0)})
    return ds


def eraint_path() -> str:
    return str(SHARED_DATA / "eraint_uvz.nc")
