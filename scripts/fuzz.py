"""Mutation fuzzing of every decoder that reads bytes from outside.

Each target decodes one input the way ipldwrite reads it from a file, a blockstore or a
user; seeds are real blocks and CARs this project writes (a small dataset with a group,
arrays, a manifest, its UnixFS tree, a multi-block chunk file, CARv1 and CARv2 exports).
Mutations flip bits, overwrite bytes with boundary values, insert, delete, duplicate and
splice ranges, truncate, and plant huge length prefixes (a varint or CBOR head of ~2**60).

The only allowed outcomes are a decode that passes the target's own check (canonical
codecs must re-encode to the same bytes) or an exception from ``ipldwrite.errors``. Anything
else is a failure: IndexError, KeyError, RecursionError, struct.error, UnicodeDecodeError,
MemoryError (the address space is capped at +1 GiB, so a huge allocation fails loudly),
or an input running over ``--timeout`` seconds.

    .venv/bin/python scripts/fuzz.py                    # 100,000 inputs per decoder
    .venv/bin/python scripts/fuzz.py --inputs 5000 --only car_v1 --seconds 60

Prints inputs/s and failures per decoder; exits 1 if any failed; ``--save DIR`` keeps
each failing input (one file per distinct crash site) for replay with ``--replay FILE``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import xarray as xr

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.car import export_car
from ipldwrite.convert import to_unixfs
from ipldwrite.dag import ChunkKeys, NodeIO
from ipldwrite.dag._metadata import render_zarr_json
from ipldwrite.dag._nodes import ArrayNode, node_from_ipld
from ipldwrite.errors import IpldWriteError
from ipldwrite.ipld import (
    DAG_CBOR,
    DAG_PB,
    Link,
    check_links,
    compute_link,
    decode,
    decode_pb,
    encode,
    encode_pb,
    link_from_bytes,
    link_str,
    to_link,
)
from ipldwrite.ipld._car import iter_blocks, read_index, read_layout
from ipldwrite.ipld._varint import read_varint, varint
from ipldwrite.unixfs import decode_unixfs, iter_directory, read_file, write_file
from ipldwrite.xarray import to_ipld_zarr

#: An input running longer than this is a hang.
TIMEOUT = 2.0


class Hang(Exception):
    pass


class WrongDecode(AssertionError):
    """A decode that succeeded but fails the target's own check (e.g. not canonical)."""


# -- seeds ------------------------------------------------------------------------------------


@dataclass
class Seeds:
    group: list[bytes] = field(default_factory=list)
    array: list[bytes] = field(default_factory=list)
    manifest: list[tuple[bytes, int]] = field(default_factory=list)  # (node, its length)
    pb_dirs: list[bytes] = field(default_factory=list)
    pb_files: list[bytes] = field(default_factory=list)
    unixfs: list[bytes] = field(default_factory=list)
    cids: list[bytes] = field(default_factory=list)
    car_v1: list[bytes] = field(default_factory=list)
    car_v2: list[bytes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    chunk_keys: list[ChunkKeys] = field(default_factory=list)


def make_seeds() -> Seeds:
    """Real blocks and CARs as the project writes them."""
    store = MemoryBlockstore(verify=False)
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), np.arange(2 * 5 * 6, dtype="f4").reshape(2, 5, 6)),
            "mask": (("lat", "lon"), np.ones((5, 6), dtype=bool)),
        },
        coords={"lat": np.linspace(-80, 80, 5), "lon": np.arange(6.0)},
        attrs={"title": "fuzz seed", "history": "ünïcode"},
    )
    root = to_ipld_zarr(ds, store, encoding={"t2m": {"chunks": (1, 2, 3)}})
    seeds = Seeds()
    for link in store.iter_links():
        data = store.get(link)
        seeds.cids.append(link.cid_bytes)
        if link.cid_bytes[1] != DAG_CBOR:
            continue
        value = decode(data)
        if isinstance(value, dict) and value.get("type") == "group":
            seeds.group.append(data)
        elif isinstance(value, dict) and value.get("type") == "array":
            seeds.array.append(data)
            node = node_from_ipld(value, link, "a")
            assert isinstance(node, ArrayNode)
            seeds.chunk_keys.append(node.keys)
            seeds.keys.extend(node.keys.format(i) for i in np.ndindex(*node.keys.grid))
        elif isinstance(value, list):
            seeds.manifest.append((data, len(value)))
    tree = to_unixfs(root, store)
    for link in MemoryBlockstore.iter_links(store):
        if link.cid_bytes[1] == DAG_PB:
            block = store.get(link)
            seeds.pb_dirs.append(block)
            node = decode_pb(block)
            if node.data is not None:
                seeds.unixfs.append(node.data)
    big = bytes(range(256)) * 40  # a 3-level file DAG: 10 KiB in 1 KiB leaves, 4 per node
    file_root = write_file(big, store.put, chunk_size=1024, max_children=4)
    seeds.pb_files.append(store.get(file_root))
    seeds.unixfs.append(decode_pb(store.get(file_root)).data or b"")
    with tempfile.TemporaryDirectory() as tmp:
        for version, out in ((1, seeds.car_v1), (2, seeds.car_v2)):
            path = Path(tmp, f"v{version}.car")
            export_car(tree if version == 1 else root, store, path, version=version)
            out.append(path.read_bytes())
    seeds.cids.append(b"\x12\x20" + bytes(32))  # CIDv0
    return seeds


