"""An IPFS node's RPC API (Kubo's ``/api/v0``) as a blockstore.

``block/put`` (with ``cid-codec`` and ``mhtype``, and the node's answer checked against the
CID we computed), ``block/get``, ``block/stat`` (``has`` and ``size``); batches go out
concurrently. A write task buffers its blocks and uploads them when it succeeds
(:meth:`KuboBlockstore.finish_task`), concurrently block by block or as one ``dag/import``
CAR (``upload=``). Nothing is pinned unless asked (:meth:`KuboBlockstore.pin`): pin the
final root of a write, never the partial datasets of its tasks.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable, Sequence
from typing import IO, Any, Literal

import httpx

from ipldwrite.blockstore._base import BlockData, Blockstore
from ipldwrite.blockstore._http import Unreachable
from ipldwrite.blockstore._network import NetworkBlockstore
from ipldwrite.errors import BlockNotFoundError, RemoteError
from ipldwrite.ipld import (
    Link,
    codec_name,
    hash_name,
    link_str,
    parse_cid_bytes,
    to_link,
    verify_block,
)
from ipldwrite.ipld._car import write_car_blocks

__all__ = ["KuboBlockstore"]

Upload = Literal["blocks", "car"]


def _node_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/api/v0")] if url.endswith("/api/v0") else url


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("Message", response.text))
    except ValueError:
        return response.text[:300]


def _absent(response: httpx.Response) -> bool:
    # Kubo (and js-ipfs) answer 500 with "... not found ..." for a block they do not hold.
    return response.status_code in (404, 500) and "not found" in _message(response).lower()


class KuboBlockstore(NetworkBlockstore):
    """Blocks in an IPFS node, through its RPC API (Kubo's ``/api/v0``, at ``url``).

    Parameters
    ----------
    url
        The RPC API's address, e.g. ``"http://127.0.0.1:5001"`` (``/api/v0`` optional).
    headers
        Sent with every request (an ``Authorization`` for a protected API).
    upload
        How a write task's blocks reach the node: ``"car"`` (one ``dag/import`` request per
        task) or ``"blocks"`` (concurrent ``block/put`` requests).
    timeout, retries, max_connections, cache_bytes
        See :class:`~ipldwrite.blockstore._network.NetworkBlockstore`. A block that does
        not arrive within ``timeout`` (an online node searching the network for it) is
        reported as :class:`BlockNotFoundError`, never waited for longer.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:5001",
        *,
        upload: Upload = "car",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if upload not in ("blocks", "car"):
            raise ValueError(f"upload={upload!r}: expected 'car' or 'blocks'")
        self.url = _node_url(url)
        self.upload = upload

    def _api(self, command: str) -> str:
        return f"{self.url}/api/v0/{command}"

    # -- one request each, on the session's loop ------------------------------------------
    async def _call(self, command: str, **kwargs: Any) -> httpx.Response:
        return await self.session.bounded(
            lambda: self.session.request("POST", self._api(command), **kwargs)
        )

    def _failed(self, command: str, link: Link | None, response: httpx.Response) -> RemoteError:
        what = f" for {link_str(link)}" if link is not None else ""
        return RemoteError(
            f"the IPFS node at {self.url} refused {command}{what}: HTTP "
            f"{response.status_code} {_message(response)!r}",
            url=self.url,
            status=response.status_code,
        )

    async def _aget(self, link: Link) -> bytes | None:
        response = await self._call("block/get", params={"arg": link_str(link)})
        if _absent(response):
            return None
        if response.status_code != 200:
            raise self._failed("block/get", link, response)
        return self._check(link, response.content, f"the IPFS node at {self.url}")

    async def _astat(self, link: Link) -> int | None:
        response = await self._call("block/stat", params={"arg": link_str(link)})
        if _absent(response):
            return None
        if response.status_code != 200:
            raise self._failed("block/stat", link, response)
        return int(response.json()["Size"])

    async def _aput(self, link: Link, data: BlockData) -> None:
        parts = parse_cid_bytes(link.cid_bytes)
        params = {
            "cid-codec": codec_name(parts.codec),
            "mhtype": hash_name(parts.hash_code),
            "mhlen": str(len(parts.digest)),
            "pin": "false",
        }
        response = await self._call(
            "block/put", params=params, files={"data": ("block", bytes(data))}
        )
        if response.status_code != 200:
            raise self._failed("block/put", link, response)
        key = response.json().get("Key", "")
        if to_link(key) != link:
            raise RemoteError(
                f"the IPFS node at {self.url} stored a block under {key}, but its CID is "
                f"{link_str(link)}: the node hashes or encodes CIDs differently. Nothing "
                "links to its copy; use a node that honours cid-codec and mhtype (Kubo >= 0.16).",
                url=self.url,
            )

    def _run(self, coro: Any, link: Link | None = None, requests: int = 1) -> Any:
        try:
            return self.session.run(coro, requests=requests)
        except Unreachable as exc:
            if link is not None and exc.timed_out:
                raise BlockNotFoundError(
                    f"block {link_str(link)} did not arrive from the IPFS node at {self.url} "
                    f"within the timeout ({exc}). An online node may still be searching the "
                    "network for it: add the block to the node (`ipldwrite push`) or raise "
                    "timeout=.",
                    cid=link,
                ) from None
            raise RemoteError(
                f"the IPFS node at {self.url} is unreachable: {exc}", url=self.url
            ) from None

    # -- the contract -----------------------------------------------------------------------
    def _get(self, link: Link) -> bytes | None:
        # docstring inherited
        data = self.cache.get(link)
        if data is None:
            data = self._run(self._aget(link), link)
            if data is not None:
                self.cache.put(link, data)
        return data

    def _has(self, link: Link) -> bool:
        return self.cache.peek(link) or self._run(self._astat(link), link) is not None

    def _size(self, link: Link) -> int | None:
        return self._run(self._astat(link), link)  # type: ignore[no-any-return]

    def _put(self, link: Link, data: BlockData) -> None:
        self._run(self._aput(link, data))

    def _fetch_many(self, links: list[Link]) -> list[bytes | None]:
        async def fetch() -> list[bytes | None]:
            return list(await _gather(self._aget(link) for link in links))

        found: list[bytes | None] = self._run(
            fetch(), links[0] if len(links) == 1 else None, len(links)
        )
        for link, data in zip(links, found, strict=True):
            if data is not None:
                self.cache.put(link, data)
        return found

    def has_many(self, links: Iterable[Link]) -> list[bool]:
        # docstring inherited
        wanted = list(links)

        async def stat() -> list[int | None]:
            return list(await _gather(self._astat(link) for link in wanted))

        return [size is not None for size in self._run(stat(), requests=len(wanted))]

    def put_many(self, blocks: Iterable[tuple[Link, bytes]]) -> None:
        # docstring inherited: checked one by one, then sent concurrently
        self._check_writable()
        checked = []
        for link, data in blocks:
            self.check_put(link, data)
            checked.append((link, data))

        async def send() -> None:
            await _gather(self._aput(link, data) for link, data in checked)

        self._run(send(), requests=len(checked))

    # -- bulk: CAR streams, pins --------------------------------------------------------------
    def import_car(self, car: bytes | IO[bytes]) -> list[Link]:
        """Send a CAR (bytes or a binary file) to ``dag/import`` in one request, without
        pinning; return the roots the node reports. Every block is checked by the node."""
        body = io.BytesIO(car) if isinstance(car, bytes) else car

        async def send() -> httpx.Response:
            return await self._call(
                "dag/import",
                params={"pin-roots": "false", "allow-big-block": "false"},
                files={"data": ("dataset.car", body)},
            )

        response = self.session.run(send(), deadline=max(600.0, self.timeout * 4))
        if response.status_code != 200:
            raise self._failed("dag/import", None, response)
        roots = []
        for line in response.text.splitlines():
            entry = json.loads(line) if line.strip() else {}
            cid = entry.get("Root", {}).get("Cid", {}).get("/")
            if cid:
                roots.append(to_link(cid))
        return roots

    def pin(self, root: object) -> None:
        """Pin ``root`` recursively: the node walks the whole DAG, so this fails
        (:class:`RemoteError`) if any block under it is missing from the node."""
        link = to_link(root)

        async def pin() -> httpx.Response:
            return await self._call("pin/add", params={"arg": link_str(link), "recursive": "true"})

        response = self.session.run(pin(), deadline=max(600.0, self.timeout * 4))
        if response.status_code != 200:
            raise self._failed("pin/add", link, response)

    # -- the per-task hook ----------------------------------------------------------------------
    def open_task(self, inputs: Sequence[Link] = ()) -> Blockstore:
        """A buffer for one task's blocks, reading through to the node."""
        return NodeTaskBuffer(self)

    def finish_task(self, task: Blockstore, root: Link) -> str | None:
        """Upload what the task wrote (see ``upload``): one request per task as a CAR, or
        concurrent ``block/put`` requests."""
        if not isinstance(task, NodeTaskBuffer):
            raise TypeError(f"finish_task takes the buffer open_task gave, not {task!r}")
        blocks = [(Link(raw), data) for raw, data in task.blocks.items()]
        if not blocks:
            return None
        if self.upload == "blocks":
            self.put_many(blocks)
            return None
        car = io.BytesIO()
        write_car_blocks(car.write, [root], blocks)
        car.seek(0)
        self.import_car(car)
        return None

    # -- plumbing -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, KuboBlockstore) and (self.url, self.headers) == (
            other.url,
            other.headers,
        )

    def __hash__(self) -> int:
        return hash((KuboBlockstore, self.url))

    def __repr__(self) -> str:
        return f"KuboBlockstore({self.url!r})"


