"""Long-running processes (gunicorn, Celery workers) for tests, the soak and the benchmark.

One place for what the end-to-end and HTTP tests, ``scripts/soak.py`` and
``bench/web.py`` all need: a free port, and a subprocess in its own process
group that logs to a file and is stopped whatever happens, children included.
Plain Python: no Django, no pytest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """A subprocess in its own process group, its output in ``log``.

    ``stop()`` sends SIGTERM to the group, waits ``grace`` seconds, then kills
    the group, including children that outlived their leader (gunicorn's
    workers, Celery's prefork children).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        log: Path,
        grace: float = 15,
    ) -> None:
        self.name = name
        self.log_path = log
        self.grace = grace
        with log.open("wb") as fh:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(self.grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
