"""No backend special cases above the blockstore layer: code outside ``blockstore/`` talks
to the contract (``Blockstore``, its per-task and per-write hooks, ``resolve_blockstore``)
and never names a concrete backend."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import ipldwrite
import ipldwrite.blockstore as blockstore_package
from ipldwrite.blockstore import Blockstore

PACKAGE = Path(ipldwrite.__file__).parent
#: The package's front door re-exports the common backends for users; it runs no logic.
EXEMPT = {PACKAGE / "__init__.py"}


def _backends() -> set[str]:
    return {
        name
        for name in blockstore_package.__all__
        if inspect.isclass(obj := getattr(blockstore_package, name))
        and issubclass(obj, Blockstore)
        and obj is not Blockstore
    }


def _named(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.name for alias in node.names)
    return names


def test_modules_above_the_blockstore_layer_name_no_backend() -> None:
    backends = _backends()
    assert {"TaskCarBlockstore", "ObjectStoreBlockstore", "DirectoryBlockstore"} <= backends
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "blockstore") or path in EXEMPT:
            continue
        named = _named(ast.parse(path.read_text(), str(path))) & backends
        if named:
            offenders[str(path.relative_to(PACKAGE))] = sorted(named)
    assert offenders == {}
