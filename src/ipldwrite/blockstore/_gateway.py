"""Trustless IPFS HTTP gateways as a read-only blockstore.

Blocks come from ``GET /ipfs/{cid}?format=raw`` (with ``Accept: application/vnd.ipld.raw``,
as the Trustless Gateway spec asks clients to send both) and are re-hashed before anyone
sees them: a gateway is never trusted. Gateways are tried in order, starting with the last
one that answered; a 404, an error, a timeout or a corrupt answer moves on to the next.

Metadata nodes (DAG-CBOR) are fetched as a CAR instead: ``?format=car&dag-scope=block``
plus ``ipldwrite-walk=dag-cbor``, an extension that ``ipldwrite serve`` honours: the root
and every DAG-CBOR block reachable from it through DAG-CBOR blocks (all the metadata nodes
of a dataset, none of its chunks) in one response. A gateway that does not know the
extension ignores it and answers with the one block ``dag-scope=block`` asks for, which is
what a raw request would have given: nothing is lost, opening just takes more requests.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from functools import partial
from typing import Any, Final

from ipldwrite.blockstore._base import BlockData
from ipldwrite.blockstore._http import Unreachable
from ipldwrite.blockstore._network import NetworkBlockstore
from ipldwrite.errors import (
    BlockNotFoundError,
    CarError,
    CorruptBlockError,
    ReadOnlyError,
    RemoteError,
)
from ipldwrite.ipld import DAG_CBOR, Link, link_str, parse_cid_bytes
from ipldwrite.ipld._car import iter_blocks, read_layout

__all__ = ["CAR_TYPE", "RAW_TYPE", "WALK_PARAMETER", "GatewayBlockstore"]

RAW_TYPE: Final = "application/vnd.ipld.raw"
CAR_TYPE: Final = "application/vnd.ipld.car"
#: The query parameter of the metadata-subtree extension (see the module docstring).
WALK_PARAMETER: Final = "ipldwrite-walk"


class _Outcome:
    """What the gateways said about one block, for the error message."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.corrupt: list[str] = []
        self.failed: list[str] = []
        self.timed_out = False


