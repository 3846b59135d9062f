"""The adapters around xarray's and zarr's internals (``ipldwrite._compat``).

Their version guards refuse an unsupported version with the supported range, pyproject and
the noxfile state the same range, and no module outside the adapters imports a private
xarray or zarr name.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import dask.array
import pytest
import xarray as xr
import zarr
from zarr.storage import MemoryStore

import ipldwrite
from ipldwrite._compat import require_version
from ipldwrite._compat.xarray_api import XARRAY_BELOW, XARRAY_MINIMUM
from ipldwrite._compat.zarr_api import ZARR_BELOW, ZARR_MINIMUM, ZARR_VERSION, task_pipeline
from ipldwrite.blockstore import MemoryBlockstore
from ipldwrite.dag import render_zarr_json
from ipldwrite.errors import ChunkAlignmentError, UnsupportedVersionError
from ipldwrite.xarray import to_ipld_zarr

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(ipldwrite.__file__).parent
ADAPTERS = PACKAGE / "_compat"
RANGES = {"xarray": (XARRAY_MINIMUM, XARRAY_BELOW), "zarr": (ZARR_MINIMUM, ZARR_BELOW)}


@pytest.mark.parametrize("installed", ["3.1.6", "4.0.0"])
def test_require_version_refuses_outside_the_range_and_names_it(installed: str) -> None:
    with pytest.raises(UnsupportedVersionError) as caught:
        require_version("zarr", installed, "3.2.0", "4")
    assert str(caught.value).startswith(f"ipldwrite supports zarr >=3.2.0,<4; zarr {installed} is")
    assert "pip install 'zarr>=3.2.0,<4'" in str(caught.value)
    assert (caught.value.library, caught.value.installed) == ("zarr", installed)
    assert isinstance(caught.value, ImportError)


def test_require_version_accepts_both_ends() -> None:
    assert str(require_version("zarr", "3.2.0", "3.2.0", "4")) == "3.2.0"
    assert str(require_version("zarr", "3.99", "3.2.0", "4")) == "3.99"


@pytest.mark.parametrize(
    ("library", "installed"), [("zarr", "3.1.6"), ("xarray", "2025.4.0"), ("xarray", "2027.1.0")]
)
def test_import_refuses_an_unsupported_version(library: str, installed: str) -> None:
    """The guard runs at ``import ipldwrite``: the library's version is patched first."""
    code = f"import {library}; {library}.__version__ = {installed!r}; import ipldwrite"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    minimum, below = RANGES[library]
    expected = f"UnsupportedVersionError: ipldwrite supports {library} >={minimum},<{below}; "
    assert expected + f"{library} {installed} is installed" in result.stderr


def _requirement(requirements: list[str], name: str) -> str:
    (found,) = [r for r in requirements if re.match(rf"{name}\b", r)]
    return found


def test_pyproject_and_noxfile_state_the_adapters_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    noxfile = (ROOT / "noxfile.py").read_text()
    for library, (minimum, below) in RANGES.items():
        short = minimum.removesuffix(".0")
        assert _requirement(project["dependencies"], library) == f"{library}>={short},<{below}"
        assert f'"{library}=={minimum}"' in noxfile


#: Modules of xarray and zarr that are private, with all below them.
PRIVATE_MODULES = ("zarr.core", "xarray.core", "xarray.coding", "xarray.namedarray")
#: Packages whose own namespace is public but whose submodules are not.
PUBLIC_PACKAGES_ONLY = ("xarray.backends",)


def _is_private(dotted: str) -> bool:
    if dotted.split(".", maxsplit=1)[0] not in ("xarray", "zarr"):
        return False
    if any(part.startswith("_") for part in dotted.split(".")):
        return True
    if any(dotted == m or dotted.startswith(m + ".") for m in PRIVATE_MODULES):
        return True
    return any(dotted.startswith(p + ".") for p in PUBLIC_PACKAGES_ONLY)


def _private_uses(tree: ast.AST) -> list[str]:
    aliases = {}  # local name -> module, for `import xarray as xr`
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[(alias.asname or alias.name).split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
                found += [alias.name] if _is_private(alias.name) else []
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                private = _is_private(node.module) or (
                    alias.name.startswith("_") and _is_private(dotted)
                )
                found += [dotted] if private else []
    for node in ast.walk(tree):  # attribute chains: zarr.core.x, xr.backends.api
        if isinstance(node, ast.Attribute):
            parts = [node.attr]
            inner: ast.expr = node.value
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                dotted = ".".join([aliases[inner.id], *reversed(parts)])
                found += [dotted] if _is_private(dotted) else []
    return found


def test_the_private_name_check_finds_what_it_should() -> None:
    source = (
        "import zarr\nimport xarray as xr\nfrom zarr.core.buffer import cpu\n"
        "from xarray.backends.writers import dump_to_store\nfrom xarray import _x\n"
        "from xarray.backends import BackendEntrypoint\nfrom zarr.buffer import cpu\n"
        "zarr.core.sync.sync\nxr.coding.times\nxr.Dataset\nzarr.storage.StorePath\n"
    )
    assert sorted(set(_private_uses(ast.parse(source)))) == [
        "xarray._x",
        "xarray.backends.writers.dump_to_store",
        "xarray.coding",
        "xarray.coding.times",
        "zarr.core",
        "zarr.core.buffer.cpu",
        "zarr.core.sync",
        "zarr.core.sync.sync",
    ]


def test_only_the_adapters_use_private_xarray_and_zarr_names() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(ADAPTERS):
            continue
        uses = _private_uses(ast.parse(path.read_text(), str(path)))
        if uses:
            offenders[str(path.relative_to(PACKAGE))] = sorted(set(uses))
    assert offenders == {}


def test_metadata_zarr_cannot_parse_is_served_as_plain_json() -> None:
    """The narrow fallback of render_zarr_json: zarr's parse errors only."""
    doc = {"node_type": "array", "zarr_format": 3, "data_type": "no-such-type", "shape": [1]}
    assert json.loads(render_zarr_json(doc)) == doc
    assert render_zarr_json(doc) == json.dumps(doc, indent=2, sort_keys=True).encode()


@pytest.mark.parametrize(
    ("dask_chunks", "encoding"),
    [((3, 3, 3, 3), {"v": {"chunks": (4,)}}), ((4, 2, 4, 2), {})],
    ids=["overlapping", "not uniform"],
)
def test_xarrays_refusals_of_dask_chunks_are_recognised(
    dask_chunks: tuple[int, ...], encoding: dict[str, dict[str, tuple[int, ...]]]
) -> None:
    """Both messages xarray raises a plain ValueError with become ChunkAlignmentError."""
    ds = xr.Dataset({"v": ("x", dask.array.zeros(12, chunks=(dask_chunks,)))})
    with pytest.raises(ChunkAlignmentError, match="align_chunks=True"):
        to_ipld_zarr(ds, MemoryBlockstore(), encoding=encoding)


def test_write_tasks_use_zarrs_fused_pipeline_where_there_is_one() -> None:
    array = zarr.create_array(MemoryStore(), shape=(4,), chunks=(2,), dtype="f4")
    pipeline = task_pipeline(array.metadata, 2)
    if ZARR_VERSION.release >= (3, 3):
        from zarr.core.codec_pipeline import FusedCodecPipeline

        assert isinstance(pipeline, FusedCodecPipeline)
    else:
        assert pipeline is None
