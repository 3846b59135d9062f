"""Dataset algebra by CID: join, append and rearrange datasets by rewriting metadata nodes.

Every operation takes root CIDs and returns a new root CID; chunk data is linked, never read
or copied. See docs/spec.md for why the manifests make this cheap.
"""

from ipldwrite.ops._attrs import CombineAttrs
from ipldwrite.ops._concat import append, concat
from ipldwrite.ops._edit import assign_attrs, drop_vars, isel, merge, move, regroup, rename

__all__ = [
    "CombineAttrs",
    "append",
    "assign_attrs",
    "concat",
    "drop_vars",
    "isel",
    "merge",
    "move",
    "regroup",
    "rename",
]
