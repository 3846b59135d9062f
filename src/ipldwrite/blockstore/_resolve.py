"""From what users write to a blockstore: instances, paths, ``car:`` directories and URLs.

A string that looks like a URL (``scheme://…``) is never taken for a local path: it goes to
the backend registered for its scheme, or is refused with the extra to install. Backends
register themselves here (``register_scheme``), so the layers above name no backend.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

from ipldwrite.blockstore._base import Blockstore
from ipldwrite.blockstore._car import CarBlockstore
from ipldwrite.blockstore._carset import CarSetBlockstore
from ipldwrite.blockstore._directory import DirectoryBlockstore
from ipldwrite.blockstore._location import url_scheme
from ipldwrite.blockstore._objectstore import OBJECT_STORE_SCHEMES, ObjectStoreBlockstore
from ipldwrite.blockstore._taskcar import TaskCarBlockstore
from ipldwrite.errors import UnsupportedBlockstoreError

__all__ = [
    "DEFAULT_BLOCKSTORE_PATH",
    "BlockstoreSpec",
    "default_blockstore",
    "register_scheme",
    "resolve_blockstore",
]

#: Where the embedded default blockstore lives unless IPLDWRITE_BLOCKSTORE says otherwise.
DEFAULT_BLOCKSTORE_PATH = "~/.cache/ipldwrite/blocks"

BlockstoreSpec = Blockstore | str | os.PathLike[str] | None

#: scheme -> factory(url, **options). Filled by the backends that can serve a scheme.
_SCHEMES: dict[str, Callable[..., Blockstore]] = {}

#: Schemes we know of, and the extra that brings their backend (for the refusal message).
_EXTRAS: dict[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "azure": "azure",
    "http": "ipfs",
    "https": "ipfs",
    "ipfs": "ipfs",
    "gateway+http": "ipfs",
    "gateway+https": "ipfs",
}


def _ipfs_backend(kind: str) -> Callable[..., Blockstore]:
    """The factory of an IPFS backend, imported on first use: they need the ``ipfs`` extra."""

    def make(url: str, **options: Any) -> Blockstore:
        try:
            if kind == "gateway":
                from ipldwrite.blockstore._gateway import GatewayBlockstore

                return GatewayBlockstore(url[len("gateway+") :], **options)
            from ipldwrite.blockstore._kubo import KuboBlockstore

            return KuboBlockstore(url, **options)
        except ImportError as exc:
            raise UnsupportedBlockstoreError(
                f"{url!r} needs an HTTP client that is not installed ({exc}); install it with "
                "`pip install 'ipldwrite[ipfs]'`. URLs are never taken for local paths.",
                url=url,
            ) from None

    return make


def register_scheme(scheme: str, factory: Callable[..., Blockstore]) -> None:
    """Serve ``scheme://`` blockstore URLs with ``factory(url, **options)``."""
    _SCHEMES[scheme.lower()] = factory


# An IPFS node's RPC API is a plain http(s):// URL (what Kubo prints as "RPC API server
# listening on"); a trustless gateway is marked, since both are HTTP and only the user knows
# which one a URL points at: "gateway+http://127.0.0.1:8080".
for _scheme in ("http", "https"):
    register_scheme(_scheme, _ipfs_backend("rpc"))
    register_scheme(f"gateway+{_scheme}", _ipfs_backend("gateway"))
if importlib.util.find_spec("obstore") is not None:  # the s3 / gcs / azure extras
    for _scheme in OBJECT_STORE_SCHEMES:
        register_scheme(_scheme, ObjectStoreBlockstore)


def default_blockstore() -> DirectoryBlockstore:
    """The embedded default: a :class:`DirectoryBlockstore` at ``$IPLDWRITE_BLOCKSTORE``
    (default ``~/.cache/ipldwrite/blocks``)."""
    return DirectoryBlockstore(os.environ.get("IPLDWRITE_BLOCKSTORE", DEFAULT_BLOCKSTORE_PATH))


def resolve_blockstore(blockstore: BlockstoreSpec, **options: Any) -> Blockstore:
    """A blockstore from what users pass: an instance, a directory path, a ``.car`` file, a
    directory of CARs, ``"car:<directory or URL>"`` (one CAR per write task), a URL whose
    scheme a backend serves, or None (the default). ``options`` go to the backend."""
    if blockstore is None:
        return default_blockstore()
    if isinstance(blockstore, Blockstore):
        return blockstore
    if not isinstance(blockstore, str | os.PathLike):
        raise TypeError(
            f"expected a Blockstore, a directory path or a URL, got {type(blockstore).__name__}"
        )
    spec = os.fspath(blockstore)
    if spec.startswith("car:"):
        return TaskCarBlockstore(spec[len("car:") :], **options)
    scheme = url_scheme(spec)
    if scheme == "file":
        spec = spec[len("file://") :]
    elif scheme is not None:
        if spec.endswith(".car"):  # one CAR at a URL: read in place, a range request a block
            return CarSetBlockstore(spec, **options)
        return _from_url(scheme, spec, options)
    if spec.endswith(".car"):
        return CarBlockstore(spec, **options)
    if _is_car_directory(spec):
        return CarSetBlockstore(spec, **options)
    return DirectoryBlockstore(spec, **options)


def _from_url(scheme: str, url: str, options: dict[str, Any]) -> Blockstore:
    factory = _SCHEMES.get(scheme)
    if factory is not None:
        return factory(url, **options)
    extra = _EXTRAS.get(scheme)
    hint = (
        f"install the extra that serves it (`pip install 'ipldwrite[{extra}]'`)"
        if extra
        else "use a local directory, a `car:` directory, or a URL scheme ipldwrite serves"
    )
    served = ", ".join(f"{s}://" for s in sorted(_SCHEMES)) or "none"
    raise UnsupportedBlockstoreError(
        f"no blockstore serves {scheme}:// URLs ({url!r}); {hint}. "
        f"URLs are never taken for local paths. Schemes served now: {served}.",
        url=url,
    )


def _is_car_directory(path: str) -> bool:
    """A directory of CAR files (a sharded export, a per-task write), not a blockstore."""
    if not os.path.isdir(path) or os.path.exists(os.path.join(path, "ipldwrite-blockstore.json")):
        return False
    return any(name.endswith(".car") for name in os.listdir(path))
