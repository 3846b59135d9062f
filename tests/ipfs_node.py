"""A real IPFS node (js-ipfs with Kubo's RPC API, from ../shared/ipfsnode/) for the tests.

Installed once into <repo>/.ipfsnode/js (reused between runs), started per session on free
loopback ports, stopped at the end. Skips, with the reason, when ../shared/ipfsnode, node
or npm is absent, or when the installation fails (the npm registry out of reach).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KIT = REPO.parent / "shared" / "ipfsnode"
CACHE = REPO / ".ipfsnode"


@dataclass(frozen=True)
class IpfsNode:
    api: str  # the RPC API, http://127.0.0.1:PORT
    gateway: str  # the node's own (non-trustless) gateway
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ipfs_node() -> Iterator[IpfsNode]:
    """The running node; its RPC API URL is ``ipfs_node.api``."""
    if not (KIT / "setup.sh").is_file():
        pytest.skip(f"the IPFS node kit is absent ({KIT})")
    for tool in ("node", "npm", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the IPFS node kit needs it")
    target = CACHE / "js"
    setup = subprocess.run(
        ["bash", str(KIT / "setup.sh"), str(target)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if setup.returncode != 0:
        pytest.skip(
            f"the IPFS node could not be installed: {setup.stdout[-500:]}{setup.stderr[-500:]}"
        )
    api_port, gw_port = _free_port(), _free_port()
    repo = CACHE / f"repo-{os.getpid()}"
    start = subprocess.run(
        ["bash", str(KIT / "start.sh"), str(target), str(repo), str(api_port), str(gw_port)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if start.returncode != 0:
        pytest.fail(f"the IPFS node did not start: {start.stderr[-1000:]}")
    pid = int(start.stdout.strip().splitlines()[-1])
    try:
        yield IpfsNode(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{gw_port}", pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(repo, ignore_errors=True)
        for leftover in CACHE.glob(f"repo-{os.getpid()}.*"):
            leftover.unlink(missing_ok=True)
