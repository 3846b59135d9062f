"""The chunk manifest: canonical, mergeable, shiftable (docs/spec.md section 3)."""

from __future__ import annotations

import random
from math import prod

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import NodeIO, Source, Tiling, assemble, iter_entries, lookup, read_region
from ipldwrite.errors import MergeConflictError
from ipldwrite.ipld import Link, compute_link

Index = tuple[int, ...]


def chunk(index: Index, salt: str = "") -> Link:
    return compute_link(f"{index}{salt}".encode())


grids = st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple)


@st.composite
def grid_and_entries(draw: st.DrawFn) -> tuple[Index, dict[Index, Link]]:
    grid = draw(grids)
    density = draw(st.floats(0.05, 1.0))
    rng = random.Random(draw(st.integers(0, 2**32)))
    entries = {i: chunk(i) for i in np.ndindex(*grid) if rng.random() < density}
    return grid, entries


def build(io: NodeIO, grid: Index, entries: dict[Index, Link]) -> Link | None:
    return assemble(io, Tiling.for_grid(grid), updates=entries)


@given(grid_and_entries(), st.integers(1, 8), st.integers(0, 2**32))
def test_any_partition_and_merge_order_gives_the_same_root(
    ge: tuple[Index, dict[Index, Link]], parts: int, seed: int
) -> None:
    grid, entries = ge
    io = NodeIO(MemoryBlockstore())
    tiling = Tiling.for_grid(grid)
    direct = build(io, grid, entries)
    rng = random.Random(seed)
    keys = list(entries)
    rng.shuffle(keys)
    pieces = [dict.fromkeys(keys[i::parts]) for i in range(parts)]
    roots = [build(io, grid, {k: entries[k] for k in piece}) for piece in pieces]
    # A random merge tree: repeatedly merge a random group of the remaining roots.
    while len(roots) > 1:
        rng.shuffle(roots)
        take = rng.randint(2, len(roots))
        group, roots = roots[:take], roots[take:]
        roots.append(assemble(io, tiling, [Source(tiling, r) for r in group]))
    assert roots[0] == direct


