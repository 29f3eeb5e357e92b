"""moto's server mode (what ``moto_server`` runs), answering one request at a time.

    python tests/support/moto_serialised.py HOST PORT

moto's in-memory S3 is not safe for concurrent requests: of two PUTs of one
key at once, the second disposes of the object the first has just stored,
closing its buffer, and the first then fails on its ETag with ``ValueError:
I/O operation on closed file`` (HTTP 500; seen with 40 uploads of one photo
at once). Real S3 stores each PUT whole. Connections are still served by
threads, as by ``moto_server``; only the application is behind a lock, so
every request is handled whole, one after another: atomic, like S3's.
Plain moto and werkzeug: no Django, nothing of the tests.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main(host: str, port: int) -> None:
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
