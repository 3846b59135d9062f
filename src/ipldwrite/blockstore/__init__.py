"""Where blocks live: one small contract (get / put / has / size) and thin backends."""

from ipldwrite.blockstore._base import (
    DEFAULT_MAX_BLOCK_SIZE,
    HARD_MAX_BLOCK_SIZE,
    MIN_MAX_BLOCK_SIZE,
    BlockData,
    BlockGetter,
    BlockPutter,
    Blockstore,
    check_block_limit,
)
from ipldwrite.blockstore._car import CarBlockstore
from ipldwrite.blockstore._carset import CarSetBlockstore
from ipldwrite.blockstore._counting import CountingBlockstore
from ipldwrite.blockstore._directory import DirectoryBlockstore
from ipldwrite.blockstore._memory import MemoryBlockstore
from ipldwrite.blockstore._objectstore import ObjectStoreBlockstore
from ipldwrite.blockstore._resolve import (
    DEFAULT_BLOCKSTORE_PATH,
    BlockstoreSpec,
    default_blockstore,
    register_scheme,
    resolve_blockstore,
)
from ipldwrite.blockstore._taskcar import TaskBuffer, TaskCarBlockstore

__all__ = [
    "DEFAULT_BLOCKSTORE_PATH",
    "DEFAULT_MAX_BLOCK_SIZE",
    "HARD_MAX_BLOCK_SIZE",
    "MIN_MAX_BLOCK_SIZE",
    "BlockData",
    "BlockGetter",
    "BlockPutter",
    "Blockstore",
    "BlockstoreSpec",
    "CarBlockstore",
    "CarSetBlockstore",
    "CountingBlockstore",
    "DirectoryBlockstore",
    "MemoryBlockstore",
    "ObjectStoreBlockstore",
    "TaskBuffer",
    "TaskCarBlockstore",
    "check_block_limit",
    "default_blockstore",
    "register_scheme",
    "resolve_blockstore",
]
