"""The zarr v3 store over zarr-on-IPLD datasets."""

from ipldwrite.store._partial import write_region
from ipldwrite.store._store import IPLDStore, default_blockstore, resolve_blockstore

__all__ = ["IPLDStore", "default_blockstore", "resolve_blockstore", "write_region"]
