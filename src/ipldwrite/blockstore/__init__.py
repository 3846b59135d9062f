"""Where blocks live: one small contract (get / put / has) and thin backends."""

from ipldwrite.blockstore._base import (
    DEFAULT_MAX_BLOCK_SIZE,
    HARD_MAX_BLOCK_SIZE,
    MIN_MAX_BLOCK_SIZE,
    BlockGetter,
    BlockPutter,
    Blockstore,
    check_block_limit,
)
from ipldwrite.blockstore._car import CarBlockstore
from ipldwrite.blockstore._counting import CountingBlockstore
from ipldwrite.blockstore._directory import DirectoryBlockstore
from ipldwrite.blockstore._memory import MemoryBlockstore

__all__ = [
    "DEFAULT_MAX_BLOCK_SIZE",
    "HARD_MAX_BLOCK_SIZE",
    "MIN_MAX_BLOCK_SIZE",
    "BlockGetter",
    "BlockPutter",
    "Blockstore",
    "CarBlockstore",
    "CountingBlockstore",
    "DirectoryBlockstore",
    "MemoryBlockstore",
    "check_block_limit",
]
