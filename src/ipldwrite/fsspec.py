"""An fsspec filesystem for zarr-on-IPLD datasets: ``ipld://<root CID>/<zarr key>``.

Registered under the ``ipld`` protocol by entry point (``fsspec.specs``), so anything that
takes fsspec URLs reads a dataset by CID without importing ipldwrite first::

    xr.open_zarr("ipld://bafyrei…", storage_options={"blockstore": "http://127.0.0.1:5001"})

``blockstore`` is anything :func:`~ipldwrite.blockstore.resolve_blockstore` takes (a
directory, CARs, a node's RPC URL, ``gateway+http://…``); the default is the embedded one.
The key space is the dataset's zarr v3 store (:class:`~ipldwrite.store.IPLDStore`), read-only.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from fsspec.spec import AbstractFileSystem

from ipldwrite.blockstore import BlockstoreSpec, resolve_blockstore
from ipldwrite.dag import chunk_size
from ipldwrite.errors import InvalidCIDError
from ipldwrite.ipld import to_link
from ipldwrite.store import IPLDStore

__all__ = ["IPLDFileSystem"]


class IPLDFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Read-only files of zarr-on-IPLD datasets, addressed ``<root CID>/<zarr key>``."""

    protocol = "ipld"
    root_marker = ""

    def __init__(self, blockstore: BlockstoreSpec = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blockstore = resolve_blockstore(blockstore)
        self._stores: dict[bytes, IPLDStore] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        for prefix in ("ipld://", "ipfs://", "/ipfs/"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        return text.strip("/")

    def _split(self, path: str) -> tuple[IPLDStore, str]:
        cid, _, key = self._strip_protocol(path).partition("/")
        try:
            root = to_link(cid)
        except InvalidCIDError as exc:
            raise FileNotFoundError(f"{path}: {exc}") from None
        with self._lock:
            store = self._stores.get(root.cid_bytes)
            if store is None:
                store = self._stores[root.cid_bytes] = IPLDStore(
                    self.blockstore, root, read_only=True
                )
        return store, key

    def _entry(self, store: IPLDStore, cid: str, key: str) -> dict[str, Any] | None:
        found = store.locate(key) if key else None
        name = f"{cid}/{key}" if key else cid
        if found is not None:
            size = len(found) if isinstance(found, bytes) else chunk_size(store.blockstore, found)
            return {"name": name, "size": size, "type": "file"}
        if not key or store.children(key):
            return {"name": name, "size": 0, "type": "directory"}
        return None

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        store, key = self._split(path)
        cid = self._strip_protocol(path).partition("/")[0]
        info = self._entry(store, cid, key)
        if info is None:
            raise FileNotFoundError(path)
        if info["type"] == "file":
            return [info] if detail else [info["name"]]
        entries = []
        for name in store.children(key):
            child = f"{key}/{name}" if key else name
            entry = self._entry(store, cid, child)
            if entry is not None:
                entries.append(entry)
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        store, key = self._split(path)
        info = self._entry(store, self._strip_protocol(path).partition("/")[0], key)
        if info is None:
            raise FileNotFoundError(path)
        return info

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        store, key = self._split(path)
        found = store.locate(key) if key else None
        if found is None:
            raise FileNotFoundError(path)
        buffer = store.get_sync(key)
        assert buffer is not None
        return buffer.to_bytes()[start:end]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> io.BytesIO:
        if mode != "rb":
            raise PermissionError(f"ipld:// is read-only; cannot open {path} with mode {mode!r}")
        return io.BytesIO(self.cat_file(path))

    def ukey(self, path: str) -> str:
        # Content-addressed: the path (root CID + key) names the bytes for ever.
        return str(self._strip_protocol(path))
