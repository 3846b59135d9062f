"""Walk a whole dataset DAG: verify every block, or measure it.

Both walks follow every link from the root once (depth first), read each block, and name
problems by the path that reaches them (``/members/t2m/manifest/root/[3]/[17]``), so a
missing or corrupt block can be traced to the variable and chunk it belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ipldwrite.blockstore import Blockstore
from ipldwrite.errors import BlockNotFoundError, CodecError, CorruptBlockError, InvalidCIDError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    Link,
    check_links,
    decode,
    decode_pb,
    digest_of,
    encode,
    link_str,
    parse_cid_bytes,
    to_link,
)

log = logging.getLogger("ipldwrite.audit")

__all__ = ["DagStats", "Problem", "VerifyReport", "stat", "verify"]


@dataclass(frozen=True)
class Problem:
    kind: str  # "missing", "corrupt", "noncanonical", "invalid"
    cid: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.kind} block {self.cid} at {self.path}{extra}"


@dataclass
class VerifyReport:
    root: str
    blocks: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "ok": self.ok,
            "blocks": self.blocks,
            "bytes": self.bytes,
            "problems": [vars(p) for p in self.problems],
        }


def _children(link: Link, data: bytes, value: Any) -> Iterator[tuple[str, Link]]:
    """(path step, link) for every link inside a block."""
    codec = parse_cid_bytes(link.cid_bytes).codec
    if codec == DAG_PB:
        for n, pb in enumerate(decode_pb(data).links):
            yield (f"{pb.name}" if pb.name else f"[{n}]"), pb.hash
    elif codec == DAG_CBOR:
        stack: list[tuple[str, Any]] = [("", value)]
        while stack:
            prefix, item = stack.pop()
            if isinstance(item, Link):
                yield prefix.lstrip("/"), item
            elif isinstance(item, dict):
                stack.extend((f"{prefix}/{k}", v) for k, v in reversed(item.items()))
            elif isinstance(item, list):
                stack.extend((f"{prefix}/[{i}]", v) for i, v in reversed(list(enumerate(item))))


def _walk(
    blockstore: Blockstore, root: Link, *, check: bool, progress: bool, report: VerifyReport
) -> Iterator[tuple[Link, bytes, str, int]]:
    """Yield (link, data, path, depth) for each reachable block, once."""
    seen: set[bytes] = set()
    stack: list[tuple[Link, str, int]] = [(root, "", 0)]
    bar = tqdm(desc="walking", unit=" blocks", disable=not progress)
    while stack:
        link, path, depth = stack.pop()
        if link.cid_bytes in seen:
            continue
        seen.add(link.cid_bytes)
        shown = path or "/"
        try:
            parts = parse_cid_bytes(link.cid_bytes)
            data = blockstore.get(link)
        except InvalidCIDError as exc:
            report.problems.append(Problem("invalid", link.cid_bytes.hex(), shown, str(exc)))
            continue
        except BlockNotFoundError:
            report.problems.append(Problem("missing", link_str(link), shown))
            continue
        except CorruptBlockError:  # a blockstore that verifies on read found it first
            report.problems.append(Problem("corrupt", link_str(link), shown, "hash mismatch"))
            continue
        bar.update()
        if check and digest_of(parts.hash_code, data) != parts.digest:
            report.problems.append(Problem("corrupt", link_str(link), shown, "hash mismatch"))
            continue
        value: Any = None
        try:
            if parts.codec == DAG_CBOR:
                value = decode(data, what=f"block {link_str(link)}")
                check_links(value)
                if check and encode(value) != data:
                    raise CodecError("decodes, but does not re-encode to the same bytes")
            children = list(_children(link, data, value))
        except CodecError as exc:
            report.problems.append(Problem("noncanonical", link_str(link), shown, str(exc)))
            continue
        yield link, data, shown, depth
        for step, child in reversed(children):
            stack.append((child, f"{path}/{step}", depth + 1))
    bar.close()


def verify(root: object, blockstore: Blockstore, *, progress: bool = False) -> VerifyReport:
    """Walk every block reachable from ``root``, re-hash it and check its encoding.

    Nothing is raised for damaged data: every problem is reported with its path.
    """
    link = to_link(root)
    report = VerifyReport(link_str(link))
    for _, data, _, _ in _walk(blockstore, link, check=True, progress=progress, report=report):
        report.blocks += 1
        report.bytes += len(data)
    log.info(
        "verified %s: %d blocks, %d problems", report.root, report.blocks, len(report.problems)
    )
    return report


@dataclass
class DagStats:
    root: str
    blocks: int = 0
    bytes: int = 0
    node_blocks: int = 0
    node_bytes: int = 0
    chunk_blocks: int = 0
    chunk_bytes: int = 0
    references: int = 0
    referenced_bytes: int = 0
    depth: int = 0

    @property
    def dedup_ratio(self) -> float:
        """Bytes the DAG links to, counting every reference, per byte stored."""
        return self.referenced_bytes / self.bytes if self.bytes else 1.0

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "dedup_ratio": self.dedup_ratio}


def stat(root: object, blockstore: Blockstore, *, progress: bool = False) -> DagStats:
    """Blocks, bytes, depth and deduplication of the DAG under ``root``.

    The dedup ratio is the logical size (every reference expanded, as a copy without
    content addressing would store it) over the bytes actually stored.
    """
    link = to_link(root)
    stats = DagStats(link_str(link))
    report = VerifyReport(stats.root)
    sizes: dict[bytes, int] = {}
    children: dict[bytes, list[bytes]] = {}
    for block, data, _, depth in _walk(
        blockstore, link, check=False, progress=progress, report=report
    ):
        sizes[block.cid_bytes] = len(data)
        stats.blocks += 1
        stats.bytes += len(data)
        stats.depth = max(stats.depth, depth)
        codec = parse_cid_bytes(block.cid_bytes).codec
        value = decode(data) if codec == DAG_CBOR else None
        kids = [child.cid_bytes for _, child in _children(block, data, value)]
        children[block.cid_bytes] = kids
        stats.references += len(kids)
        if codec == DAG_CBOR:
            stats.node_blocks += 1
            stats.node_bytes += len(data)
        else:
            stats.chunk_blocks += 1
            stats.chunk_bytes += len(data)
    if report.problems:
        raise BlockNotFoundError(
            f"cannot measure {stats.root}: {report.problems[0]}. Run `ipldwrite verify`.",
            cid=link,
        )
    stats.referenced_bytes = _logical_size(link.cid_bytes, sizes, children)
    return stats


def _logical_size(root: bytes, sizes: dict[bytes, int], children: dict[bytes, list[bytes]]) -> int:
    """Size with every reference expanded; iterative post-order with memoisation."""
    memo: dict[bytes, int] = {}
    stack = [(root, False)]
    while stack:
        cid, expanded = stack.pop()
        if cid in memo:
            continue
        kids = children.get(cid, [])
        if expanded or not kids:
            memo[cid] = sizes.get(cid, 0) + sum(memo.get(k, 0) for k in kids)
        else:
            stack.append((cid, True))
            stack.extend((k, False) for k in kids if k not in memo)
    return memo[root]