@given(grid_and_entries())
def test_lookup_iteration_and_regions_agree_with_the_entries(
    ge: tuple[Index, dict[Index, Link]],
) -> None:
    grid, entries = ge
    io = NodeIO(MemoryBlockstore())
    tiling = Tiling.for_grid(grid)
    root = build(io, grid, entries)
    assert dict(iter_entries(io, tiling, root)) == entries
    for index in np.ndindex(*grid):
        assert lookup(io, tiling, root, index) == entries.get(index)
    lo = tuple(g // 3 for g in grid)
    hi = tuple(max(low + 1, 2 * g // 3) for low, g in zip(lo, grid, strict=True))
    region = read_region(io, tiling, root, lo, hi)
    for offset in np.ndindex(*region.shape):
        index = tuple(low + o for low, o in zip(lo, offset, strict=True))
        assert region[offset] == entries.get(index)


@given(grid_and_entries(), st.integers(1, 30))
def test_shifted_sources_concatenate_along_dim0(
    ge: tuple[Index, dict[Index, Link]], extra: int
) -> None:
    grid, entries = ge
    io = NodeIO(MemoryBlockstore())
    second = (extra, *grid[1:])
    more = {i: chunk(i, "b") for i in np.ndindex(*second)}
    target_grid = (grid[0] + extra, *grid[1:])
    expected = {**entries, **{(i[0] + grid[0], *i[1:]): v for i, v in more.items()}}
    a, b = Tiling.for_grid(grid), Tiling.for_grid(second)
    joined = assemble(
        io,
        Tiling.for_grid(target_grid),
        [
            Source(a, build(io, grid, entries)),
            Source(b, build(io, second, more), offset=(grid[0], *[0] * (len(grid) - 1))),
        ],
    )
    assert joined == build(io, target_grid, expected)


@given(grid_and_entries(), st.data())
def test_windows_subset_a_manifest(
    ge: tuple[Index, dict[Index, Link]], data: st.DataObject
) -> None:
    grid, entries = ge
    io = NodeIO(MemoryBlockstore())
    lo = tuple(data.draw(st.integers(0, g - 1)) for g in grid)
    hi = tuple(data.draw(st.integers(low + 1, g)) for low, g in zip(lo, grid, strict=True))
    sub_grid = tuple(h - low for low, h in zip(lo, hi, strict=True))
    source = Source(
        Tiling.for_grid(grid),
        build(io, grid, entries),
        offset=tuple(-low for low in lo),
        lo=lo,
        hi=hi,
    )
    expected = {
        tuple(i - low for i, low in zip(k, lo, strict=True)): v
        for k, v in entries.items()
        if all(low <= i < h for i, low, h in zip(k, lo, hi, strict=True))
    }
    assert assemble(io, Tiling.for_grid(sub_grid), [source]) == build(io, sub_grid, expected)


def test_updates_override_and_delete() -> None:
    io = NodeIO(MemoryBlockstore())
    grid = (10, 10)
    tiling = Tiling.for_grid(grid)
    entries = {i: chunk(i) for i in np.ndindex(*grid)}
    base = build(io, grid, entries)
    changed = assemble(io, tiling, [Source(tiling, base)], {(1, 1): chunk((9,)), (2, 2): None})
    expected = dict(entries)
    expected[(1, 1)] = chunk((9,))
    del expected[(2, 2)]
    assert changed == build(io, grid, expected)
    everything_deleted = dict.fromkeys(entries)
    assert assemble(io, tiling, [Source(tiling, base)], everything_deleted) is None


def test_conflicting_partials_name_the_chunk_and_both_cids() -> None:
    io = NodeIO(MemoryBlockstore())
    grid = (6, 4)
    tiling = Tiling.for_grid(grid)
    a = build(io, grid, {(2, 3): chunk((2, 3))})
    b = build(io, grid, {(2, 3): chunk((2, 3), "other")})
    with pytest.raises(MergeConflictError, match=r"chunk \(2, 3\)") as info:
        assemble(
            io,
            tiling,
            [Source(tiling, a, label="task 1"), Source(tiling, b, label="task 2")],
            what="array 'temperature'",
        )
    message = str(info.value)
    assert "temperature" in message
    assert "task 1" in message
    assert "task 2" in message
    from ipldwrite.ipld import link_str

    assert link_str(chunk((2, 3))) in message
    assert link_str(chunk((2, 3), "other")) in message


@pytest.mark.parametrize("shift", [0, 3], ids=["aligned leaves", "shifted, cell by cell"])
def test_a_conflict_deep_in_a_large_manifest_names_its_global_chunk_index(shift: int) -> None:
    io = NodeIO(MemoryBlockstore())
    grid = (150, 80)  # 12,000 chunks: several leaves under one inner node
    tiling = Tiling.for_grid(grid)
    assert tiling.top >= 1
    at = (137, 77)
    a = build(io, grid, {(0, 0): chunk((0, 0)), at: chunk(at)})
    b = build(io, grid, {(1, 1): chunk((1, 1)), at: chunk(at)})  # agrees with a
    c = build(io, grid, {(2, 2): chunk((2, 2)), at: chunk(at, "other")})
    # With a shift, c is placed ``shift`` rows down, so its nodes are no longer aligned.
    target = Tiling.for_grid((grid[0] + shift, grid[1]))
    c_at = (at[0] + shift, at[1])
    sources = [
        Source(tiling, a, offset=(shift, 0), label="task a"),
        Source(tiling, b, offset=(shift, 0), label="task b"),
        Source(tiling, c, offset=(shift, 0), label="task c"),
    ]
    with pytest.raises(MergeConflictError, match=rf"chunk \({c_at[0]}, {c_at[1]}\) differs"):
        assemble(io, target, sources)
    merged = assemble(io, target, sources[:2])
    assert merged is not None
    assert lookup(io, target, merged, c_at) == chunk(at)
    assert lookup(io, target, merged, (1 + shift, 1)) == chunk((1, 1))


def test_identical_retries_merge_silently() -> None:
    io = NodeIO(MemoryBlockstore())
    grid = (8, 8)
    tiling = Tiling.for_grid(grid)
    part = build(io, grid, {(0, 0): chunk((0, 0)), (7, 7): chunk((7, 7))})
    assert assemble(io, tiling, [Source(tiling, part)] * 3) == part


def test_merging_tile_aligned_partials_reuses_every_leaf() -> None:
    io = NodeIO(MemoryBlockstore())
    grid = (64, 10, 20)  # leaves are (8, 16, 32)-shaped... clipped to (8, 10, 20)
    tiling = Tiling.for_grid(grid)
    rows = tiling.tiles[0][0]
    parts = []
    for start in range(0, grid[0], rows):
        entries = {i: chunk(i) for i in np.ndindex(*grid) if start <= i[0] < start + rows}
        parts.append(build(io, grid, entries))
    writes_before = io.writes
    merged = assemble(io, tiling, [Source(tiling, p) for p in parts])
    assert io.writes - writes_before == 1  # only the root: every leaf is reused by link
    assert merged == build(io, grid, {i: chunk(i) for i in np.ndindex(*grid)})


def test_append_along_dim0_writes_a_path_not_the_manifest() -> None:
    io = NodeIO(MemoryBlockstore())
    grid = (100_000, 1, 1)
    entries = {(t, 0, 0): chunk((t,)) for t in range(grid[0])}
    base = build(io, grid, entries)
    bigger = (grid[0] + 1, 1, 1)
    before = io.writes
    appended = assemble(
        io,
        Tiling.for_grid(bigger),
        [Source(Tiling.for_grid(grid), base)],
        {(grid[0], 0, 0): chunk((grid[0],))},
    )
    assert io.writes - before <= len(Tiling.for_grid(bigger).tiles)
    assert lookup(io, Tiling.for_grid(bigger), appended, (grid[0], 0, 0)) == chunk((grid[0],))


@pytest.mark.parametrize(
    "grid", [(10**9,), (31_623, 31_623), (100_000, 100, 100), (1000, 1000, 1000), (10,) * 9]
)
def test_a_billion_chunks_need_at_most_four_levels(grid: Index) -> None:
    tiling = Tiling.for_grid(grid)
    assert prod(grid) >= 10**9
    assert len(tiling.tiles) <= 4
    assert all(prod(t) <= 4096 for t in tiling.tiles[:1])
