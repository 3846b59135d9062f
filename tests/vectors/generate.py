"""Write tests/vectors/expected.json: each vector's root CID and its arrays' grids and tiles.

Run once per deliberate format change; tests/test_vectors.py checks the code against it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import ArrayNode, DatasetReader
from ipldwrite.ipld import to_link
from ipldwrite.xarray import to_ipld_zarr
from vectors.datasets import VECTORS

EXPECTED = Path(__file__).with_name("expected.json")


def describe(name: str) -> dict[str, Any]:
    """What a vector gives: its root CID and, per array, the grid and tile shapes."""
    obj, encoding = VECTORS[name]()
    store = MemoryBlockstore()
    root = to_ipld_zarr(obj, store, encoding=encoding)
    arrays = {
        "/" + path: {"grid": list(node.tiling.grid), "tiles": node.tiling.to_ipld()}
        for path, node in DatasetReader(store, to_link(root)).walk()
        if isinstance(node, ArrayNode)
    }
    return {"root": str(root), "arrays": arrays}


if __name__ == "__main__":
    lines = []
    for name in VECTORS:
        d = describe(name)
        arrays = ",\n".join(
            f"      {json.dumps(path)}: {json.dumps(a)}" for path, a in d["arrays"].items()
        )
        lines.append(
            f'  "{name}": {{\n    "root": "{d["root"]}",\n    "arrays": {{\n{arrays}\n    }}\n  }}'
        )
    EXPECTED.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {EXPECTED}")
