"""Code in the README and the docs runs as pasted, so it cannot rot.

How each fenced block is checked (README.md and docs/*.md):

* ```` ```python ```` blocks are saved as a script and run with this interpreter in a fresh
  process, in an empty temporary working directory, with ``IPLDWRITE_BLOCKSTORE`` pointing
  into it: what a user gets when pasting the block into ``example.py`` and running it. So a
  block that starts worker processes (``LocalCluster``) needs an
  ``if __name__ == "__main__":`` guard, as it would in a user's script.
* ```` ```bash ```` blocks without placeholders run with ``bash -e`` in such a directory, with
  this environment's ``bin/`` first on ``PATH`` (and ``.venv`` linked there, for commands
  spelled ``.venv/bin/ipldwrite``).
* ```` ```bash ```` blocks with ``<placeholders>`` (``ipldwrite ls <cid>``) are reference
  listings: every line starting with ``ipldwrite`` is parsed by the real command line
  (command names, options, argument counts), with the placeholders filled in; nothing runs.
  Lines of other tools (``ipfs``, ``npx``) are not checked.

Blocks that need something the test cannot provide say so in an HTML comment on the line
just above the opening fence (invisible on the rendered page):

* ``<!-- not-run: needs a Kubo daemon -->``: never run; reported as skipped with the reason.
* ``<!-- needs-env: IPLDWRITE_TEST_IPFS_API -->`` (names separated by spaces): run only when
  every variable is set, with them in the block's environment (a fixture or CI that starts
  the service exports them); skipped with their names otherwise.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from ipldwrite.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:^<!--\s*(?P<marker>not-run|needs-env):\s*(?P<arg>.*?)\s*-->\n)?^```(?P<lang>\w*)\n(?P<code>.*?)^```",
    re.MULTILINE | re.DOTALL,
)
PLACEHOLDER = re.compile(r"<[^<>\s]+>")
#: Per block; the slowest (a process cluster writing twice) takes well under a minute.
BLOCK_TIMEOUT = 240


@dataclass(frozen=True)
class Block:
    where: str
    lang: str
    code: str
    marker: str | None
    arg: str


def blocks(*langs: str) -> list[Block]:
    out = []
    for doc in DOCS:
        for n, m in enumerate(FENCE.finditer(doc.read_text())):
            if m["lang"] in langs:
                out.append(Block(f"{doc.name}#{n}", m["lang"], m["code"], m["marker"], m["arg"]))
    return out


def environment(block: Block, tmp_path: Path) -> dict[str, str]:
    """The block's environment, or skip: markers first, then a clean default blockstore."""
    if block.marker == "not-run":
        pytest.skip(f"{block.where}: not run ({block.arg})")
    env = {**os.environ, "IPLDWRITE_BLOCKSTORE": str(tmp_path / "default-blocks")}
    if block.marker == "needs-env":
        missing = [name for name in block.arg.split() if not os.environ.get(name)]
        if missing:
            pytest.skip(f"{block.where}: needs {', '.join(missing)} in the environment")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(argv: list[str], block: Block, tmp_path: Path) -> None:
    done = subprocess.run(
        argv,
        cwd=tmp_path,
        env=environment(block, tmp_path),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"{block.where} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )


PYTHON = blocks("python")
SCRIPTS = [b for b in blocks("bash") if not PLACEHOLDER.search(b.code)]
LISTINGS = [b for b in blocks("bash") if PLACEHOLDER.search(b.code)]


@pytest.mark.slow
@pytest.mark.timeout(BLOCK_TIMEOUT + 60)
@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_blocks_run_as_scripts(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code)
    run([sys.executable, str(script)], block, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(BLOCK_TIMEOUT + 60)
@pytest.mark.parametrize("block", SCRIPTS, ids=[b.where for b in SCRIPTS])
def test_bash_blocks_run(block: Block, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    run(["bash", "-e", "-c", block.code], block, tmp_path)


def ipldwrite_lines(block: Block) -> list[list[str]]:
    """The ``ipldwrite …`` command lines of a listing, placeholders filled with a CID."""
    cid = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    lines = []
    for line in block.code.splitlines():
        words = shlex.split(PLACEHOLDER.sub(cid, line), comments=True)
        if words and words[0] in ("ipldwrite", ".venv/bin/ipldwrite"):
            lines.append(words[1:])
    return lines


@pytest.mark.parametrize("block", LISTINGS, ids=[b.where for b in LISTINGS])
def test_command_listings_parse(block: Block) -> None:
    if block.marker == "not-run":
        pytest.skip(f"{block.where}: not run ({block.arg})")
    for args in ipldwrite_lines(block):
        with main.make_context("ipldwrite", list(args)) as ctx:
            name, cmd, rest = main.resolve_command(ctx, ctx._protected_args + ctx.args)
            assert cmd is not None, f"{block.where}: no command {name!r}"
            try:
                cmd.make_context(name or "", rest, parent=ctx)
            except click.BadParameter as exc:
                # Files the listing names do not exist here; everything else must parse.
                missing = isinstance(exc, click.MissingParameter)
                if missing or not isinstance(exc.param and exc.param.type, click.Path):
                    raise AssertionError(f"{block.where}: {' '.join(args)}: {exc}") from exc
            except click.UsageError as exc:
                raise AssertionError(f"{block.where}: {' '.join(args)}: {exc}") from exc


def test_runnable_blocks_say_python_or_bash() -> None:
    """Code fenced as ``sh`` or ``py`` would escape the checks above."""
    for doc in DOCS:
        for m in FENCE.finditer(doc.read_text()):
            assert m["lang"] not in ("sh", "shell", "console", "py", "pycon", "python3"), (
                f"{doc.name}: fence it as ```bash or ```python, so the tests run it"
            )


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
