"""zarr.json documents as IPLD data, and the chunk-key grammar of zarr v3 arrays.

A zarr.json document is stored as DAG-CBOR data, not as text, so any IPLD tool can read the
shapes and attributes. JSON allows what DAG-CBOR forbids in one place: xarray writes NaN and
±Infinity attributes as the bare JSON tokens. Those become the reserved single-key map
``{"$float": "NaN" | "Infinity" | "-Infinity"}``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from ipldwrite.errors import FormatError

__all__ = [
    "ChunkKeys",
    "attribute_order",
    "doc_from_json_bytes",
    "from_ipld_value",
    "render_zarr_json",
    "to_ipld_value",
]

_FLOAT_TAG = "$float"
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


#: Deepest nesting of lists and maps in zarr metadata, on write and on read: far beyond any
#: real attribute, and well inside Python's recursion limit (a hostile node nested 10,000
#: deep raised RecursionError before; found by scripts/fuzz.py).
MAX_METADATA_DEPTH = 100


def _too_deep(where: str) -> FormatError:
    return FormatError(
        f"{where or 'zarr metadata'}: lists and maps nested deeper than {MAX_METADATA_DEPTH}"
    )


def to_ipld_value(value: Any, where: str = "", depth: int = 0) -> Any:
    """A JSON value (as ``json.loads`` gives it) as IPLD data."""
    if depth > MAX_METADATA_DEPTH:
        raise _too_deep(where)
    if isinstance(value, float) and not math.isfinite(value):
        return {
            _FLOAT_TAG: "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        }
    if isinstance(value, dict):
        if set(value) == {_FLOAT_TAG}:
            raise FormatError(
                f"{where}: the map {{'$float': ...}} is reserved for NaN/Infinity in "
                "zarr-on-IPLD metadata; rename that attribute key"
            )
        return {str(k): to_ipld_value(v, where, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [to_ipld_value(v, where, depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise FormatError(f"{where}: integer {value} does not fit in 64 bits (DAG-CBOR's limit)")
    return value


def from_ipld_value(value: Any, depth: int = 0) -> Any:
    if depth > MAX_METADATA_DEPTH:
        raise _too_deep("")
    if isinstance(value, dict):
        if len(value) == 1 and _FLOAT_TAG in value and value[_FLOAT_TAG] in _NONFINITE:
            return _NONFINITE[value[_FLOAT_TAG]]
        return {k: from_ipld_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [from_ipld_value(v, depth + 1) for v in value]
    return value


def doc_from_json_bytes(data: bytes, key: str) -> dict[str, Any]:
    """Parse a zarr.json written through the store; refuse what is not zarr v3 metadata."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{key!r} is not valid JSON ({exc}); it cannot be committed") from None
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
        raise FormatError(
            f"{key!r} is not zarr v3 metadata (zarr_format must be 3). ipldwrite stores zarr v3 "
            "hierarchies only: write with zarr_format=3."
        )
    if doc.get("node_type") not in ("group", "array"):
        raise FormatError(f"{key!r}: node_type must be 'group' or 'array'")
    # Consolidated metadata is a cache derivable from the hierarchy; keeping it would make a
    # root depend on whether (and when) someone consolidated. See docs/spec.md.
    doc.pop("consolidated_metadata", None)
    return doc


