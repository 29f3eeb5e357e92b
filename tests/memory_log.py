"""Per-task memory and time, written by a measuring worker process (tests only).

Installed by ``tests/celery_app.py`` where ``IMAGE_SYNC_TEST_MEMORY_LOG`` names
a file. With ``--max-tasks-per-child=1`` every task runs in a new pool
process, so the peak resident size the kernel reports after the task (VmHWM)
less the resident size before it is what the task added.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, task_prerun

_started: dict[str, tuple[float, int]] = {}


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` figure (VmRSS, VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def install(path: str) -> None:
    def before(task_id: str, **kwargs: Any) -> None:
        _started[task_id] = (time.perf_counter(), status_kib("VmRSS"))

    def after(task_id: str, args: tuple[Any, ...], retval: Any, **kwargs: Any) -> None:
        started, rss = _started.pop(task_id)
        record = {
            "image_id": args[0] if args else None,
            "status": retval if isinstance(retval, str) else repr(retval),
            "seconds": round(time.perf_counter() - started, 3),
            "rss_before_kib": rss,
            "added_kib": status_kib("VmHWM") - rss,
        }
        with open(path, "a") as log:
            log.write(json.dumps(record) + "\n")

    task_prerun.connect(before, weak=False)
    task_postrun.connect(after, weak=False)
