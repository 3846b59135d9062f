"""The links inside a block, whatever its codec: what a DAG walker (CAR export, verify) needs."""

from __future__ import annotations

from typing import Any

from ipldwrite.errors import CodecError, InvalidCIDError
from ipldwrite.ipld._cid import (
    DAG_CBOR,
    DAG_PB,
    RAW,
    Link,
    codec_name,
    codec_of,
    link_str,
    parse_cid_bytes,
)
from ipldwrite.ipld._codec import decode
from ipldwrite.ipld._dagpb import decode_pb

__all__ = ["link_names", "links_of"]


def _codec_of(link: Link) -> int:
    try:
        return codec_of(link)
    except InvalidCIDError as exc:
        raise CodecError(f"cannot walk a block whose CID is invalid: {exc}") from None


def links_of(link: Link, data: bytes | memoryview) -> list[Link]:
    """The links in block ``data`` (whose CID is ``link``), in a deterministic order.

    raw: none. dag-pb: the link hashes in order. dag-cbor: depth first, map values in the
    canonical key order the decoder yields, list items in order. Any other codec raises
    :class:`CodecError`, since a walker that skipped it would silently lose the subtree.
    """
    codec = _codec_of(link)
    if codec == RAW:
        return []
    if codec == DAG_PB:
        return [pb.hash for pb in decode_pb(data).links]
    if codec == DAG_CBOR:
        return _cbor_links(decode(data, what=f"block {link_str(link)}"), link)
    raise CodecError(
        f"block {link_str(link)} uses codec {codec_name(codec)}; only raw, dag-pb and "
        "dag-cbor blocks can be walked"
    )


def _cbor_links(value: Any, block: Link) -> list[Link]:
    found: list[Link] = []
    # The DAG-CBOR decoder does not check the bytes inside tag 42; a walker must not pass
    # a malformed CID on. Once one 36-byte CIDv1 with one-byte codec and hash codes and a
    # 32-byte digest has parsed, every other with the same 4-byte head is valid by
    # construction, which keeps walking manifests with millions of links cheap.
    checked: set[bytes] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Link):
            raw = item.cid_bytes
            head = raw[:4]
            if len(raw) != 36 or head not in checked:
                try:
                    parse_cid_bytes(raw)
                except InvalidCIDError as exc:
                    raise CodecError(
                        f"block {link_str(block)} holds an invalid link: {exc}"
                    ) from None
                if len(raw) == 36 and raw[1] < 0x80 and raw[2] < 0x80 and raw[3] == 32:
                    checked.add(head)
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(item.values()))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def link_names(link: Link, data: bytes | memoryview) -> list[tuple[str, Link]]:
    """The links in block ``data`` with the names a path shows for them, in the order of
    :func:`links_of`: a dag-pb link's name (``[n]`` when it has none), the keys and
    ``[index]`` steps leading to a dag-cbor link (``members/t2m``). For messages only: it
    does not check the links, which :func:`links_of` has done during the walk.
    """
    codec = _codec_of(link)
    if codec == DAG_PB:
        return [(pb.name or f"[{n}]", pb.hash) for n, pb in enumerate(decode_pb(data).links)]
    if codec != DAG_CBOR:
        return []
    found: list[tuple[str, Link]] = []
    stack: list[tuple[str, Any]] = [("", decode(data, what=f"block {link_str(link)}"))]
    while stack:
        prefix, item = stack.pop()
        if isinstance(item, Link):
            found.append((prefix.lstrip("/"), item))
        elif isinstance(item, dict):
            stack.extend((f"{prefix}/{k}", v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{prefix}/[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return found
