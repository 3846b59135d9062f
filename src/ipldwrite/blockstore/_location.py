"""Where a CAR file (or a directory of them) is: a local path, or a URL fsspec reaches.

A URL is never taken for a local path: ``file://`` is a local path, any other scheme goes
to fsspec's filesystem for it, or is refused naming the extra that brings it.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ipldwrite.errors import UnsupportedBlockstoreError

__all__ = ["car_location", "url_scheme"]

#: ``scheme://`` at the start of a string: RFC 3986's scheme syntax.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

#: The extra that brings fsspec's filesystem for a scheme (s3fs, gcsfs, adlfs).
_FSSPEC_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure"}
_FSSPEC_EXTRAS |= {"abfs": "azure", "abfss": "azure"}


def url_scheme(value: str) -> str | None:
    """The lower-cased scheme of a URL-like string, or None for a plain path."""
    match = _URL.match(value)
    return match.group(1).lower() if match else None


def car_location(
    location: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
    *,
    write: bool = False,
) -> tuple[Any, str]:
    """(fsspec filesystem, or None for a local file; the path on it). ``write``: refuse
    locations that can only be read (plain HTTP)."""
    text = os.fspath(location)
    scheme = url_scheme(text)
    if scheme is None:
        return None, os.path.abspath(os.path.expanduser(text))
    if scheme == "file":
        return None, os.path.abspath(text[len("file://") :])
    if write and scheme in ("http", "https"):
        raise UnsupportedBlockstoreError(
            f"CAR files cannot be written to {text!r}: HTTP URLs are read-only here. Write "
            "to a path or an object store (s3://, gs://, az://) and serve it from there.",
            url=text,
        )
    from fsspec.core import url_to_fs
    from fsspec.implementations.local import LocalFileSystem

    try:
        fs, path = url_to_fs(text, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        extra = _FSSPEC_EXTRAS.get(scheme)
        hint = (
            f"`pip install 'ipldwrite[{extra}]'`"
            if extra
            else f"install the fsspec filesystem for {scheme}://"
        )
        raise UnsupportedBlockstoreError(
            f"cannot reach CAR files at {text!r} ({exc}); {hint}. URLs are never taken for "
            "local paths.",
            url=text,
        ) from exc
    if isinstance(fs, LocalFileSystem):
        return None, os.path.abspath(path)  # plain os calls: pread, no fsspec buffering
    return fs, path
