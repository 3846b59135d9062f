"""The one DAG walker: every block reachable from some roots, once, in depth-first pre-order.

CAR export (whole and sharded), CAR verification, task CARs and the audit tools (verify,
repair, stat, gc) all walk with it; each says how to read a block (``read``) and, when it
must, how to list a block's links (``children``, :func:`links_of` by default). The order is
the one CAR export promises: parents before children, links in the order the block lists
them, a block reached twice visited the first time only. Iterative, so deep DAGs cannot hit
the recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from ipldwrite.ipld._cid import Link
from ipldwrite.ipld._links import links_of

__all__ = ["Visit", "walk"]


class Visit(NamedTuple):
    """A block the walk reached, and the way it came: ``parent`` is the block that linked to
    it first (None for a root), ``depth`` the number of links from that root. A named
    tuple: one is made for every block of the walk, and they are the cheapest to build."""

    link: Link
    parent: Visit | None
    depth: int

    def trail(self) -> list[Link]:
        """The links from the root down to this block, both included."""
        links: list[Link] = []
        visit: Visit | None = self
        while visit is not None:
            links.append(visit.link)
            visit = visit.parent
        return links[::-1]


#: The bytes of a reached block, or None to skip it: it is neither yielded nor descended into.
Read = Callable[[Visit], bytes | None]
#: The links of a block, in order.
Children = Callable[[Link, bytes], Sequence[Link]]


def walk(
    roots: Iterable[Link], read: Read, children: Children = links_of
) -> Iterator[tuple[Visit, bytes]]:
    """Yield ``(visit, data)`` for every block reachable from ``roots``, once.

    ``read`` is called once for every distinct link reached (skipped ones included), so it is
    also where a caller counts, checks or records what is missing; its errors propagate.
    """
    seen: set[bytes] = set()
    stack: list[tuple[Link, Visit | None]] = [(root, None) for root in reversed(list(roots))]
    while stack:
        link, parent = stack.pop()
        if link.cid_bytes in seen:
            continue
        seen.add(link.cid_bytes)
        visit = Visit(link, parent, 0 if parent is None else parent.depth + 1)
        data = read(visit)
        if data is None:
            continue
        yield visit, data
        stack.extend((child, visit) for child in reversed(children(link, data)))
