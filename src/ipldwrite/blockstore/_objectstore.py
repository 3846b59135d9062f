"""Blocks on object storage (S3, GCS, Azure, local files): one object per block, via obstore.

Layout: ``<prefix>/<two characters>/<CID in base32>``, the two characters being the
next-to-last two of the CID string (go-ds-flatfs's ``next-to-last/2``: the start of a CID
string is the same for every block, its last character carries fewer bits), so a listing
of one shard stays small. The layout is the same as :class:`DirectoryBlockstore`'s
``blocks/`` directory, so a directory blockstore synced to a bucket is readable as is.

Why obstore rather than fsspec: one Rust client (``object_store``, the Arrow project's) for
S3, GCS, Azure and local files, with conditional puts (``mode="create"``), retries with
exponential backoff and async calls built in, and no Python event loop or session for a
worker process to keep alive. fsspec is still how CAR files reach object stores (``car:``
directories, CAR paths), where a file-like object with range reads is what the CAR code
needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import threading
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any, Final

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.errors import UnsupportedBlockstoreError
from ipldwrite.ipld import Link, link_str, to_link, verify_block

__all__ = ["OBJECT_STORE_SCHEMES", "ObjectStoreBlockstore"]

#: Requests in flight at once for the batch calls (get_many, put_many, a task's flush).
DEFAULT_CONCURRENCY: Final = 16
#: A task's buffer is flushed once it holds this much, so a large Dask block cannot hold
#: twice its size in memory until the task ends.
TASK_BUFFER_BYTES: Final = 64 << 20

#: URL schemes served (``file://`` stays a path: a DirectoryBlockstore, same layout).
OBJECT_STORE_SCHEMES: Final = ("s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss")

_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://([^/]*)/?(.*)$", re.IGNORECASE)


def _obstore(url: str = "") -> Any:
    try:
        import obstore
    except ImportError as exc:
        raise UnsupportedBlockstoreError(
            "ObjectStoreBlockstore needs obstore: `pip install 'ipldwrite[s3]'` (or [gcs], "
            "[azure])",
            url=url,
        ) from exc
    return obstore


def _run[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, even inside a running loop
    (a notebook): there it runs on a private thread, never nested in the caller's loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def make_store(url: str, options: dict[str, Any]) -> Any:
    """The obstore client for ``url`` (``s3://bucket/prefix``, ``gs://…``, ``az://container/
    prefix``, ``file:///path``, ``memory://``); ``options`` go to its constructor."""
    _obstore(url)
    from obstore import store as stores

    match = _URL.match(url)
    if match is None:
        raise ValueError(f"{url!r} is not an object store URL (scheme://bucket/prefix)")
    scheme, bucket, prefix = match.group(1).lower(), match.group(2), match.group(3).strip("/")
    if scheme in ("s3", "s3a"):
        return stores.S3Store(bucket, prefix=prefix or None, **options)
    if scheme in ("gs", "gcs"):
        return stores.GCSStore(bucket, prefix=prefix or None, **options)
    if scheme in ("az", "azure", "abfs", "abfss"):
        return stores.AzureStore(bucket, prefix=prefix or None, **options)
    if scheme == "file":
        path = "/" + prefix if not bucket else f"{bucket}/{prefix}"
        return stores.LocalStore(os.path.expanduser(path), mkdir=True, **options)
    if scheme == "memory":
        return stores.MemoryStore()
    raise UnsupportedBlockstoreError(
        f"ObjectStoreBlockstore does not serve {scheme}:// ({url!r}); use s3://, gs://, "
        "az://, file:// or memory://",
        url=url,
    )


#: One client per location and options in each process: every Dask task unpickles its own
#: copy of the blockstore, and a client per task would reconnect (and, on a cloud, fetch
#: credentials) per task. A ``memory://`` store is its own data, so never shared.
_CLIENTS: dict[tuple[str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(url: str, options: dict[str, Any]) -> Any:
    if url.lower().startswith("memory:"):
        return make_store(url, options)
    key = (url, repr(sorted(options.items())))
    with _CLIENTS_LOCK:
        store = _CLIENTS.get(key)
        if store is None:
            store = _CLIENTS[key] = make_store(url, options)
        return store


class ObjectStoreBlockstore(Blockstore):
    """Blocks as objects under ``url``: ``s3://bucket/prefix``, ``gs://bucket/prefix``,
    ``az://container/prefix``, ``file:///path`` (or ``memory://``, for tests).

    ``options`` go to obstore's store constructor (``S3Store``, ``GCSStore``,
    ``AzureStore``, ``LocalStore``): ``endpoint``, ``region``, ``allow_http``,
    ``client_options``, ``retry_config``, ``credential_provider``…  Credentials come as
    obstore takes them: from the environment (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``),
    profiles and instance metadata, a ``credential_provider``, or options.

    Writes are idempotent: a block's key is its CID, so a put is conditional
    (``mode="create"``: the server refuses to overwrite, and the refusal means "already
    there"); backends without conditional puts get a HEAD first. Requests are retried
    with exponential backoff by obstore (its ``retry_config``; a retried put of the same
    bytes is harmless). ``get_many``/``put_many``/``has_many`` run up to ``concurrency``
    requests at once. A missing object is :class:`BlockNotFoundError`; ``verify=True``
    re-hashes every block read.

    On a Dask cluster every task writes through a buffer (:meth:`open_task`) whose
    blocks are uploaded concurrently when the task ends (or every 64 MiB).

    Pickling (the task graph carries the blockstore to every worker) keeps the URL and
    the options, never the client: each process builds its own, and so re-reads the
    environment and profiles of the machine it runs on. Secrets given as options
    (``secret_access_key``, ``account_key``…) are therefore pickled in clear; give them
    through the workers' environment or a ``credential_provider`` (pickled by reference,
    called on the worker) instead.
    """

    supports_listing = True

    def __init__(
        self,
        url: str,
        *,
        verify: bool = False,
        hasher: str = "sha2-256",
        max_block_size: int = 1 << 20,
        read_only: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            verify=verify, hasher=hasher, max_block_size=max_block_size, read_only=read_only
        )
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} must be at least 1")
        self.url = url
        self.options = options
        self.concurrency = concurrency
        self.batch = batch
        self.shared_between_processes = not url.lower().startswith("memory:")
        self._obstore: Any = _client(url, options)  # fails now on a bad URL or option
        self._conditional = True  # cleared if the backend refuses mode="create"

    @property
    def store(self) -> Any:
        """The obstore client of this process (rebuilt after unpickling)."""
        if self._obstore is None:
            self._obstore = _client(self.url, self.options)
        return self._obstore

    @staticmethod
    def key(link: Link) -> str:
        name = link_str(link)
        return f"{name[-3:-1]}/{name}"

    # -- the backend ------------------------------------------------------------------------
    def _get(self, link: Link) -> bytes | None:
        obstore = _obstore()
        try:
            return bytes(obstore.get(self.store, self.key(link)).bytes())
        except FileNotFoundError:  # obstore's NotFoundError is one
            return None

    def _has(self, link: Link) -> bool:
        obstore = _obstore()
        try:
            obstore.head(self.store, self.key(link))
        except FileNotFoundError:
            return False
        return True

    def _size(self, link: Link) -> int | None:
        obstore = _obstore()
        try:
            return int(obstore.head(self.store, self.key(link))["size"])
        except FileNotFoundError:
            return None

    def _put(self, link: Link, data: BlockData) -> None:
        obstore = _obstore()
        from obstore.exceptions import AlreadyExistsError, NotSupportedError

        key = self.key(link)
        if self._conditional:
            try:
                obstore.put(self.store, key, bytes(data), mode="create")
                return
            except AlreadyExistsError:
                return  # content addressing: what is there is these bytes
            except NotSupportedError:
                self._conditional = False
        if not self._has(link):
            obstore.put(self.store, key, bytes(data))

    def _iter_links(self) -> Iterator[Link]:
        obstore = _obstore()
        for batch in obstore.list(self.store, None):
            for meta in batch:
                name = str(meta["path"]).rpartition("/")[2]
                if name and not name.startswith("."):
                    yield to_link(name)

    # -- async, bounded -----------------------------------------------------------------------
    async def _put_async(self, link: Link, data: bytes) -> None:
        obstore = _obstore()
        from obstore.exceptions import AlreadyExistsError, NotSupportedError

        key = self.key(link)
        if self._conditional:
            try:
                await obstore.put_async(self.store, key, data, mode="create")
                return
            except AlreadyExistsError:
                return  # content addressing: what is there is these bytes
            except NotSupportedError:
                self._conditional = False
        try:
            await obstore.head_async(self.store, key)
        except FileNotFoundError:
            await obstore.put_async(self.store, key, data)

    async def _get_async(self, link: Link) -> bytes | None:
        obstore = _obstore()
        try:
            result = await obstore.get_async(self.store, self.key(link))
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None

    async def _has_async(self, link: Link) -> bool:
        obstore = _obstore()
        try:
            await obstore.head_async(self.store, self.key(link))
        except FileNotFoundError:
            return False
        return True

    async def _bounded[T](self, coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(coro: Coroutine[Any, Any, T]) -> T:
            async with gate:
                return await coro

        return list(await asyncio.gather(*(one(c) for c in coros)))

    def upload(self, blocks: Sequence[tuple[Link, bytes]]) -> None:
        """Store already-checked blocks, ``concurrency`` requests at a time."""
        if blocks:
            _run(self._bounded(self._put_async(link, data) for link, data in blocks))

    def get_many(self, links: Iterable[Link]) -> Iterator[tuple[Link, bytes]]:
        links = list(links)
        found = _run(self._bounded(self._get_async(link) for link in links))
        for link, data in zip(links, found, strict=True):
            if data is None:
                yield link, self.get(link)  # identity CIDs, or the error naming the CID
                continue
            if self.verify:
                verify_block(link, data)
            yield link, data

    def put_many(self, blocks: Iterable[tuple[Link, bytes]]) -> None:
        checked = []
        for link, data in blocks:
            self.check_put(link, data)
            checked.append((link, bytes(data)))
        self.upload(checked)

    def has_many(self, links: Iterable[Link]) -> list[bool]:
        return _run(self._bounded(self._has_async(link) for link in links))

    # -- the per-task hook ----------------------------------------------------------------------
    def open_task(self, inputs: Sequence[Link] = ()) -> Blockstore:
        """A buffer whose blocks go up concurrently when the task ends (``batch=True``)."""
        return _TaskBatch(self) if self.batch else self

    def finish_task(self, task: Blockstore, root: Link) -> None:
        if isinstance(task, _TaskBatch):
            task.flush()

    # -- plumbing -------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_obstore"] = None  # each process builds its own client (and reads its own env)
        return state

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ObjectStoreBlockstore)
            and self.__dask_tokenize__() == other.__dask_tokenize__()
        )

    def __hash__(self) -> int:
        return hash(self.__dask_tokenize__())

    def __repr__(self) -> str:
        return f"ObjectStoreBlockstore({self.url!r})"

    def __dask_tokenize__(self) -> object:
        # Secrets stay out of task names; the URL and endpoint identify where blocks go.
        return (ObjectStoreBlockstore, self.url, str(self.options.get("endpoint", "")))


class _TaskBatch(Blockstore):
    """One task's writes, buffered and uploaded together; reads see the buffer first."""

    def __init__(self, parent: ObjectStoreBlockstore) -> None:
        super().__init__(
            verify=parent.verify, hasher=parent.hasher, max_block_size=parent.max_block_size
        )
        self.parent = parent
        self.blocks: dict[bytes, tuple[Link, bytes]] = {}
        self.buffered = 0
        # zarr may encode a task's chunks on several threads: puts and flushes take turns.
        # Readers need no lock: a flushed dict is replaced only once its upload is done.
        self._lock = threading.Lock()

    def _get(self, link: Link) -> bytes | None:
        held = self.blocks.get(link.cid_bytes)
        return held[1] if held is not None else self.parent._get(link)

    def _has(self, link: Link) -> bool:
        return link.cid_bytes in self.blocks or self.parent._has(link)

    def _size(self, link: Link) -> int | None:
        held = self.blocks.get(link.cid_bytes)
        return len(held[1]) if held is not None else self.parent._size(link)

    def _put(self, link: Link, data: BlockData) -> None:
        with self._lock:
            if link.cid_bytes in self.blocks:
                return
            self.blocks[link.cid_bytes] = (link, bytes(data))
            self.buffered += len(data)
            if self.buffered >= TASK_BUFFER_BYTES:
                self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self.parent.upload(list(self.blocks.values()))
        self.blocks = {}
        self.buffered = 0

    def __repr__(self) -> str:
        return f"task buffer of {self.parent!r}"
