"""The zarr v3 store over zarr-on-IPLD datasets."""

from ipldwrite.store._partial import partials_base, write_region
from ipldwrite.store._rechunk import auto_chunks, is_auto_chunked, rechunk_to_auto
from ipldwrite.store._store import IPLDStore, default_blockstore, resolve_blockstore

__all__ = [
    "IPLDStore",
    "auto_chunks",
    "default_blockstore",
    "is_auto_chunked",
    "partials_base",
    "rechunk_to_auto",
    "resolve_blockstore",
    "write_region",
]
