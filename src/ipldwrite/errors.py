"""Every exception ipldwrite raises on purpose.

Messages name the CID, key or byte offset at fault and say what to do about it. Where a
builtin fits, classes also inherit it, so generic code (``except KeyError``) keeps working::

    IpldWriteError
    ├── InvalidCIDError            (ValueError)  a string or bytes that is not a CID we accept
    ├── CodecError                 (ValueError)  malformed or non-canonical DAG-CBOR / DAG-PB
    ├── BlockError
    │   ├── BlockNotFoundError     (LookupError) a block the DAG links to is not in the blockstore
    │   ├── CorruptBlockError      (ValueError)  a block's bytes do not hash to its CID
    │   └── BlockTooLargeError     (ValueError)  a block above the configured size limit
    ├── CarError                   (ValueError)  a CAR file that cannot be read
    │   └── TruncatedCarError                    the file ends inside a header or section
    ├── FormatError                (ValueError)  a DAG or key space that is not zarr-on-IPLD
    │   └── UnsafeEntryNameError                 a UnixFS entry name that could leave its
    │                                            directory ('/', NUL, '.', '..', empty)
    ├── ReadOnlyError              (PermissionError)
    ├── UnsafeBlockstoreError      (ValueError)  a blockstore that workers in other processes
    │                                            cannot reach
    ├── UnsupportedBlockstoreError (ValueError)  a blockstore URL no installed backend serves
    ├── UnsupportedVersionError    (ImportError) an installed xarray or zarr outside the range
    │                                            whose internals ipldwrite was checked against
    ├── RemoteError                (OSError)     an IPFS node or gateway answered with an error,
    │                                            or a CID other than ours, or not at all
    ├── ChunkAlignmentError        (ValueError)  Dask chunks that straddle zarr chunks
    ├── MergeConflictError         (ValueError)  two partial datasets disagree
    └── IncompatibleDatasetsError  (ValueError)  datasets that cannot be joined as asked

and one warning: TimestampedCodecWarning (UserWarning), a codec whose output depends on the
time of writing, so that the same data does not always get the same root CID.
"""

from __future__ import annotations

__all__ = [
    "BlockError",
    "BlockNotFoundError",
    "BlockTooLargeError",
    "CarError",
    "ChunkAlignmentError",
    "CodecError",
    "CorruptBlockError",
    "FormatError",
    "IncompatibleDatasetsError",
    "InvalidCIDError",
    "IpldWriteError",
    "MergeConflictError",
    "ReadOnlyError",
    "RemoteError",
    "TimestampedCodecWarning",
    "TruncatedCarError",
    "UnsafeBlockstoreError",
    "UnsafeEntryNameError",
    "UnsupportedBlockstoreError",
    "UnsupportedVersionError",
]


class IpldWriteError(Exception):
    """Base class of every error ipldwrite raises on purpose."""


class InvalidCIDError(IpldWriteError, ValueError):
    """A value that should be a CID is not one (or uses a code we do not support)."""


class CodecError(IpldWriteError, ValueError):
    """Bytes that are not strict, canonical DAG-CBOR (or DAG-PB) as the specs require."""


class BlockError(IpldWriteError):
    """A problem with one block; ``cid`` names it, and ``key`` the zarr key whose read
    needed it (when a zarr store read it)."""

    def __init__(self, message: str, cid: object = None, key: str | None = None) -> None:
        super().__init__(message)
        self.cid = cid
        self.key = key

    def __str__(self) -> str:
        return str(self.args[0])


class BlockNotFoundError(BlockError, LookupError):
    """The blockstore does not hold the block.

    Deliberately a LookupError and not a KeyError: zarr reads a KeyError from a store as
    "this key does not exist" and would silently serve the fill value for a chunk whose
    block is lost. A missing block is damage, never absence.
    """


class CorruptBlockError(BlockError, ValueError):
    """The block's bytes do not hash to its CID."""


class BlockTooLargeError(BlockError, ValueError):
    """The block is larger than the configured block size limit."""


class CarError(IpldWriteError, ValueError):
    """A CAR file that is not valid CARv1 or CARv2."""


class TruncatedCarError(CarError):
    """A CAR file that ends inside a header, index or block section."""


class FormatError(IpldWriteError, ValueError):
    """A DAG or a zarr key space that does not follow the zarr-on-IPLD format (docs/spec.md)."""


class UnsafeEntryNameError(FormatError):
    """A UnixFS directory entry whose name contains ``/`` or NUL, or is ``.``, ``..`` or empty.

    Unpacking such an entry could write outside the target directory; the error names the
    directory's CID and the name.
    """


class ReadOnlyError(IpldWriteError, PermissionError):
    """A write was attempted on something opened read-only."""


class UnsafeBlockstoreError(IpldWriteError, ValueError):
    """A blockstore that the Dask workers in use cannot share."""


class UnsupportedBlockstoreError(IpldWriteError, ValueError):
    """A blockstore URL whose scheme no installed backend serves (``url`` says which)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class UnsupportedVersionError(IpldWriteError, ImportError):
    """An installed ``library`` (at version ``installed``) outside the supported range: the
    private APIs ipldwrite uses (``ipldwrite._compat``) may differ there."""

    def __init__(self, message: str, *, library: str, installed: str) -> None:
        super().__init__(message)
        self.library = library
        self.installed = installed


class RemoteError(IpldWriteError, OSError):
    """An IPFS node or gateway failed a request (``url``; ``status`` when it answered)."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status

    def __str__(self) -> str:
        return str(self.args[0])


class ChunkAlignmentError(IpldWriteError, ValueError):
    """Dask chunks that would make two tasks write parts of the same zarr chunk."""


class MergeConflictError(IpldWriteError, ValueError):
    """Two datasets hold different content for the same path (group, array, attributes or
    chunk). ``path`` names it ("/" for the root group) and ``cids`` holds the differing
    CIDs (nodes, or chunks for a chunk conflict), when known."""

    def __init__(self, message: str, *, path: str | None = None, cids: tuple[object, ...] = ()):
        super().__init__(message)
        self.path = path
        self.cids = cids


class IncompatibleDatasetsError(IpldWriteError, ValueError):
    """Datasets that cannot be combined the way it was asked."""


class TimestampedCodecWarning(UserWarning):
    """A codec whose bytes depend on the time of writing (gzip's MTIME header field): the
    same data written at another time gets another root CID."""