async def _gather(coros: Iterable[Any]) -> list[Any]:
    return list(await asyncio.gather(*coros))


class NodeTaskBuffer(Blockstore):
    """One task's new blocks in memory; reads fall through to the node."""

    def __init__(self, node: KuboBlockstore) -> None:
        super().__init__(max_block_size=node.max_block_size, hasher=node.hasher, verify=node.verify)
        self.node = node
        self.blocks: dict[bytes, bytes] = {}

    def _get(self, link: Link) -> bytes | None:
        data = self.blocks.get(link.cid_bytes)
        return data if data is not None else self.node._get(link)

    def _put(self, link: Link, data: BlockData) -> None:
        self.blocks.setdefault(link.cid_bytes, bytes(data))

    def _has(self, link: Link) -> bool:
        return link.cid_bytes in self.blocks or self.node._has(link)

    def repair_block(self, link: Link, data: BlockData) -> bool:
        # The node hashes every block it receives and keeps only sound copies, so sending
        # the block is the repair; reading the node's copy back first would cost a request.
        verify_block(link, data)  # the data itself is always checked, as Blockstore's is
        self._check_writable()
        self._check_size(link, data)
        self._put(link, data)
        return True

    def _size(self, link: Link) -> int | None:
        data = self.blocks.get(link.cid_bytes)
        return len(data) if data is not None else self.node._size(link)

    def __repr__(self) -> str:
        return f"NodeTaskBuffer({self.node!r}, {len(self.blocks)} blocks)"
