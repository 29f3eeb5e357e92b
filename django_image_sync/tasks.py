"""A thin Celery shell around the worker path; retries and bounds live here."""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task

from . import services

logger = logging.getLogger("django_image_sync")

# Retries of transient errors (storage, database): 5 s, 10 s, 20 s, ... capped.
RETRY_BASE_DELAY = 5
RETRY_MAX_DELAY = 300
MAX_RETRIES = 3

# Publishing must never hang a request: a few quick tries, then give up and
# leave the row ``pending`` for the sweeper.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.2,
    "interval_step": 0.4,
    "interval_max": 1.0,
}


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
        return services.process_image(image_id, force=force)
    except services.TransientError as exc:
        if self.request.retries >= self.max_retries:
            return services.fail_image(
                image_id, f"gave up after {self.max_retries + 1} tries: {exc}"
            )
        delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**self.request.retries)
        countdown = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
        logger.info("django-image-sync: image %s retry in %.0f s: %s", image_id, countdown, exc)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="django_image_sync.sweep", ignore_result=True)
def sweep(older_than: float = services.DEFAULT_SWEEP_AGE) -> int:
    """Periodic (Celery beat) task: queue again images stuck pending or processing."""
    return len(services.sweep(older_than))


def dispatch(image_id: int, *, force: bool = False) -> bool:
    """Queue ``resize_image`` for an image; never raises, never hangs for long.

    Returns False when the broker could not be reached: the row stays
    ``pending`` and is picked up again by a later dispatch.
    """
    kwargs = {"force": True} if force else {}
    try:
        resize_image.apply_async((image_id,), kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:
        logger.exception("django-image-sync: could not queue image %s; it stays pending", image_id)
        return False
    return True
