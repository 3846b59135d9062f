"""moto's S3 server behind a fixed delay per request, threaded: a stand-in for a real object
store, whose cost per request is network latency (requests overlap), not the server's CPU.

    python benchmarks/_moto_latency.py PORT LATENCY_MS
"""

from __future__ import annotations

import sys
import time
from typing import Any

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    port, latency = int(sys.argv[1]), float(sys.argv[2]) / 1000
    app = DomainDispatcherApplication(create_backend_app)

    def delayed(environ: dict[str, Any], start_response: Any) -> Any:
        time.sleep(latency)  # releases the GIL: delays overlap, as a network's do
        return app(environ, start_response)

    server = make_server("127.0.0.1", port, delayed, True, request_handler=MotoRequestHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
