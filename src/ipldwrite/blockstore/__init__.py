"""Where blocks live: one small contract (get / put / has / size) and thin backends.

The IPFS backends (:class:`KuboBlockstore`, :class:`GatewayBlockstore`) need the ``ipfs``
extra (an HTTP client) and are imported on first use.
"""

from typing import TYPE_CHECKING, Any

from ipldwrite.blockstore._base import (
    DEFAULT_MAX_BLOCK_SIZE,
    HARD_MAX_BLOCK_SIZE,
    MIN_MAX_BLOCK_SIZE,
    BlockData,
    BlockGetter,
    BlockPutter,
    Blockstore,
    DagImporter,
    check_block_limit,
)
from ipldwrite.blockstore._cache import DEFAULT_CACHE_BYTES, BlockCache
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

if TYPE_CHECKING:
    from ipldwrite.blockstore._gateway import GatewayBlockstore
    from ipldwrite.blockstore._kubo import KuboBlockstore

__all__ = [
    "DEFAULT_BLOCKSTORE_PATH",
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_MAX_BLOCK_SIZE",
    "HARD_MAX_BLOCK_SIZE",
    "MIN_MAX_BLOCK_SIZE",
    "BlockCache",
    "BlockData",
    "BlockGetter",
    "BlockPutter",
    "Blockstore",
    "BlockstoreSpec",
    "CarBlockstore",
    "CarSetBlockstore",
    "CountingBlockstore",
    "DagImporter",
    "DirectoryBlockstore",
    "GatewayBlockstore",
    "KuboBlockstore",
    "MemoryBlockstore",
    "ObjectStoreBlockstore",
    "TaskBuffer",
    "TaskCarBlockstore",
    "check_block_limit",
    "default_blockstore",
    "register_scheme",
    "resolve_blockstore",
]


def __getattr__(name: str) -> Any:
    if name == "KuboBlockstore":
        from ipldwrite.blockstore._kubo import KuboBlockstore

        return KuboBlockstore
    if name == "GatewayBlockstore":
        from ipldwrite.blockstore._gateway import GatewayBlockstore

        return GatewayBlockstore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