# -- targets: decode, then check what came out -------------------------------------------------


def _varint(data: bytes) -> None:
    try:
        value, end = read_varint(data, 0)
    except ValueError:
        return  # read_varint's documented contract; every caller wraps it in its own error
    if varint(value) != data[:end]:
        raise WrongDecode(f"varint {data[:end].hex()} is not minimal (read {value})")


def _cid_bytes(data: bytes) -> None:
    link = link_from_bytes(data)
    if to_link(link_str(link)) != link:
        raise WrongDecode("CID does not survive its string form")


def _cid_string(data: bytes) -> None:
    link = to_link(data.decode("latin-1"))
    link_from_bytes(link.cid_bytes)


def _dag_cbor(data: bytes) -> None:
    value = decode(data)
    check_links(value)
    if encode(value) != data:
        raise WrongDecode("accepted DAG-CBOR that does not re-encode to the same bytes")


def _node(data: bytes) -> None:
    link = compute_link(data, DAG_CBOR)
    node = node_from_ipld(decode(data), link, "fuzzed")
    if isinstance(node, ArrayNode):  # the zarr metadata inside: grid, tiling, rendering
        node.keys.parse("c/0/0/0")
        node.tiling.to_ipld()
    if node.doc is not None:
        render_zarr_json(node.doc, node.order)


def _manifest(length: int) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        store = MemoryBlockstore(verify=False)
        link = store.put(data, DAG_CBOR)
        NodeIO(store).read(link, length)

    return run


def _dag_pb(data: bytes) -> None:
    node = decode_pb(data)
    if encode_pb(node) != data:
        raise WrongDecode("accepted DAG-PB that does not re-encode to the same bytes")


def _unixfs_data(data: bytes) -> None:
    decode_unixfs(data)


def _blocks_of(seeds: Seeds) -> dict[bytes, bytes]:
    store = MemoryBlockstore(verify=False)
    for car in seeds.car_v1:
        f = io.BytesIO(car)
        for section, block in iter_blocks(f, read_layout(f)):
            store._blocks[section.link.cid_bytes] = block
    return store._blocks


