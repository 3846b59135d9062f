"""A small IPFS HTTP gateway over any blockstore: ``ipldwrite serve``.

What the Trustless Gateway spec asks (specs.ipfs.tech/http-gateways/trustless-gateway):
``GET``/``HEAD /ipfs/{cid}`` with ``?format=raw`` or ``Accept: application/vnd.ipld.raw``
(one block), and ``/ipfs/{cid}[/{path}]`` with ``?format=car`` or ``Accept:
application/vnd.ipld.car`` (a CARv1 stream, ``order=dfs``, ``dups=n``) with ``dag-scope``
``block``, ``entity`` or ``all``; 404 when the root block is absent, 400 for requests it
cannot serve; ``Cache-Control: public, max-age=29030400, immutable``, ``Etag``,
``X-Content-Type-Options: nosniff``, ``Content-Disposition: attachment``, ``X-Ipfs-Path``
and ``X-Ipfs-Roots`` (the CIDs along the path, which clients such as ipfsspec read).

Beyond the trustless subset, two things clients need:

* a path request without a format answers the UnixFS *file* at the path, deserialized (as a
  path gateway does): ipfsspec reads file bytes that way. Directories and other codecs get
  ``406``: only verifiable responses for them.
* the ``ipldwrite-walk=dag-cbor`` extension on CAR requests adds every DAG-CBOR block
  reachable from the terminal block through DAG-CBOR blocks: all metadata nodes of a
  dataset in one response (see :mod:`ipldwrite.blockstore._gateway`).

``entity-bytes=from:to`` on a UnixFS file sends only the blocks that hold those bytes (and
the file nodes above them); a range wholly past the end is a 400. The server binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from ipldwrite.blockstore import Blockstore
from ipldwrite.errors import BlockNotFoundError, IpldWriteError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    IDENTITY,
    RAW,
    Link,
    decode,
    link_str,
    links_of,
    parse_cid_bytes,
    to_link,
    varint,
)
from ipldwrite.ipld._car import encode_v1_header
from ipldwrite.unixfs import DataType, decode_node, file_size, iter_directory, read_file

__all__ = ["GatewayServer", "serve"]

RAW_TYPE: Final = "application/vnd.ipld.raw"
CAR_TYPE: Final = "application/vnd.ipld.car"
IMMUTABLE: Final = "public, max-age=29030400, immutable"
WALK_PARAMETER: Final = "ipldwrite-walk"
_SCOPES: Final = ("block", "entity", "all")


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _codec(link: Link) -> int:
    return parse_cid_bytes(link.cid_bytes).codec


def _is_identity(link: Link) -> bool:
    return parse_cid_bytes(link.cid_bytes).hash_code == IDENTITY


class _Recorder:
    """A ``get`` that remembers every block it read, in order: the blocks that prove a path."""

    def __init__(self, blockstore: Blockstore) -> None:
        self.blockstore = blockstore
        self.read: dict[bytes, bytes] = {}

    def __call__(self, link: Link) -> bytes:
        data = self.blockstore.get(link)
        self.read.setdefault(link.cid_bytes, data)
        return data


def _field(value: Any, segment: str, where: Link) -> Any:
    """``value[segment]`` inside a decoded DAG-CBOR block (map key or list index)."""
    if isinstance(value, dict) and segment in value:
        return value[segment]
    if isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
        return value[int(segment)]
    raise _Refused(HTTPStatus.NOT_FOUND, f"no field {segment!r} in {link_str(where)}")


class GatewayRequests:
    """The gateway's answers, apart from HTTP: what blocks a request gets."""

    def __init__(self, blockstore: Blockstore) -> None:
        self.blockstore = blockstore

    def resolve(self, root: Link, segments: list[str]) -> tuple[list[Link], dict[bytes, bytes]]:
        """The CIDs along the path (root first) and the blocks read to prove it."""
        recorder = _Recorder(self.blockstore)
        if not self.blockstore.has(root) and not _is_identity(root):
            raise _Refused(HTTPStatus.NOT_FOUND, f"block {link_str(root)} is not here")
        trail = [root]
        link, value = root, None  # value: where a DAG-CBOR path stands inside ``link``
        try:
            for segment in segments:
                if value is None and _codec(link) == DAG_PB:
                    entries = dict(iter_directory(link, recorder))
                    if segment not in entries:
                        raise _Refused(
                            HTTPStatus.NOT_FOUND, f"no entry {segment!r} in {link_str(link)}"
                        )
                    link = entries[segment]
                elif _codec(link) == DAG_CBOR:
                    here = decode(recorder(link)) if value is None else value
                    found = _field(here, segment, link)
                    link, value = (found, None) if isinstance(found, Link) else (link, found)
                else:
                    raise _Refused(HTTPStatus.NOT_FOUND, f"{link_str(link)} has no paths")
                trail.append(link)
        except BlockNotFoundError:
            raise _Refused(
                HTTPStatus.NOT_FOUND, f"a block along /{'/'.join(segments)} is not here"
            ) from None
        if value is not None:
            raise _Refused(HTTPStatus.BAD_REQUEST, "the path ends inside a block, not at a link")
        return trail, recorder.read

    def car_blocks(
        self,
        terminal: Link,
        proof: dict[bytes, bytes],
        scope: str,
        walk: bool,
        byte_range: tuple[int, int] | None = None,
    ) -> Iterator[tuple[Link, bytes]]:
        """The blocks of a CAR response, depth first, each once (identity CIDs never)."""
        seen: set[bytes] = set()
        for raw, data in proof.items():
            seen.add(raw)
            yield Link(raw), data
        if byte_range is not None:
            yield from self._file_range(terminal, *byte_range, seen)
            return
        yield from self._walk(terminal, seen, scope, walk)

    def entity_range(self, terminal: Link, spec: str) -> tuple[int, int] | None:
        """``entity-bytes=from:to`` as inclusive offsets in the UnixFS file ``terminal``;
        None when ``terminal`` is not a file (the parameter is then ignored)."""
        codec = _codec(terminal)
        if codec == DAG_PB:
            _, meta = decode_node(terminal, self.blockstore.get(terminal))
            if meta.type not in (DataType.FILE, DataType.RAW):
                return None
        elif codec != RAW:
            return None
        first, sep, last = spec.partition(":")
        try:
            lo, hi = int(first), None if last == "*" else int(last)
        except ValueError:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"entity-bytes={spec!r}: from:to") from None
        if not sep:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"entity-bytes={spec!r}: from:to")
        size = file_size(terminal, self.blockstore.get)
        lo = lo if lo >= 0 else max(0, size + lo)
        hi = size - 1 if hi is None else (hi if hi >= 0 else size + hi)
        if size and lo >= size:
            raise _Refused(
                HTTPStatus.BAD_REQUEST, f"entity-bytes={spec!r} is past the end ({size} bytes)"
            )
        return lo, min(hi, size - 1)

    def _file_range(
        self, link: Link, lo: int, hi: int, seen: set[bytes]
    ) -> Iterator[tuple[Link, bytes]]:
        """The blocks of file ``link`` that hold bytes ``lo..hi`` (inclusive, relative to
        this node), parents first; an empty range gives the node alone."""
        data = self.blockstore.get(link)
        if link.cid_bytes not in seen:
            seen.add(link.cid_bytes)
            yield link, data
        if _codec(link) != DAG_PB or hi < lo:
            return
        node, meta = decode_node(link, data)
        offset = len(meta.data or b"")
        for child, size in zip(node.links, meta.blocksizes, strict=True):
            start, end = offset, offset + size - 1
            if size and start <= hi and end >= lo:
                yield from self._file_range(
                    child.hash, max(lo, start) - start, min(hi, end) - start, seen
                )
            offset += size

    def _walk(
        self, terminal: Link, seen: set[bytes], scope: str, walk: bool
    ) -> Iterator[tuple[Link, bytes]]:
        entity = scope == "entity" and _codec(terminal) == DAG_PB
        if entity:
            _, meta = decode_node(terminal, self.blockstore.get(terminal))
            if meta.type in (DataType.DIRECTORY, DataType.HAMT_SHARD):
                recorder = _Recorder(self.blockstore)
                recorder(terminal)
                for _ in iter_directory(terminal, recorder):
                    pass  # reading the entries reads every shard: the directory's blocks
                for raw, data in recorder.read.items():
                    if raw not in seen:
                        seen.add(raw)
                        yield Link(raw), data
                return
        stack = [terminal]
        while stack:
            link = stack.pop()
            if link.cid_bytes in seen or _is_identity(link):
                continue
            seen.add(link.cid_bytes)
            data = self.blockstore.get(link)
            yield link, data
            deeper = scope == "all" or entity or (walk and _codec(link) == DAG_CBOR)
            if not deeper:
                continue
            children = links_of(link, data)
            if walk and scope != "all" and not entity:
                children = [c for c in children if _codec(c) == DAG_CBOR]
            stack.extend(reversed(children))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ipldwrite-gateway"
    requests: GatewayRequests  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a gateway serving a dataset answers thousands of requests

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        try:
            self._route(head)
        except _Refused as exc:
            self._error(exc.status, str(exc))
        except BlockNotFoundError as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except IpldWriteError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")]
        if len(parts) < 3 or parts[0] != "" or parts[1] != "ipfs" or not parts[2]:
            raise _Refused(HTTPStatus.BAD_REQUEST, "only /ipfs/{cid}[/{path}] is served")
        try:
            root = to_link(parts[2])
        except (IpldWriteError, ValueError) as exc:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"{parts[2]!r} is not a CID: {exc}") from None
        segments = [p for p in parts[3:] if p]
        kind = self._format(query)
        if kind == "raw":
            if segments:
                raise _Refused(HTTPStatus.BAD_REQUEST, "raw blocks are served by CID only")
            self._raw(root, head)
        elif kind == "car":
            self._car(root, segments, query, head)
        else:
            self._file(root, segments, head)

    def _format(self, query: dict[str, str]) -> str | None:
        fmt = query.get("format")
        if fmt is not None:
            if fmt not in ("raw", "car"):
                raise _Refused(HTTPStatus.BAD_REQUEST, f"format={fmt!r}: only raw and car")
            return fmt
        accept = self.headers.get("Accept", "")
        for item in accept.split(","):
            media = item.split(";")[0].strip()
            if media == RAW_TYPE:
                return "raw"
            if media == CAR_TYPE:
                return "car"
        return None

    def _common(self, root: Link, path: str, etag: str, content_type: str, name: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", IMMUTABLE)
        self.send_header("Etag", f'"{etag}"')
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Ipfs-Path", f"/ipfs/{link_str(root)}{path}")
        self.send_header("Content-Disposition", f'attachment; filename="{name}"')
        self.send_header("Vary", "Accept")

    def _raw(self, root: Link, head: bool) -> None:
        data = self.requests.blockstore.get(root)
        cid = link_str(root)
        self.send_response(HTTPStatus.OK)
        self._common(root, "", f"{cid}.raw", RAW_TYPE, f"{cid}.bin")
        self.send_header("X-Ipfs-Roots", cid)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _car(self, root: Link, segments: list[str], query: dict[str, str], head: bool) -> None:
        scope = query.get("dag-scope", "all")
        if scope not in _SCOPES:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"dag-scope={scope!r}: block, entity or all")
        if query.get("car-version", "1") != "1" or query.get("car-dups", "n") != "n":
            raise _Refused(HTTPStatus.BAD_REQUEST, "only CARv1 with dups=n is served")
        walk = query.get(WALK_PARAMETER) == "dag-cbor"
        trail, proof = self.requests.resolve(root, segments)
        byte_range = None
        if "entity-bytes" in query:  # implies dag-scope=entity
            scope = "entity"
            byte_range = self.requests.entity_range(trail[-1], query["entity-bytes"])
        path = "".join(f"/{s}" for s in segments)
        cid = link_str(root)
        self.send_response(HTTPStatus.OK)
        self._common(
            root,
            path,
            f"{cid}{path}.car.{scope}{'.walk' if walk else ''}"
            + (f".{byte_range[0]}-{byte_range[1]}" if byte_range else ""),
            f"{CAR_TYPE};version=1;order=dfs;dups=n",
            f"{cid}.car",
        )
        self.send_header("X-Ipfs-Roots", ",".join(link_str(x) for x in trail))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        self._chunk(encode_v1_header([root]))
        try:
            blocks = self.requests.car_blocks(trail[-1], proof, scope, walk, byte_range)
            for link, data in blocks:
                if _is_identity(link):
                    continue
                self._chunk(varint(len(link.cid_bytes) + len(data)) + link.cid_bytes + data)
        except IpldWriteError:
            # Committed to 200 already: end the stream without its last chunk, so the
            # client sees an incomplete response rather than a short, valid-looking CAR.
            self.close_connection = True
            return
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _file(self, root: Link, segments: list[str], head: bool) -> None:
        trail, _ = self.requests.resolve(root, segments)
        target = trail[-1]
        blockstore = self.requests.blockstore
        if _codec(target) == DAG_PB:
            _, meta = decode_node(target, blockstore.get(target))
            if meta.type not in (DataType.FILE, DataType.RAW):
                raise _Refused(
                    HTTPStatus.NOT_ACCEPTABLE,
                    "only UnixFS files are served deserialized; ask for format=car",
                )
        elif _codec(target) != RAW:
            raise _Refused(HTTPStatus.NOT_ACCEPTABLE, "only UnixFS files are served deserialized")
        data = read_file(target, blockstore.get)
        path = "".join(f"/{s}" for s in segments)
        self.send_response(HTTPStatus.OK)
        self._common(
            root,
            path,
            link_str(target),
            "application/octet-stream",
            segments[-1] if segments else link_str(target),
        )
        self.send_header("X-Ipfs-Roots", ",".join(link_str(x) for x in trail))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)


class GatewayServer:
    """A gateway over ``blockstore`` on ``host:port`` (port 0: any free port), in a thread.

    Use as a context manager, or ``start()`` / ``stop()``; ``url`` is where it listens.
    """

    def __init__(self, blockstore: Blockstore, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"requests": GatewayRequests(blockstore)})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.blockstore = blockstore

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self) -> GatewayServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ipldwrite-gateway", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop a server running in its thread (:meth:`start`) and close its socket."""
        self._server.shutdown()
        self.close()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Close the listening socket (after :meth:`serve_forever` returns)."""
        self._server.server_close()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(blockstore: Blockstore, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``blockstore`` until interrupted."""
    server = GatewayServer(blockstore, host, port)
    try:
        server.serve_forever()
    finally:
        server.close()
