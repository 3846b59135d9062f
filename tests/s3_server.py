"""A real S3-protocol server on loopback for the tests: moto's server (werkzeug, HTTP).

``s3_server`` starts it once per session on 127.0.0.1 and a free port, creates the
buckets, and hands out the endpoint plus the options each client needs. Tests that use it
skip with the reason when the server cannot start (moto or obstore missing, no socket).
Every request the server answers is counted (``S3Server.requests``), from its access log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

BUCKETS = ("ipldwrite-test", "ipldwrite-cars")
#: moto accepts any credentials; these are not secrets.
ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    _count: list[int] = field(default_factory=lambda: [0])

    @property
    def requests(self) -> int:
        """Requests answered so far (all clients, all buckets). Reading it re-arms the
        access-log counter: other tests in the session may reconfigure logging (a
        ``dictConfig`` disables existing loggers), and a count must never silently stop."""
        _arm(self._count)
        return self._count[0]

    def obstore_options(self) -> dict[str, Any]:
        """Options for ObjectStoreBlockstore / obstore's S3Store."""
        return {
            "endpoint": self.endpoint,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "region": REGION,
            "allow_http": True,
            "virtual_hosted_style_request": False,
        }

    def storage_options(self) -> dict[str, Any]:
        """fsspec (s3fs) storage_options, for CAR files on the server."""
        return {
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": REGION},
        }


class _Counter(logging.Handler):
    """werkzeug logs one line per request it answers: count them."""

    def __init__(self, count: list[int]) -> None:
        super().__init__()
        self.count = count
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if '" ' in record.getMessage():  # '"GET /b/k HTTP/1.1" 200 -'; not startup lines
            with self.lock_:
                self.count[0] += 1


def _arm(count: list[int]) -> _Counter:
    """Make werkzeug's access log reach the counter of ``count`` (idempotent)."""
    log = logging.getLogger("werkzeug")
    counter = next((h for h in log.handlers if isinstance(h, _Counter) and h.count is count), None)
    if counter is None:
        counter = _Counter(count)
        log.addHandler(counter)
    log.disabled = False
    log.setLevel(logging.INFO)
    log.propagate = False  # a line per request would flood pytest's captured log
    return counter


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        import boto3
        import obstore  # noqa: F401 - the backend under test
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"no S3 test server: {exc} (pip install -e '.[test]')")
    try:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except OSError as exc:
        pytest.skip(f"the moto S3 server could not start on 127.0.0.1: {exc}")
    host, port = server.get_host_and_port()
    info = S3Server(f"http://{host}:{port}")
    counter = _arm(info._count)
    log = logging.getLogger("werkzeug")
    try:
        client = boto3.client(
            "s3",
            endpoint_url=info.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        yield info
    finally:
        log.removeHandler(counter)
        log.propagate = True
        server.stop()
