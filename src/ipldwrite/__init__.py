"""ipldwrite: write Zarr datasets as content-addressed IPLD graphs, in parallel, with Dask.

The everyday surface lives here; the layers underneath (``ipld``, ``blockstore``, ``dag``,
``store``) are importable for everything else.
"""

from importlib.metadata import PackageNotFoundError, version

from ipldwrite.blockstore import DirectoryBlockstore, MemoryBlockstore
from ipldwrite.ops._concat import use_dataset_writer
from ipldwrite.store import IPLDStore
from ipldwrite.xarray import open_ipld_datatree, open_ipld_zarr, to_ipld_zarr

# ops.append writes a Dataset with the xarray layer's writer, which ops (below it) cannot import.
use_dataset_writer(to_ipld_zarr)

try:
    __version__ = version("ipldwrite")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DirectoryBlockstore",
    "IPLDStore",
    "MemoryBlockstore",
    "__version__",
    "open_ipld_datatree",
    "open_ipld_zarr",
    "to_ipld_zarr",
]