def _canonical_key(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return len(raw), raw


def attribute_order(doc: dict[str, Any]) -> list[str] | None:
    """The order of the document's attribute keys, when it is not DAG-CBOR's own order.

    JSON keeps the order attributes were written in (xarray shows it, zarr writes it);
    DAG-CBOR sorts map keys. The node records the order so that nothing is lost.
    """
    attrs = doc.get("attributes")
    if not isinstance(attrs, dict):
        return None
    order = list(attrs)
    return None if order == sorted(order, key=_canonical_key) else order


def _render(canonical: str, order: tuple[str, ...] | None) -> bytes:
    doc = json.loads(canonical)
    attrs = doc.get("attributes")
    if isinstance(attrs, dict):
        keys = order if order is not None else sorted(attrs, key=_canonical_key)
        doc["attributes"] = {k: attrs[k] for k in keys}
    from ipldwrite._compat.zarr_api import METADATA_ERRORS, render_metadata

    try:
        return render_metadata(doc)
    except METADATA_ERRORS:
        # A document zarr cannot parse (written by a newer zarr, or not by zarr at all) is
        # served as plain JSON: the same document, but not byte for byte what a zarr that
        # can parse it would render, so its zarr.json bytes (not the root CID, which is
        # the DAG-CBOR document's) may differ between zarr versions. Other exceptions are
        # bugs and propagate.
        return json.dumps(doc, indent=2, allow_nan=True).encode()


def render_zarr_json(doc: dict[str, Any], order: list[str] | None = None) -> bytes:
    """The zarr.json bytes for a stored document, as zarr-python itself writes them.

    Going through zarr's metadata classes reproduces zarr's key order and formatting, so a
    dataset read back (or exported as UnixFS) has byte-identical zarr.json files.
    """
    try:
        canonical = json.dumps(from_ipld_value(doc), sort_keys=True, allow_nan=True)
    except TypeError as exc:
        # DAG-CBOR has bytes and links, JSON has neither: a node holding them in its zarr
        # document was not written from a zarr.json (found by scripts/fuzz.py).
        raise FormatError(f"zarr metadata that JSON cannot represent: {exc}") from None
    return _render(canonical, tuple(order) if order is not None else None)


# At most 20 digits: no chunk index reaches 2**64, and int() refuses strings of over 4300
# digits with a ValueError (found by scripts/fuzz.py), so a hostile key must not get there.
_INT = re.compile(r"0|[1-9][0-9]{0,19}")


def _sizes(value: Any, path: str, what: str) -> tuple[int, ...]:
    # Integers only: int() would take "5" or 2.7, and raise ValueError on "abc" (found by
    # scripts/fuzz.py).
    sizes = (
        [int(v) for v in value if not isinstance(v, bool) and isinstance(v, Integral)]
        if isinstance(value, list | tuple)
        else None
    )
    if sizes is None or len(sizes) != len(value) or any(n < 0 for n in sizes):
        raise FormatError(f"array {path!r}: {what} {value!r} is not a list of sizes")
    return tuple(sizes)


@dataclass(frozen=True, slots=True)
class ChunkKeys:
    """The chunk grid of an array and the grammar of its chunk keys."""

    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    encoding: str  # "default" or "v2"
    separator: str

    @staticmethod
    def from_doc(doc: dict[str, Any], path: str) -> ChunkKeys:
        try:
            shape = _sizes(doc["shape"], path, "shape")
            grid = doc["chunk_grid"]
            if grid.get("name") != "regular":
                raise FormatError(
                    f"array {path!r}: chunk grid {grid.get('name')!r} is not supported "
                    "(zarr-on-IPLD v1 stores regular chunk grids)"
                )
            chunk_shape = _sizes(grid["configuration"]["chunk_shape"], path, "chunk shape")
            cke = doc.get("chunk_key_encoding", {"name": "default"})
            name = cke.get("name", "default")
            config = cke.get("configuration") or {}
        except (KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"array {path!r}: incomplete zarr.json ({exc})") from None
        if name not in ("default", "v2"):
            raise FormatError(f"array {path!r}: unsupported chunk key encoding {name!r}")
        if not isinstance(config, dict):
            raise FormatError(f"array {path!r}: chunk key encoding configuration is not a map")
        separator = config.get("separator", "/" if name == "default" else ".")
        if separator not in ("/", "."):  # the two the zarr v3 spec allows
            raise FormatError(
                f"array {path!r}: chunk key separator {separator!r} is not '/' or '.'"
            )
        if len(shape) != len(chunk_shape) or any(c <= 0 for c in chunk_shape):
            raise FormatError(f"array {path!r}: chunk shape {chunk_shape} does not fit {shape}")
        return ChunkKeys(shape, chunk_shape, name, separator)

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunk_shape, strict=True))

    def parse(self, key: str) -> tuple[int, ...] | None:
        """The chunk index a key names, or None if it is not a chunk key of this array."""
        if self.encoding == "default":
            if key == "c":
                parts: list[str] = []
            elif key.startswith("c" + self.separator):
                parts = key[2:].split(self.separator)
            else:
                return None
        else:
            parts = key.split(self.separator) if key != "0" or self.shape else []
            if not self.shape:
                return () if key == "0" else None
        if len(parts) != len(self.shape) or not all(_INT.fullmatch(p) for p in parts):
            return None
        index = tuple(int(p) for p in parts)
        if any(i >= g for i, g in zip(index, self.grid, strict=True)):
            return None
        return index

    def format(self, index: tuple[int, ...]) -> str:
        if self.encoding == "default":
            return self.separator.join(["c", *map(str, index)])
        return self.separator.join(map(str, index)) if index else "0"