def _unixfs_dir(blocks: dict[bytes, bytes]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        link = compute_link(data, DAG_PB)
        get = _getter(blocks, link, data)
        for _ in iter_directory(link, get):
            pass

    return run


def _unixfs_file(blocks: dict[bytes, bytes]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        link = compute_link(data, DAG_PB)
        read_file(link, _getter(blocks, link, data), 3, 5000)

    return run


def _getter(blocks: dict[bytes, bytes], link: Link, data: bytes) -> Callable[[Link], bytes]:
    from ipldwrite.errors import BlockNotFoundError

    def get(wanted: Link) -> bytes:
        if wanted == link:
            return data
        found = blocks.get(wanted.cid_bytes)
        if found is None:
            raise BlockNotFoundError(f"no block {link_str(wanted)}", cid=wanted)
        return found

    return get


def _car(index: bool) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        f = io.BytesIO(data)
        layout = read_layout(f, "fuzzed.car")
        if index:
            found = read_index(f, layout)
            if found is not None:
                for code, digest, _ in found.items():
                    found.lookup(code or 0x12, digest)
                    break
        for _ in iter_blocks(f, layout):
            pass

    return run


def _chunk_keys(keys: list[ChunkKeys]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        text = data.decode("latin-1")
        for k in keys:
            index = k.parse(text)
            if index is not None and k.parse(k.format(index)) != index:
                raise WrongDecode(
                    f"chunk key {text!r} parses to {index}, which does not round-trip"
                )

    return run


@dataclass
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: list[bytes]


def targets(seeds: Seeds) -> list[Target]:
    blocks = _blocks_of(seeds)
    varints = [varint(n) for n in (0, 1, 127, 128, 300, 1 << 32, 1 << 63, (1 << 64) - 1)]
    manifests = [
        Target(f"manifest{i}", _manifest(n), [d]) for i, (d, n) in enumerate(seeds.manifest[:2])
    ]
    return [
        Target("varint", _varint, varints),
        Target("cid_bytes", _cid_bytes, seeds.cids[:16]),
        Target("cid_string", _cid_string, [link_str(Link(c)).encode() for c in seeds.cids[:16]]),
        Target("dag_cbor", _dag_cbor, seeds.group + seeds.array + [m for m, _ in seeds.manifest]),
        Target("group_node", _node, seeds.group),
        Target("array_node", _node, seeds.array),
        *manifests,
        Target("dag_pb", _dag_pb, seeds.pb_dirs + seeds.pb_files),
        Target("unixfs_data", _unixfs_data, seeds.unixfs),
        Target("unixfs_dir", _unixfs_dir(blocks), seeds.pb_dirs),
        Target("unixfs_file", _unixfs_file(blocks), seeds.pb_files),
        Target("car_v1", _car(index=False), seeds.car_v1),
        Target("car_v2", _car(index=True), seeds.car_v2),
        Target("chunk_key", _chunk_keys(seeds.chunk_keys), [k.encode() for k in seeds.keys]),
    ]


# -- mutations --------------------------------------------------------------------------------

_INTERESTING = bytes([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x2A])
_HUGE = [
    b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # varint ~2**63
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # varint 2**63, 10 bytes
    b"\x5b\x10\x00\x00\x00\x00\x00\x00\x00",  # CBOR byte string of 2**60 bytes
    b"\x9b\x10\x00\x00\x00\x00\x00\x00\x00",  # CBOR array of 2**60 items
    b"\xbb\x10\x00\x00\x00\x00\x00\x00\x00",  # CBOR map of 2**60 pairs
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x10",  # varint 2**60
    b"\xff\xff\xff\x7f",
    b"\x00\x00\x00\x00\x00\x00\x00\x10",  # u64 LE 2**60 (CARv2 offsets, index lengths)
]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
        op = rng.randrange(11)
        n = len(out)
        at = rng.randrange(n + 1)
        if op == 0 and n:
            out[min(at, n - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[min(at, n - 1)] = rng.randrange(256)
        elif op == 2 and n:
            out[min(at, n - 1)] = rng.choice(_INTERESTING)
        elif op == 3:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 4 and n:
            del out[at : at + rng.randrange(1, 17)]
        elif op == 5 and n:
            piece = out[at : at + rng.randrange(1, 33)]
            where = rng.randrange(n + 1)
            out[where:where] = piece
        elif op == 6:
            del out[at:]
        elif op == 7:
            other = rng.choice(pool)
            start = rng.randrange(len(other) + 1)
            out[at:] = other[start : start + rng.randrange(1, 65)] + out[at:]
        elif op == 8:
            huge = rng.choice(_HUGE)
            out[at : at + len(huge)] = huge
        elif op == 9:
            out[at : at + 8] = rng.randrange(1 << 64).to_bytes(8, rng.choice(("big", "little")))
        else:  # a long run: digit strings past int()'s limit, deep nesting heads, fill
            out[at:at] = bytes([rng.choice(b"09\x81\x9f\xff\x80\x00")]) * rng.randrange(64, 6000)
    return bytes(out)


def inputs(target: Target, rng: random.Random, pool: list[bytes]) -> Iterator[bytes]:
    yield from target.seeds
    while True:
        if rng.random() < 0.03:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        else:
            yield mutate(rng, rng.choice(target.seeds), pool)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Failure:
    target: str
    kind: str
    message: str
    where: str
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "message": self.message[:300],
            "where": self.where,
            "input": self.data[:256].hex(),
            "input_bytes": len(self.data),
        }


@dataclass
class Result:
    target: str
    inputs: int = 0
    accepted: int = 0
    seconds: float = 0.0
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)
    failed_inputs: int = 0

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


def _crash_site(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    frame = frames[-1] if frames else None
    return f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"no result within {TIMEOUT} s")


def check_one(target: Target, data: bytes) -> BaseException | None:
    """Run one input; return the exception if the outcome is not an allowed one."""
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        target.run(data)
    except IpldWriteError:
        return None
    except Exception as exc:  # everything else is a failure to report
        return exc
    except Hang as exc:
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return None


def fuzz(target: Target, count: int, seconds: float, seed: int, pool: list[bytes]) -> Result:
    rng = random.Random(f"{seed}:{target.name}")
    result = Result(target.name)
    start = time.perf_counter()
    deadline = start + seconds
    for data in inputs(target, rng, pool):
        if result.inputs >= count or (result.inputs % 256 == 0 and time.perf_counter() > deadline):
            break
        result.inputs += 1
        exc = check_one(target, data)
        if exc is None:
            continue
        result.failed_inputs += 1
        key = (type(exc).__name__, _crash_site(exc))
        if key not in result.failures:
            result.failures[key] = Failure(target.name, key[0], str(exc), key[1], data)
    result.seconds = time.perf_counter() - start
    return result


def cap_memory(extra: int = 1 << 30) -> None:
    """Let the process grow by ``extra`` bytes at most: a decoder that allocates what a
    hostile length prefix asks for raises MemoryError, which counts as a failure."""
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open("/proc/self/statm") as f:
        virtual = int(f.read().split()[0]) * resource.getpagesize()
    limit = max(virtual, usage) + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per decoder")
    parser.add_argument("--seconds", type=float, default=300.0, help="time cap per decoder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only these decoders")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--save", type=Path, help="keep one failing input per crash site here")
    parser.add_argument("--replay", type=Path, help="run one saved input (name: TARGET-...)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    seeds = make_seeds()
    all_targets = targets(seeds)
    pool = [s for t in all_targets for s in t.seeds]
    if args.replay:
        name = args.replay.name.split("-")[0]
        target = next(t for t in all_targets if t.name == name)
        target.run(args.replay.read_bytes())  # raises, with its traceback, if it still fails
        print(f"{args.replay}: OK")
        return 0
    cap_memory()
    chosen = [t for t in all_targets if not args.only or t.name in args.only]
    results = []
    print(f"{'decoder':<14} {'inputs':>9} {'inputs/s':>10} {'failed':>7}  distinct crashes")
    for target in chosen:
        r = fuzz(target, args.inputs, args.seconds, args.seed, pool)
        results.append(r)
        sites = ", ".join(f"{k}@{w}" for k, w in r.failures) or "-"
        print(f"{r.target:<14} {r.inputs:>9,} {r.rate:>10,.0f} {r.failed_inputs:>7}  {sites}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for n, failure in enumerate(r.failures.values()):
                (args.save / f"{r.target}-{n}.bin").write_bytes(failure.data)
    total = sum(r.inputs for r in results)
    failed = sum(len(r.failures) for r in results)
    print(f"{total:,} inputs, {failed} distinct crash sites")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "decoder": r.target,
                        "inputs": r.inputs,
                        "seconds": round(r.seconds, 2),
                        "inputs_per_s": round(r.rate),
                        "failed_inputs": r.failed_inputs,
                        "failures": [f.to_json() for f in r.failures.values()],
                    }
                    for r in results
                ],
                indent=2,
            )
            + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
