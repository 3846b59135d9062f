"""HTTP plumbing shared by the network blockstores: one async client per process.

The blockstore contract is synchronous (zarr calls it from worker threads), but talking to a
node block by block is latency-bound, so batches go out concurrently. Each blockstore owns a
:class:`HttpSession`: an ``httpx.AsyncClient`` with a bounded connection pool, running on a
private event loop in a daemon thread; synchronous callers submit coroutines to it and wait
with a deadline, so no call can hang. A session is never pickled: a copy (a Dask worker's)
starts its own on first use, and a fork is detected by the process id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final, TypeVar

import httpx

__all__ = ["HttpSession", "Unreachable"]

T = TypeVar("T")

#: Answers worth another try: the server or something in between is busy or restarting.
TRANSIENT_STATUS: Final = frozenset({408, 425, 429, 502, 503, 504})


class Unreachable(Exception):
    """Every try of a request failed with a transport error or a transient status."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _stop(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, pid: int) -> None:
    if pid != os.getpid() or loop.is_closed():
        return  # a forked child's copy: its loop never ran here, and the parent owns it
    future = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
    # Best effort at shutdown: the sockets die with the process anyway.
    with contextlib.suppress(Exception):
        future.result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)


class HttpSession:
    """An async HTTP client on its own event loop thread, used synchronously.

    ``retries`` extra tries on connection errors, timeouts and transient statuses (see
    ``TRANSIENT_STATUS``), waiting ``backoff * 2**n`` seconds between them.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_connections: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_connections = max_connections
        self.requests = 0  # every request sent, retries included
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            # Loopback and explicit URLs only: never pick up a proxy from the environment.
            trust_env=False,
        )
        self._semaphore: asyncio.Semaphore | None = None
        thread = threading.Thread(
            target=_run_loop, args=(self._loop,), name="ipldwrite-http", daemon=True
        )
        thread.start()
        self._finalizer = weakref.finalize(self, _stop, self._loop, self._client, self._pid)

    @property
    def alive(self) -> bool:
        return self._pid == os.getpid() and self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def run(
        self, coro: Coroutine[Any, Any, T], *, requests: int = 1, deadline: float | None = None
    ) -> T:
        """Run ``coro`` on the session's loop and wait for it: at most ``deadline`` seconds,
        by default enough for every retry of ``requests`` requests sent through the bounded
        pool (a batch waits its turn, it does not hang)."""
        if deadline is None:
            one = (self.timeout + self.backoff * 2**self.retries) * (self.retries + 1)
            deadline = one * -(-max(1, requests) // self.max_connections) + 5
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=deadline)
        except TimeoutError:
            future.cancel()
            raise Unreachable(f"no answer within {deadline:.0f} s", timed_out=True) from None

    async def bounded(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` once a slot of the connection pool is free (batches stay bounded)."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_connections)
        async with self._semaphore:
            return await work()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request with retries; the final answer whatever its status, or
        :class:`Unreachable` when no try got a non-transient answer."""
        last = ""
        timed_out = False
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            self.requests += 1
            try:
                response = await self._client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                last, timed_out = f"timed out after {self.timeout} s ({type(exc).__name__})", True
                continue
            except httpx.TransportError as exc:
                last, timed_out = f"{type(exc).__name__}: {exc}", False
                continue
            if response.status_code in TRANSIENT_STATUS:
                last, timed_out = f"HTTP {response.status_code}", False
                continue
            return response
        raise Unreachable(f"{method} {url}: {last} ({self.retries + 1} tries)", timed_out=timed_out)
