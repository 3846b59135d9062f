"""Adapters around other libraries' private or version-dependent APIs.

Every name ipldwrite takes from inside xarray or zarr-python (their private writer
functions, metadata classes, codec pipelines) is imported here, and only here, behind a
check of the installed version: an upgrade that moves or changes one of them fails at
``import ipldwrite`` with the supported range, instead of writing different bytes.
``tests/test_compat.py`` keeps the rest of the package from importing such names directly.

The lowest layer: imports nothing of ipldwrite but :mod:`ipldwrite.errors`.
"""

from __future__ import annotations

from packaging.version import Version

from ipldwrite.errors import UnsupportedVersionError

__all__ = ["require_version"]


def require_version(library: str, installed: str, minimum: str, below: str) -> Version:
    """The installed version of ``library``, if ``minimum <= installed < below``."""
    version = Version(installed)
    if not Version(minimum) <= version < Version(below):
        raise UnsupportedVersionError(
            f"ipldwrite supports {library} >={minimum},<{below}; {library} {installed} is "
            f"installed. Install a supported one: pip install '{library}>={minimum},<{below}'",
            library=library,
            installed=installed,
        )
    return version
