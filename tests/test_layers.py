"""The layers: imports point down, and no backend special cases above the blockstore layer.

pyproject.toml's import-linter ``layers`` contract is the one statement of the import order;
docs/architecture.md draws it, and the tests below hold the code and the drawing to it.

Code outside ``blockstore/`` talks to the contract (``Blockstore``, its per-task and
per-write hooks, ``resolve_blockstore``): it never branches on a backend's type. The layers
that integrate with others (the writer, the zarr store, ops, the CLI) never name one at
all; only ``car/`` builds the CAR readers it works with.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from importlinter import api as importlinter
from importlinter.cli import lint_imports

import ipldwrite
import ipldwrite.blockstore as blockstore_package
from ipldwrite.blockstore import Blockstore

PACKAGE = Path(ipldwrite.__file__).parent
REPO = PACKAGE.parent.parent
PYPROJECT = REPO / "pyproject.toml"
ARCHITECTURE = REPO / "docs" / "architecture.md"
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


#: May construct backends (the CAR layer reads CAR files), never branch on their type.
BUILDS_BACKENDS = ("car",)


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


def _type_checked(tree: ast.AST) -> set[str]:
    """Names used in ``isinstance``/``issubclass`` checks (and ``type(x) is …``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
        ):
            names |= _named(node.args[1])
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Is | ast.IsNot) for op in node.ops
        ):
            names |= _named(node)
    return names


def test_modules_above_the_blockstore_layer_name_no_backend() -> None:
    backends = _backends()
    assert {"TaskCarBlockstore", "ObjectStoreBlockstore", "DirectoryBlockstore"} <= backends
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "blockstore") or path in EXEMPT:
            continue
        tree = ast.parse(path.read_text(), str(path))
        builds = path.relative_to(PACKAGE).parts[0] in BUILDS_BACKENDS
        named = (_type_checked(tree) if builds else _named(tree)) & backends
        if named:
            offenders[str(path.relative_to(PACKAGE))] = sorted(named)
    assert offenders == {}


def _instance_attributes(cls: type) -> set[str]:
    """Names a class's own methods assign on ``self`` (``self.x = …``, ``self.x: T = …``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.add(target.attr)
    return names


def test_backends_never_shadow_the_contracts_methods() -> None:
    """A backend's instance attribute named like a contract method hides that method for
    every caller (an obstore client stored as ``self._store`` once replaced
    ``Blockstore._store``, and every put failed with "'S3Store' object is not callable")."""
    methods = {name for name, value in vars(Blockstore).items() if callable(value)}
    clashes = {}
    for name in sorted(_backends()):
        cls = getattr(blockstore_package, name)
        for klass in cls.__mro__:
            if klass is Blockstore or not issubclass(klass, Blockstore):
                continue
            if found := _instance_attributes(klass) & methods:
                clashes[klass.__name__] = sorted(found)
    assert clashes == {}


def _contract_layers() -> list[list[str]]:
    """The contract's layers, top first, each the sorted module names sharing it."""
    (contract,) = importlinter.read_configuration(str(PYPROJECT))["contracts_options"]
    assert contract["type"] == "layers"
    return [
        sorted(name.strip().removeprefix("ipldwrite.") for name in re.split(r"[|:]", layer))
        for layer in contract["layers"]
    ]


def _drawn_layers() -> list[list[str]]:
    """The boxes of docs/architecture.md's layer drawing, top first: in each box, the module
    named at the start of a row (rows that start blank continue the row above)."""
    text = ARCHITECTURE.read_text()
    drawing = text[text.index("## The layers") :].split("```")[1]
    boxes: list[list[str]] = [[]]
    for row in drawing.strip().splitlines():
        line = row.strip()
        if line.startswith("├"):
            boxes.append([])
        elif line.startswith("│ ") and line[2] != " ":
            boxes[-1].append(line[2:].split(maxsplit=1)[0])
    return [sorted(box) for box in boxes]


def test_imports_point_down_the_layers(capsys: pytest.CaptureFixture[str]) -> None:
    """Any upward import (or one between siblings), at module level or inside a function,
    breaks the contract; the linter's report names the importing line."""
    status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert status == 0, capsys.readouterr().out


def test_the_contract_covers_every_module_of_the_package() -> None:
    """A new top-level module must be placed in a layer, or the contract would not see it."""
    modules = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert sorted(modules) == sorted(m for layer in _contract_layers() for m in layer)


def test_the_architecture_drawing_matches_the_contract() -> None:
    assert _drawn_layers() == _contract_layers()


#: The blockstore contract's backend hooks: wrappers (counting, task buffers, readers)
#: call their inner blockstore's, as subclasses do; they are the contract, not internals.
BACKEND_HOOKS = {"_get", "_put", "_has", "_size", "_replace"}


def test_no_private_attribute_is_read_across_classes() -> None:
    """``x._name`` only on ``self``/``cls``, on another instance of the same class in
    ``__eq__``/copies (``other``, ``clone``), as a backend hook, or in the adapters of
    ``ipldwrite._compat`` (the one place third-party internals are reached)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "_compat"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls", "other", "clone"):
                continue
            if node.attr in BACKEND_HOOKS:
                continue
            offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []
