from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=15, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

from ipfs_node import ipfs_node  # noqa: E402,F401 -- the session fixture of a real IPFS node

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JS_MODULES = Path(__file__).resolve().parents[1] / "js" / "node_modules"


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    """One real process-based Dask cluster for every test that needs one."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # Port 0: another cluster on this machine may hold the default 8787, and the
        # "port in use" warning would be an error under filterwarnings=error.
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with the reference JS packages of js/ installed (else skip)."""
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node is not installed")
    for package in ("@ipld/car", "ipfs-unixfs-importer"):
        if not (JS_MODULES / package).is_dir():
            pytest.skip("js/node_modules is absent: run `npm ci` in js/")
    return exe


from s3_server import s3_server  # noqa: E402, F401 - the loopback S3 server fixture
