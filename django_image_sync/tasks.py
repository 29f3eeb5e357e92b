"""The Celery tasks: thin shells around the worker path and the sweeper, with the
resize task's retries and time-limit handling."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import close_old_connections

from . import failures, queue, results, worker
from .files import TransientError

logger = logging.getLogger("django_image_sync")

# Retries of transient errors (storage, database): 5 s, 10 s, 20 s, ... capped,
# each wait between half and all of that. Not Celery's retry_backoff: it counts
# whole seconds only and its jitter draws from 0 to the full delay, so a retry
# could follow a failed storage write at once (tests/test_faults.py checks
# that every wait is at least half the delay).
RETRY_BASE_DELAY = 5
RETRY_MAX_DELAY = 300
MAX_RETRIES = 3


@contextmanager
def _database_connections() -> Iterator[None]:
    """Treat the database connections as Django treats them around a request.

    Celery's Django fixup closes every connection before and after each task,
    unless ``CELERY_DB_REUSE_MAX`` is set (``celery_config.RECOMMENDED`` sets
    it): then it leaves them open, and nothing would close one that broke or
    outlived ``CONN_MAX_AGE``. Before and after each task of the app, the
    connections that did are closed (Django's ``close_old_connections``), and
    the others are kept, so a worker does not pay a new connection per image.
    """
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


@shared_task(
    bind=True,
    name="django_image_sync.resize_image",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=MAX_RETRIES,
)
def resize_image(self: Any, image_id: int, force: bool = False, budgets: str = "") -> str:
    """Resize one uploaded image; safe to run more than once for the same id.

    ``budgets``: the budgets the upload checked the file against
    (``conf.budgets_key``); when the worker's are the same, it does not
    check the file's cost again."""
    with _database_connections():
        return _resize_image(self, image_id, force, budgets)


def _resize_image(self: Any, image_id: int, force: bool, budgets: str) -> str:
    try:
        return worker.process_image(image_id, force=force, budgets=budgets)
    except SoftTimeLimitExceeded:
        # Raised in this process when the message's soft limit (queue.enqueue_resize sets
        # PROCESSING_TIME_LIMIT) runs out: retrying the same bytes cannot help.
        # A site's own task_soft_time_limit may have fired instead.
        _, soft = self.request.timelimit or (None, None)
        setting = "PROCESSING_TIME_LIMIT" if soft else "task_soft_time_limit"
        soft = soft or self.app.conf.task_soft_time_limit
        return failures.fail_image(
            image_id,
            f"resizing took longer than {soft:g} s, the limit for one image ({setting}); "
            "the file costs more to decode than any photo should",
            code="time_limit",
            params={"seconds": soft, "setting": setting},
        )
    except TransientError as exc:
        if self.request.retries >= self.max_retries:
            # Storage or database still down: the image waits for the sweeper,
            # which tries it again with growing delays (RETRY_HORIZON).
            return failures.retry_later(image_id, str(exc))
        delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**self.request.retries)
        countdown = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
        logger.info("django-image-sync: image %s retry in %.0f s: %s", image_id, countdown, exc)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(
    bind=True,
    name="django_image_sync.refresh_outputs",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=MAX_RETRIES,
)
def refresh_outputs(self: Any, image_id: int) -> str:
    """Bring a done image's outputs up to the current settings (``image_sync_backfill``).

    A failure leaves the image done with its old outputs, which keep being
    served; running the backfill again tries it again.
    """
    with _database_connections():
        return _refresh_outputs(self, image_id)


def _refresh_outputs(self: Any, image_id: int) -> str:
    try:
        return worker.refresh_outputs(image_id)
    except SoftTimeLimitExceeded:
        logger.warning("django-image-sync: image %s not refreshed: time limit", image_id)
        return "skipped"
    except TransientError as exc:
        if self.request.retries >= self.max_retries:
            logger.warning("django-image-sync: image %s not refreshed: %s", image_id, exc)
            results.note_refresh(image_id, f"failed: {exc}")
            return "skipped"
        delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**self.request.retries)
        countdown = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="django_image_sync.sweep", ignore_result=True)
def sweep(older_than: float = queue.DEFAULT_SWEEP_AGE) -> int:
    """Periodic (Celery beat) task: queue again images stuck pending or processing."""
    with _database_connections():
        return len(queue.sweep(older_than))
