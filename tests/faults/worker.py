"""A real Celery worker for the fault tests, on a broker of their own.

A ``tests.conftest.WorkerProcess`` whose broker (and the worker's cache) is the
private redis-server given, with the fault hooks installed and extra
environment variables configuring the worker's settings.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

from django.conf import settings

from tests.conftest import WorkerProcess

_names = itertools.count(1)


class FaultWorker(WorkerProcess):
    stop_timeout = 10

    def __init__(
        self,
        log_path: Path,
        redis_url: str,
        env: dict[str, str] | None = None,
        *,
        beat: bool = False,
    ) -> None:
        # ``beat``: run Celery beat inside the worker (-B), with the schedule of
        # IMAGE_SYNC_TEST_SWEEP_EVERY, its state file beside the log.
        beat_args = ("-B", "-s", str(log_path.with_suffix(".beat"))) if beat else ()
        super().__init__(
            log_path,
            env={
                "IMAGE_SYNC_TEST_REDIS_URL": redis_url,
                "IMAGE_SYNC_TEST_FAULT_HOOKS": "1",
                **(env or {}),
            },
            name=f"image-sync-faults-{settings.RUN_ID}-{next(_names)}",
            extra_args=beat_args,
        )
        self.redis_url = redis_url

    def pool_children(self) -> list[int]:
        """The pool processes (children of the worker's main process)."""
        result = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in result.stdout.split()]
