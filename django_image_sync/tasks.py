"""The Celery tasks: thin shells around the worker path and the sweeper, with the
resize task's retries and time-limit handling."""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

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


@shared_task(
    bind=True,
    name="django_image_sync.resize_image",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=MAX_RETRIES,
)
def resize_image(self: Any, image_id: int, force: bool = False) -> str:
    """Resize one uploaded image; safe to run more than once for the same id."""
    try:
        return worker.process_image(image_id, force=force)
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
    return len(queue.sweep(older_than))
