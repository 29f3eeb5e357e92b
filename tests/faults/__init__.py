"""Fault injection for ``tests/test_faults.py``.

Faults cross process boundaries (the test process arms them, a real Celery
worker trips over them) through small files in :func:`fault_dir`, which both
processes find under the run's scratch folder (``IMAGE_SYNC_TEST_SCRATCH``).

A fault file holds how many more times the fault fires (an integer) or
``always``. Kinds used: ``save`` (storage refuses to save a resized file),
``delete`` (storage refuses to delete), ``stall`` (storage writes half of a
resized file, then sleeps until killed).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

EVENTS = "events.log"


def fault_dir() -> Path:
    # Not django.conf.settings: the worker hooks may run before Django is set up.
    path = Path(os.environ["IMAGE_SYNC_TEST_SCRATCH"]) / "faults"
    path.mkdir(parents=True, exist_ok=True)
    return path


def arm(kind: str, times: int | str) -> None:
    """Make fault ``kind`` fire ``times`` more times (or ``"always"``)."""
    (fault_dir() / kind).write_text(str(times))


def disarm_all() -> None:
    for path in fault_dir().iterdir():
        if path.is_file():
            path.unlink()


def fire(kind: str) -> bool:
    """Whether fault ``kind`` fires now; counts one use down. Safe across processes."""
    path = fault_dir() / kind
    with (fault_dir() / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return False
        if text == "always":
            return True
        left = int(text or 0)
        if left <= 0:
            return False
        path.write_text(str(left - 1))
        return True


def record(event: str) -> None:
    """Append one line to the events log (used by the worker-side hooks)."""
    with (fault_dir() / EVENTS).open("a") as fh:
        fh.write(event + "\n")


def events() -> list[str]:
    try:
        return (fault_dir() / EVENTS).read_text().splitlines()
    except FileNotFoundError:
        return []