class GatewayBlockstore(NetworkBlockstore):
    """Read-only blocks from one or more trustless gateways (``url``: one or a list).

    ``subtrees=False`` turns off the CAR fetch of metadata subtrees (every block is then
    one raw request). Other options as for :class:`~ipldwrite.blockstore.KuboBlockstore`.
    """

    def __init__(self, url: str | Sequence[str], *, subtrees: bool = True, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("GatewayBlockstore needs at least one gateway URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.subtrees = subtrees
        self._first = 0  # the gateway that answered last: tried first next time

    def _order(self) -> list[int]:
        n = len(self.urls)
        return [(self._first + i) % n for i in range(n)]

    # -- requests ---------------------------------------------------------------------------
    async def _raw(self, link: Link, outcome: _Outcome) -> bytes | None:
        cid = link_str(link)
        for i in self._order():
            gateway = self.urls[i]
            try:
                response = await self.session.bounded(
                    partial(
                        self.session.request,
                        "GET",
                        f"{gateway}/ipfs/{cid}",
                        params={"format": "raw"},
                        headers={"Accept": RAW_TYPE},
                    )
                )
            except Unreachable as exc:
                outcome.failed.append(f"{gateway}: {exc}")
                outcome.timed_out |= exc.timed_out
                continue
            if response.status_code == 404:
                outcome.missing.append(gateway)
                continue
            if response.status_code != 200:
                outcome.failed.append(f"{gateway}: HTTP {response.status_code}")
                continue
            try:
                data = self._check(link, response.content, f"the gateway {gateway}")
            except CorruptBlockError:
                outcome.corrupt.append(gateway)
                continue
            self._first = i
            return data
        return None

    async def _subtree(self, link: Link) -> bool:
        """Fetch ``link``'s metadata subtree as a CAR into the cache; True on success."""
        cid = link_str(link)
        for i in self._order():
            gateway = self.urls[i]
            try:
                response = await self.session.request(
                    "GET",
                    f"{gateway}/ipfs/{cid}",
                    params={"format": "car", "dag-scope": "block", WALK_PARAMETER: "dag-cbor"},
                    headers={"Accept": f"{CAR_TYPE};version=1;order=dfs;dups=n"},
                )
            except Unreachable:
                continue
            if response.status_code != 200:
                continue
            try:
                blocks = self._car_blocks(response.content, gateway)
            except (CarError, CorruptBlockError):
                continue  # a raw request will say precisely what is wrong
            if link.cid_bytes not in blocks:
                continue
            for raw, data in blocks.items():
                self.cache.put(Link(raw), data)
            self._first = i
            return True
        return False

    def _car_blocks(self, body: bytes, gateway: str) -> dict[bytes, bytes]:
        f = io.BytesIO(body)
        layout = read_layout(f, f"the CAR from {gateway}")
        out: dict[bytes, bytes] = {}
        for section, data in iter_blocks(f, layout):
            out[section.link.cid_bytes] = self._check(section.link, data, f"the gateway {gateway}")
        return out

    def _raise(self, link: Link, outcome: _Outcome) -> None:
        if outcome.corrupt:
            raise CorruptBlockError(
                f"every gateway that answered for block {link_str(link)} sent bytes that do "
                f"not hash to its CID ({', '.join(outcome.corrupt)}); nothing was returned. "
                "Read it from another gateway.",
                cid=link,
            )
        if outcome.failed and not outcome.missing:
            if outcome.timed_out:
                raise BlockNotFoundError(
                    f"block {link_str(link)} did not arrive from any gateway within the "
                    f"timeout ({'; '.join(outcome.failed)}). Try other gateways or raise "
                    "timeout=.",
                    cid=link,
                )
            raise RemoteError(
                f"no gateway could serve block {link_str(link)}: {'; '.join(outcome.failed)}",
                url=self.urls[0],
            )

    # -- the contract -----------------------------------------------------------------------
    def _get(self, link: Link) -> bytes | None:
        # docstring inherited
        data = self.cache.get(link)
        if data is not None:
            return data
        metadata = parse_cid_bytes(link.cid_bytes).codec == DAG_CBOR
        if self.subtrees and metadata and self.session.run(self._subtree(link)):
            return self.cache.get(link)
        outcome = _Outcome()
        data = self.session.run(self._raw(link, outcome))
        if data is None:
            self._raise(link, outcome)
            return None
        self.cache.put(link, data)
        return data

    def _fetch_many(self, links: list[Link]) -> list[bytes | None]:
        outcomes = [_Outcome() for _ in links]

        async def fetch() -> list[bytes | None]:
            return list(
                await asyncio.gather(
                    *(self._raw(link, o) for link, o in zip(links, outcomes, strict=True))
                )
            )

        found = self.session.run(fetch(), requests=len(links) * len(self.urls))
        for link, data, outcome in zip(links, found, outcomes, strict=True):
            if data is None:
                self._raise(link, outcome)
            else:
                self.cache.put(link, data)
        return found

    def _has(self, link: Link) -> bool:
        if self.cache.peek(link):
            return True
        cid = link_str(link)

        async def probe() -> bool:
            for gateway in (self.urls[i] for i in self._order()):
                try:
                    response = await self.session.request(
                        "HEAD",
                        f"{gateway}/ipfs/{cid}",
                        params={"format": "raw"},
                        headers={"Accept": RAW_TYPE},
                    )
                except Unreachable:
                    continue
                if response.status_code == 200:
                    return True
            return False

        return self.session.run(probe(), requests=len(self.urls))

    def _put(self, link: Link, data: BlockData) -> None:
        raise ReadOnlyError(f"{self!r} is read-only: gateways serve blocks, they do not take them")

    # -- plumbing -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, GatewayBlockstore) and self.urls == other.urls

    def __hash__(self) -> int:
        return hash((GatewayBlockstore, tuple(self.urls)))

    def __repr__(self) -> str:
        shown = self.urls[0] if len(self.urls) == 1 else self.urls
        return f"GatewayBlockstore({shown!r})"
