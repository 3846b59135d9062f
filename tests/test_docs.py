"""Code in the README and the docs is executed, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in DOCS:
        for n, match in enumerate(FENCE.finditer(doc.read_text())):
            blocks.append((f"{doc.name}#{n}", match.group(1)))
    return blocks


@pytest.mark.parametrize(("where", "code"), python_blocks(), ids=[w for w, _ in python_blocks()])
def test_python_examples_run(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPLDWRITE_BLOCKSTORE", str(tmp_path / "default-blocks"))
    exec(compile(code, where, "exec"), {"__name__": "__doc_example__"})


NODE_FENCE = re.compile(r"^```python node\n(.*?)^```", re.MULTILINE | re.DOTALL)
NODE_BLOCKS = [
    (f"{doc.name}#node{n}", m.group(1))
    for doc in DOCS
    for n, m in enumerate(NODE_FENCE.finditer(doc.read_text()))
]


@pytest.mark.parametrize(("where", "code"), NODE_BLOCKS, ids=[w for w, _ in NODE_BLOCKS])
def test_node_examples_run(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ipfs_node: Any
) -> None:
    """Examples fenced ```python node``` need an IPFS node: the test fixture's, on its port."""
    monkeypatch.chdir(tmp_path)
    code = code.replace("http://127.0.0.1:5001", ipfs_node.api)
    exec(compile(code, where, "exec"), {"__name__": "__doc_example__"})


def test_readme_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("bash scripts/bootstrap.sh", ".venv/bin/python -m pytest"):
        assert command in readme
        assert command in ci
    assert ".venv/bin/ipldwrite demo" in readme
