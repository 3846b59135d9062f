"""Walk a whole dataset DAG: verify every block, or measure it.

Both walks follow every link from the root once (depth first), read each block, and name
problems by the path that reaches them (``/members/t2m/manifest/root/[3]/[17]``), so a
missing or corrupt block can be traced to the variable and chunk it belongs to.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ipldwrite.blockstore import BlockGetter, Blockstore
from ipldwrite.errors import BlockNotFoundError, CodecError, CorruptBlockError, InvalidCIDError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    Link,
    Visit,
    check_links,
    codec_of,
    decode,
    decode_pb,
    digest_of,
    encode,
    link_names,
    link_str,
    links_of,
    parse_cid_bytes,
    to_link,
    walk,
)

log = logging.getLogger("ipldwrite.audit")

__all__ = [
    "DagStats",
    "GcReport",
    "Problem",
    "RepairReport",
    "VerifyReport",
    "gc",
    "repair",
    "stat",
    "verify",
]


@dataclass(frozen=True)
class Problem:
    kind: str  # "missing", "corrupt", "noncanonical", "invalid"
    cid: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.kind} block {self.cid} at {self.path}{extra}"


class _Report:
    """What the verify and repair reports share: ``ok``, and the JSON form (the fields in
    order, ``ok`` after the root, problems as dicts)."""

    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in vars(self).items():
            out[name] = [vars(p) for p in value] if isinstance(value, list) else value
            if name == "root":
                out["ok"] = self.ok
        return out


@dataclass
class VerifyReport(_Report):
    root: str
    blocks: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)


#: Supplies a good copy of a missing or corrupt block (repair), or None.
Fix = Callable[[Link], bytes | None]


def _path(blockstore: Blockstore, visit: Visit) -> str:
    """How ``visit`` was reached, named as the blocks on the way name their links
    (``/members/t2m/manifest/root/[3]``). Only problems need it, so the parents are read
    again here rather than names built for every link of a big DAG."""
    steps: list[str] = []
    while visit.parent is not None:
        parent = visit.parent
        names = link_names(parent.link, blockstore.get(parent.link))
        steps.append(next(name for name, child in names if child == visit.link))
        visit = parent
    return "/" + "/".join(reversed(steps))


def _read(blockstore: Blockstore, visit: Visit, check: bool, fix: Fix | None) -> bytes | Problem:
    """The block's sound bytes, or the problem with it (after trying ``fix``)."""
    link = visit.link
    try:
        parts = parse_cid_bytes(link.cid_bytes)
    except InvalidCIDError as exc:
        return Problem("invalid", link.cid_bytes.hex(), _path(blockstore, visit), str(exc))
    try:
        data = blockstore.get(link)
    except BlockNotFoundError:
        kind, detail = "missing", ""
    except CorruptBlockError:  # a blockstore that verifies on read found it first
        kind, detail = "corrupt", "hash mismatch"
    else:
        # get() has already hashed it when the blockstore verifies.
        if not check or blockstore.verify or digest_of(parts.hash_code, data) == parts.digest:
            return data
        kind, detail = "corrupt", "hash mismatch"
    good = fix(link) if fix is not None else None
    if good is not None:
        return good
    return Problem(kind, link_str(link), _path(blockstore, visit), detail)


def _check_node(link: Link, data: bytes, check: bool) -> None:
    """Raise :class:`CodecError` when a node does not decode, holds an invalid link, or
    (with ``check``) is not in canonical form."""
    codec = codec_of(link)
    if codec == DAG_CBOR:
        value = decode(data, what=f"block {link_str(link)}")
        check_links(value)
        if check and encode(value) != data:
            raise CodecError("decodes, but does not re-encode to the same bytes")
    elif codec == DAG_PB:
        decode_pb(data)


def _children(link: Link, data: bytes) -> list[Link]:
    # Blocks of codecs without links (raw, and any other a walk may meet) end the path.
    if codec_of(link) in (DAG_CBOR, DAG_PB):
        return links_of(link, data)
    return []


def _walk(
    blockstore: Blockstore,
    root: Link,
    *,
    check: bool,
    progress: bool,
    report: VerifyReport,
    fix: Fix | None = None,
) -> Iterator[tuple[Visit, bytes]]:
    """Yield (visit, data) for each reachable sound block, once; problems go to ``report``."""
    bar = tqdm(desc="walking", unit=" blocks", disable=not progress)

    def read(visit: Visit) -> bytes | None:
        data = _read(blockstore, visit, check, fix)
        if isinstance(data, Problem):
            report.problems.append(data)
            return None
        try:
            _check_node(visit.link, data, check)
        except CodecError as exc:
            shown = _path(blockstore, visit)
            report.problems.append(Problem("noncanonical", link_str(visit.link), shown, str(exc)))
            return None
        bar.update()
        return data

    yield from walk([root], read, _children)
    bar.close()


def verify(root: object, blockstore: Blockstore, *, progress: bool = False) -> VerifyReport:
    """Walk every block reachable from ``root``, re-hash it and check its encoding.

    Nothing is raised for damaged data: every problem is reported with its path.
    """
    link = to_link(root)
    report = VerifyReport(link_str(link))
    for _, data in _walk(blockstore, link, check=True, progress=progress, report=report):
        report.blocks += 1
        report.bytes += len(data)
    log.info(
        "verified %s: %d blocks, %d problems", report.root, report.blocks, len(report.problems)
    )
    return report


@dataclass
class RepairReport(_Report):
    """What :func:`repair` did: the blocks it replaced, and the problems left."""

    root: str
    blocks: int = 0
    repaired: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def repair(
    root: object, blockstore: Blockstore, source: BlockGetter, *, progress: bool = False
) -> RepairReport:
    """Walk the DAG under ``root`` like :func:`verify`, and replace every missing or
    corrupt block with the copy ``source`` holds (a :class:`CarBlockstore` of a good CAR,
    another blockstore). A copy is hashed before it is stored; what ``source`` lacks, or
    holds damaged too, stays in ``problems``. Afterwards :func:`verify` passes when
    ``problems`` is empty.
    """
    link = to_link(root)
    result = RepairReport(link_str(link))
    walked = VerifyReport(result.root)
    replaced: set[bytes] = set()

    def fix(bad: Link) -> bytes | None:
        try:
            data = source.get(bad)
            blockstore.repair_block(bad, data)  # hashes data: a bad source is refused
        except (BlockNotFoundError, CorruptBlockError):
            return None
        replaced.add(bad.cid_bytes)
        return data

    for visit, _ in _walk(blockstore, link, check=True, progress=progress, report=walked, fix=fix):
        result.blocks += 1
        if visit.link.cid_bytes in replaced:
            shown = _path(blockstore, visit)
            result.repaired.append(Problem("repaired", link_str(visit.link), shown))
    result.problems = walked.problems
    return result


@dataclass
class GcReport:
    """Blocks of a listing blockstore that no given root reaches (:func:`gc`)."""

    roots: list[str]
    reachable: int = 0
    orphans: list[Link] = field(default_factory=list)
    orphan_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # reachable but absent: DAG damaged
    deleted: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "roots": self.roots,
            "reachable": self.reachable,
            "orphans": [link_str(x) for x in self.orphans],
            "orphan_bytes": self.orphan_bytes,
            "missing": self.missing,
            "deleted": self.deleted,
        }


def gc(roots: Iterable[object], blockstore: Blockstore, *, delete: bool = False) -> GcReport:
    """Find the blocks no root in ``roots`` reaches (left by a crashed or abandoned write,
    or by datasets no longer wanted); with ``delete=True`` remove them.

    Raw blocks are never read (they link to nothing), so this costs one read per node.
    Deleting refuses when a reachable block is missing (what hangs below it cannot be
    told apart from garbage) and must not run while a writer uses the blockstore: the
    blocks of a write in progress are orphans until it returns its root.
    """
    links = [to_link(r) for r in roots]
    report = GcReport([link_str(x) for x in links])
    if not blockstore.supports_listing:
        raise io.UnsupportedOperation(f"{blockstore!r} cannot list its blocks; gc needs to")
    live: set[bytes] = set()

    def read(visit: Visit) -> bytes | None:
        live.add(visit.link.cid_bytes)
        if codec_of(visit.link) not in (DAG_CBOR, DAG_PB):
            return None  # no links to follow: never read
        try:
            return blockstore.get(visit.link)
        except (BlockNotFoundError, CorruptBlockError):
            report.missing.append(link_str(visit.link))
            return None

    for _ in walk(links, read):
        pass
    report.reachable = len(live)
    report.orphans = [x for x in blockstore.iter_links() if x.cid_bytes not in live]
    report.orphan_bytes = sum(blockstore.size(x) for x in report.orphans)
    if delete:
        remove = getattr(blockstore, "remove", None)
        if remove is None:
            raise io.UnsupportedOperation(f"{blockstore!r} cannot delete blocks")
        if report.missing:
            raise BlockNotFoundError(
                f"not deleting: {len(report.missing)} reachable blocks are missing or corrupt "
                f"(first: {report.missing[0]}), so what they link to cannot be told apart "
                "from garbage. Run `ipldwrite repair` first.",
                cid=None,
            )
        report.deleted = sum(1 for x in report.orphans if remove(x))
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
    for visit, data in _walk(blockstore, link, check=False, progress=progress, report=report):
        block = visit.link
        sizes[block.cid_bytes] = len(data)
        stats.blocks += 1
        stats.bytes += len(data)
        stats.depth = max(stats.depth, visit.depth)
        kids = [child.cid_bytes for child in _children(block, data)]
        children[block.cid_bytes] = kids
        stats.references += len(kids)
        if codec_of(block) == DAG_CBOR:
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
