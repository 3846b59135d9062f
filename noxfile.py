"""The supported ends of xarray and zarr-python: ``nox -s oldest newest``.

ipldwrite uses private APIs of both (``src/ipldwrite/_compat``), so each end of the range
that ``pyproject.toml`` states is installed in a fresh virtualenv and checked with the
tests that go through them: round trips, the writer, the store, ops and the pinned root
CIDs of tests/vectors, which must be the same on both ends.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

#: What these tests need beyond ipldwrite's own dependencies (netCDF4, with cftime: the
#: ERA-Interim file and non-standard calendars; eofs: a real analysis on joined data).
TEST_DEPS = ["pytest>=8", "pytest-timeout>=2.3", "pytest-asyncio>=0.24", "hypothesis>=6.100"]
TEST_DEPS += ["netCDF4>=1.7", "eofs>=2.0"]

TESTS = [
    "tests/test_compat.py",
    "tests/test_vectors.py",
    "tests/test_xarray_roundtrip.py",
    "tests/test_store_conformance.py",
    "tests/test_write_cf.py",
    "tests/test_write_faults.py",
    "tests/test_write_region.py",
    "tests/test_ops.py",
    "tests/test_joins_canonical.py",
]

#: The lowest supported versions (the lower bounds in pyproject.toml, which
#: tests/test_compat.py checks against these), with a NumPy of their time: NumPy 2.4
#: deprecates the generic timedelta unit that xarray 2025.9 uses at import.
OLDEST = ["xarray==2025.9.1", "zarr==3.2.0", "numpy<2.4"]

#: zarr 3.2 warns on every fixed-length string array (it had no spec for the data type
#: yet; zarr 3.3 has one): zarr's warning about its own format, not ipldwrite's.
OLDEST_WARNINGS = ["-W", "ignore::zarr.errors.UnstableSpecificationWarning"]


def _run_tests(session: nox.Session, *pins: str) -> None:
    session.install("-e", ".", *TEST_DEPS, *pins)
    session.run("python", "-c", "import xarray, zarr; print(xarray.__version__, zarr.__version__)")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *TESTS, *session.posargs)


@nox.session
def oldest(session: nox.Session) -> None:
    """The lowest xarray and zarr-python that ipldwrite supports."""
    session.env["PYTEST_ADDOPTS"] = " ".join(OLDEST_WARNINGS)
    _run_tests(session, *OLDEST)


@nox.session
def newest(session: nox.Session) -> None:
    """The newest xarray and zarr-python on the index, within the supported range."""
    _run_tests(session, "--upgrade", "xarray", "zarr")
