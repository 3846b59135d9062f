"""Strict, canonical DAG-CBOR.

cbrrr (a C implementation) does the work: it writes canonical bytes (length-first key order,
shortest forms, 64-bit floats) and refuses non-canonical input on decode, which is what the
spec asks of a strict decoder. It does not check that the bytes inside a tag-42 link form a
valid CID; :func:`check_links` does that where links enter from outside.
"""

from __future__ import annotations

import gc
from typing import Any, Final

import cbrrr

from ipldwrite.errors import CodecError, InvalidCIDError
from ipldwrite.ipld._cid import Link, parse_cid_bytes

__all__ = ["check_links", "decode", "encode"]


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR bytes of ``value`` (dicts with str keys, lists, Links, scalars)."""
    try:
        return bytes(cbrrr.encode_dag_cbor(value))
    except (ValueError, TypeError, OverflowError) as exc:
        raise CodecError(
            f"cannot encode as DAG-CBOR: {exc}. DAG-CBOR has no NaN/Infinity, no integers "
            "beyond 64 bits and only string map keys."
        ) from None


#: Blocks from this size on are decoded with the cyclic GC paused (see :func:`decode`).
_PAUSE_GC_FROM: Final = 1 << 16


def decode(data: bytes | memoryview, *, what: object = "block") -> Any:
    """Decode strict DAG-CBOR; ``what`` (printed only on error) names the block."""
    # A manifest node decodes into thousands of link objects; every allocation counts
    # towards a GC collection that rescans them all, which costs more than the decoding
    # itself (2.5 vs 7 million links/s). Decoding cannot create reference cycles, so the
    # collector has nothing to find: pause it for big blocks.
    pause = len(data) >= _PAUSE_GC_FROM and gc.isenabled()
    if pause:
        gc.disable()
    try:
        return cbrrr.decode_dag_cbor(bytes(data))
    except (ValueError, TypeError, EOFError) as exc:
        raise CodecError(
            f"{what} is not strict, canonical DAG-CBOR ({len(data)} bytes): {exc}"
        ) from None
    finally:
        if pause:
            gc.enable()


def check_links(value: Any, *, what: str = "block") -> None:
    """Raise :class:`CodecError` if any link inside ``value`` is not a valid binary CID."""
    stack = [value]
    seen_prefixes: set[bytes] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, Link):
            raw = item.cid_bytes
            head = raw[:4] + len(raw).to_bytes(2, "big")
            if head in seen_prefixes:
                continue
            try:
                parse_cid_bytes(raw)
            except InvalidCIDError as exc:
                raise CodecError(f"{what} holds an invalid link: {exc}") from None
            if len(raw) == 36:
                seen_prefixes.add(head)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
