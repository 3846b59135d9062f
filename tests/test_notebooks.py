"""The notebooks in notebooks/ run from top to bottom, in a fresh kernel, without an error.

The kernel is this interpreter (``sys.executable -m ipykernel_launcher``) through a kernelspec
written to a temporary directory, so nothing has to be registered on the machine and a
"python3" kernel of another environment cannot be picked up by mistake. Warnings inside the
notebooks do not fail the test (they run in the kernel, not under pytest's filters); errors do.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

pytestmark = pytest.mark.slow

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Per cell; all notebooks together take well under two minutes.
CELL_TIMEOUT = 240


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """Two kernelspecs for this interpreter: as it is, and without ``node`` on the PATH."""
    root = tmp_path_factory.mktemp("kernels")
    no_tools = tmp_path_factory.mktemp("empty-path")
    # Figures are drawn off-screen: no display, no inline backend.
    for name, env in [
        ("ipldwrite", {"MPLBACKEND": "Agg"}),
        ("ipldwrite-no-node", {"MPLBACKEND": "Agg", "PATH": str(no_tools)}),
    ]:
        (root / name).mkdir()
        (root / name / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": name,
                    "language": "python",
                    "env": env,
                }
            )
        )
    return KernelSpecManager(kernel_dirs=[str(root)])


def run_notebook(path: Path, kernels: KernelSpecManager, kernel: str = "ipldwrite") -> float:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=AsyncKernelManager(kernel_name=kernel, kernel_spec_manager=kernels),
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    # Raises CellExecutionError, naming the cell and its traceback, on any error; shuts the
    # kernel down and closes its channels either way (we made the kernel manager, so nbclient
    # would otherwise leave both to us).
    client.execute(cleanup_kc=True)
    return time.perf_counter() - start


def test_the_three_notebooks() -> None:
    assert [nb.name for nb in NOTEBOOKS] == [
        "01-ingest-climate-archive.ipynb",
        "02-join-without-copying.ipynb",
        "03-ipfs-interop.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: clear the outputs before committing"
            assert cell.execution_count is None, f"{path.name}: clear the execution counts"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs(path: Path, kernels: KernelSpecManager) -> None:
    # Notebook 01 reads ../shared/data when it is there and says it skips that part when not.
    seconds = run_notebook(path, kernels)
    print(f"{path.name}: {seconds:.1f} s")


@pytest.mark.timeout(600)
def test_ipfs_notebook_without_node(kernels: KernelSpecManager) -> None:
    """Where Node.js is missing, notebook 03 unpacks the UnixFS tree in Python instead."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: test_notebook_runs already took this path")
    run_notebook(NOTEBOOK_DIR / "03-ipfs-interop.ipynb", kernels, kernel="ipldwrite-no-node")
