"""Fixed, deterministic tile shapes over a chunk grid (docs/spec.md, "The chunk manifest").

A manifest is a tree whose nodes cover hyper-rectangular tiles of the chunk grid. Tile sides
are powers of two and are given to the *last* dimensions first, so:

* tiles depend only on the grid shape, never on history (canonical roots);
* growth along dimension 0 — the record dimension of NetCDF and of almost every climate
  archive — never re-tiles existing nodes unless the whole level fits in one node: an append
  adds new tiles and rewrites one path;
* a leaf holds at most 4096 chunk links (~170 KiB) and an inner node at most 4096 children,
  so 10^9 chunks need three levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Final

from ipldwrite.dag._lru import LRU

LEAF_BITS: Final = 12
NODE_BITS: Final = 12


def _ceil_log2(n: int) -> int:
    return (n - 1).bit_length() if n > 1 else 0


def _allocate(need: tuple[int, ...], budget: int) -> tuple[int, ...]:
    """Give ``budget`` doubling steps to dimensions from the last to the first."""
    bits = [0] * len(need)
    remaining = budget
    for dim in reversed(range(len(need))):
        bits[dim] = min(need[dim], remaining)
        remaining -= bits[dim]
    return tuple(bits)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Tiling:
    """The tile shape, in chunks, of the nodes at each level; ``tiles[0]`` is the leaf tile
    and ``tiles[-1]`` the root's, which covers the whole grid."""

    grid: tuple[int, ...]
    tiles: tuple[tuple[int, ...], ...]

    @staticmethod
    def for_grid(grid: tuple[int, ...]) -> Tiling:
        return _BY_GRID.get_or_make(tuple(grid), _tiling_for_grid)

    @property
    def ndim(self) -> int:
        return len(self.grid)

    @property
    def top(self) -> int:
        return len(self.tiles) - 1

    @property
    def empty(self) -> bool:
        return any(g == 0 for g in self.grid)

    def extent(self, level: int, origin: tuple[int, ...]) -> tuple[int, ...]:
        """Number of cells (level 0) or children (level > 0) of the node at ``origin``."""
        tile = self.tiles[level]
        clipped = [min(t, g - o) for t, g, o in zip(tile, self.grid, origin, strict=True)]
        if level == 0:
            return tuple(clipped)
        child = self.tiles[level - 1]
        return tuple(_ceil_div(c, t) for c, t in zip(clipped, child, strict=True))

    def node_length(self, level: int, origin: tuple[int, ...]) -> int:
        return prod(self.extent(level, origin))

    def compatible_levels(self, other: Tiling) -> int:
        """How many levels from the leaves up have identical tile shapes in both tilings."""
        n = 0
        for a, b in zip(self.tiles, other.tiles, strict=False):
            if a != b:
                break
            n += 1
        return n

    def to_ipld(self) -> list[list[int]]:
        return [list(t) for t in self.tiles]


#: Tilings by grid shape. Every array node computes its tiling, and a merge or a write task
#: loads thousands of nodes of a few shapes; the tiling is a pure function of the shape, so
#: one bounded map per process serves them all (no store owns a value this plain).
_BY_GRID: LRU[tuple[int, ...], Tiling] = LRU(1024)


def _tiling_for_grid(grid: tuple[int, ...]) -> Tiling:
    if any(g == 0 for g in grid):
        return Tiling(grid, ((1,) * len(grid),))
    bits = _allocate(tuple(_ceil_log2(g) for g in grid), LEAF_BITS)
    tile = tuple(1 << b for b in bits)
    tiles = [tile]
    while any(_ceil_div(g, t) > 1 for g, t in zip(grid, tile, strict=True)):
        level_grid = tuple(_ceil_div(g, t) for g, t in zip(grid, tile, strict=True))
        bits = _allocate(tuple(_ceil_log2(g) for g in level_grid), NODE_BITS)
        tile = tuple(t << b for t, b in zip(tile, bits, strict=True))
        tiles.append(tile)
    return Tiling(grid, tuple(tiles))
