"""What the blockstores over HTTP share: a per-process session, a block cache, pickling."""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from ipldwrite.blockstore._base import Blockstore
from ipldwrite.blockstore._cache import DEFAULT_CACHE_BYTES, BlockCache
from ipldwrite.blockstore._http import HttpSession
from ipldwrite.errors import CorruptBlockError
from ipldwrite.ipld import Link, block_matches, link_str

__all__ = ["NetworkBlockstore"]


class NetworkBlockstore(Blockstore):
    """A blockstore that reaches its blocks over HTTP.

    Every block read is re-hashed (the network and the far end are not trusted), and kept
    in a byte-bounded LRU (``cache_bytes``; 0 turns it off) whose ``cache.hits`` and
    ``cache.misses`` count lookups. ``timeout`` bounds every request and ``retries`` more
    tries follow transient failures. ``transport`` is httpx's seam for tests
    (``httpx.MockTransport``); leave it None to talk to the network.
    """

    shared_between_processes = True

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        max_connections: int = 16,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retries = retries
        self.max_connections = max_connections
        self.transport = transport
        self.cache = BlockCache(cache_bytes)
        self._http: HttpSession | None = None
        self._session_lock = threading.Lock()

    @property
    def session(self) -> HttpSession:
        """This process's session (made on first use, and again after a fork)."""
        http = self._http
        if http is not None and http.alive:
            return http
        # One session per store and process: threads racing here must not make two, or a
        # coroutine started on one session's loop would use the other's client.
        with self._session_lock:
            http = self._http
            if http is None or not http.alive:
                http = self._http = HttpSession(
                    headers=self.headers,
                    timeout=self.timeout,
                    retries=self.retries,
                    max_connections=self.max_connections,
                    transport=self.transport,
                )
            return http

    @property
    def requests(self) -> int:
        """HTTP requests this process sent through this blockstore (retries included)."""
        return 0 if self._http is None else self._http.requests

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _check(self, link: Link, data: bytes, source: str) -> bytes:
        if not block_matches(link, data):
            raise CorruptBlockError(
                f"{source} answered {len(data)} bytes for block {link_str(link)} that do not "
                "hash to its CID: the server (or something between us) is damaged or "
                "malicious. Nothing was stored; read the block from another node or gateway.",
                cid=link,
            )
        return data

    @abstractmethod
    def _fetch_many(self, links: list[Link]) -> list[bytes | None]:
        """The blocks of ``links`` (None where absent), fetched concurrently."""

    def get_many(self, links: Iterable[Link]) -> Iterator[tuple[Link, bytes]]:
        # docstring inherited
        wanted = list(links)
        found = {link.cid_bytes: data for link in wanted if (data := self.cache.get(link))}
        missing = list(
            {link.cid_bytes: link for link in wanted if link.cid_bytes not in found}.values()
        )
        for link, data in zip(missing, self._fetch_many(missing), strict=True):
            if data is None:
                raise self._not_found(link)
            found[link.cid_bytes] = data
        for link in wanted:
            yield link, found[link.cid_bytes]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_http"] = None  # a live client never travels; the copy makes its own
        del state["_session_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._session_lock = threading.Lock()
