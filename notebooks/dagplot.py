"""Draw the DAG under a root CID with matplotlib: one row per depth, one dot per block.

Used by the notebooks; nothing here is part of ipldwrite. Blocks are coloured by what they
are (group, array, manifest node, chunk, UnixFS node); ``highlight`` rings a set of blocks
(those a join wrote, those two DAGs share) and greys the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    Link,
    decode,
    link_str,
    links_of,
    parse_cid_bytes,
    to_link,
)

COLORS = {
    "group": "tab:purple",
    "array": "tab:blue",
    "manifest": "tab:cyan",
    "UnixFS node": "tab:orange",
    "chunk": "tab:green",
}


@dataclass
class Block:
    link: Link
    kind: str
    depth: int
    size: int
    children: list[bytes] = field(default_factory=list)
    x: float = 0.0


def walk(root: object, get: Callable[[Link], bytes]) -> dict[bytes, Block]:
    """Every block reachable from ``root`` once, depth first, children in link order."""
    blocks: dict[bytes, Block] = {}
    stack = [(to_link(root), 0)]
    while stack:
        link, depth = stack.pop()
        if link.cid_bytes in blocks:
            continue
        data = get(link)
        codec = parse_cid_bytes(link.cid_bytes).codec
        if codec == DAG_CBOR:
            value = decode(data)
            kind = value.get("type", "manifest") if isinstance(value, dict) else "manifest"
        else:
            kind = "UnixFS node" if codec == DAG_PB else "chunk"
        children = links_of(link, data)
        blocks[link.cid_bytes] = Block(
            link, kind, depth, len(data), [c.cid_bytes for c in children]
        )
        stack.extend((child, depth + 1) for child in reversed(children))
    return blocks


def _place(blocks: dict[bytes, Block], root: bytes) -> None:
    """Leaves side by side in walk order; every parent above the middle of its children."""
    next_leaf = 0.0
    placed: set[bytes] = set()

    def place(key: bytes) -> float:
        nonlocal next_leaf
        block = blocks[key]
        placed.add(key)
        own = [c for c in block.children if c not in placed and blocks[c].depth > block.depth]
        xs = [place(c) for c in own]
        if xs:
            block.x = (min(xs) + max(xs)) / 2
        else:
            block.x, next_leaf = next_leaf, next_leaf + 1
        return block.x

    place(root)


def draw_dag(
    root: object,
    get: Callable[[Link], bytes],
    ax: Axes | None = None,
    *,
    highlight: Collection[bytes] | None = None,
    highlight_label: str = "highlighted",
    title: str | None = None,
) -> Axes:
    """Draw the DAG under ``root``; ``get`` reads a block (``blockstore.get``)."""
    blocks = walk(root, get)
    root_key = to_link(root).cid_bytes
    _place(blocks, root_key)
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 4))
    for block in blocks.values():
        for child in block.children:
            other = blocks[child]
            ax.plot([block.x, other.x], [-block.depth, -other.depth], color="0.8", lw=0.6, zorder=1)
    for kind, color in COLORS.items():
        members = [b for b in blocks.values() if b.kind == kind]
        if not members:
            continue
        faded = highlight is not None
        ax.scatter(
            [b.x for b in members],
            [-b.depth for b in members],
            s=[30 + b.size**0.5 / 4 for b in members],
            color=color,
            alpha=0.35 if faded else 1.0,
            label=f"{kind} ({len(members)})",
            zorder=2,
        )
    if highlight is not None:
        ringed = [b for key, b in blocks.items() if key in highlight]
        ax.scatter(
            [b.x for b in ringed],
            [-b.depth for b in ringed],
            s=160,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label=f"{highlight_label} ({len(ringed)})",
            zorder=3,
        )
    ax.annotate(
        f"root {link_str(blocks[root_key].link)[:14]}…",
        (blocks[root_key].x, 0),
        xytext=(0, 8),
        textcoords="offset points",
        ha="center",
        fontsize=8,
    )
    depth = max(b.depth for b in blocks.values())
    ax.set_yticks([-d for d in range(depth + 1)], [f"depth {d}" for d in range(depth + 1)])
    ax.set_xticks([])
    ax.spines[["top", "right", "bottom"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    ax.set_title(title or f"{len(blocks)} blocks (dot area ~ block size)")
    return ax
