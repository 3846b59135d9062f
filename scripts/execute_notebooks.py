#!/usr/bin/env python
"""Execute the notebooks in place, so that they are committed with their outputs and plots.

    .venv/bin/python scripts/execute_notebooks.py                    # every notebook
    .venv/bin/python scripts/execute_notebooks.py notebooks/02-*.ipynb

Run it from a checkout with ``../shared/data`` beside it and ``js/node_modules`` installed
(``scripts/bootstrap.sh``), so that no section of a notebook takes its fallback path.

Deterministic: the kernel is this interpreter (through a kernelspec in a temporary
directory, nothing registered on the machine), figures are PNGs from the inline backend, no
execution timings are recorded, widget outputs (progress bars) are dropped and the kernel
metadata is fixed. tests/test_notebooks.py executes the notebooks the same way and compares
the outputs with :func:`comparable`, which masks what may differ between two runs (temporary
paths, memory addresses, durations, ports, Dask tokens, image bytes) and nothing else: root
CIDs must match.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
#: Per cell; every notebook takes a minute or two on a busy two-core machine.
CELL_TIMEOUT = 300
#: Figures as inline PNGs, whatever the user's matplotlib configuration says.
KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
WIDGET = "application/vnd.jupyter.widget-view+json"

#: (pattern, replacement): what may differ between two executions of the same code.
VOLATILE = [
    (re.compile(r"/\S*?ipldwrite-0\d-[A-Za-z0-9_]+"), "<tmp>"),  # TemporaryDirectory names
    (re.compile(r"0x[0-9a-f]{6,16}"), "0x…"),  # memory addresses in reprs
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<token>"),  # Dask graph names
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(s|ms|µs|seconds|minutes)\b"), "<duration>"),
]


def kernels(directory: Path, **extra_env: str) -> KernelSpecManager:
    """A kernelspec "ipldwrite" for this interpreter, in ``directory``."""
    spec = directory / "ipldwrite"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "ipldwrite",
                "language": "python",
                "env": {**KERNEL_ENV, **extra_env},
            }
        )
    )
    return KernelSpecManager(kernel_dirs=[str(directory)])


def execute(path: Path, spec_manager: KernelSpecManager) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed top to bottom in a fresh kernel, in notebooks/.

    Raises ``CellExecutionError`` (naming the cell, with its traceback) on any error.
    """
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=AsyncKernelManager(kernel_name="ipldwrite", kernel_spec_manager=spec_manager),
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # Shuts the kernel down and closes its channels either way (we made the kernel manager).
    client.execute(cleanup_kc=True)
    return clean(nb)


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what must not be committed: widget views (progress bars), widget state, the
    execution metadata; join the pieces of a stream (how a print is cut into messages
    depends on timing); name the standard kernel."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs: list[Any] = []
        for out in cell.outputs:
            if WIDGET in out.get("data", {}):
                continue
            last = outputs[-1] if outputs else None
            if out.output_type == "stream" and last and last.get("name") == out.name:
                last.text += out.text
            else:
                outputs.append(out)
        cell.outputs = outputs
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}  # not the version of whoever ran it
    return nb


def _mask(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def comparable(nb: nbformat.NotebookNode) -> list[list[Any]]:
    """Per code cell, its outputs with the volatile parts masked: equal for two runs.

    stderr is left out (warnings and log lines depend on the machine), and images count by
    type only (PNG bytes depend on the fonts installed).
    """
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs: list[Any] = []
        for out in cell.outputs:
            if out.output_type == "stream":
                if out.name == "stdout":
                    outputs.append(("stdout", _mask(out.text)))
            elif out.output_type in ("display_data", "execute_result"):
                data = out.get("data", {})
                outputs.append(
                    sorted(
                        (mime, "<image>" if mime.startswith("image/") else _mask(str(value)))
                        for mime, value in data.items()
                    )
                )
            elif out.output_type == "error":
                outputs.append(("error", out.ename, out.evalue))
        cells.append(outputs)
    return cells


def main(paths: list[str]) -> int:
    notebooks = [Path(p).resolve() for p in paths] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        manager = kernels(Path(tmp))
        for path in notebooks:
            print(f"executing {path.relative_to(ROOT)} …", flush=True)
            nb = execute(path, manager)
            nbformat.validate(nb)
            nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
