"""How the worker path ends when it cannot finish an image: failed for good
(with a readable error, its stray outputs deleted), or waiting for the
sweeper after temporary failures outlasted the task's retries."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from . import conf, files, queue
from .models import Status, UploadedImage, main_size, output_entries
from .signals import image_failed

logger = logging.getLogger("django_image_sync")


@dataclass(frozen=True)
class Failure:
    """Why an image cannot be processed: English for logs, a code and figures
    for people (``UploadedImage.error_text`` words them in their language)."""

    message: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)


def fail_image(
    image_id: int, error: str, *, code: str = "", params: dict[str, Any] | None = None
) -> str:
    """Mark an image failed with a readable error and tell the site.

    ``error`` is English, for logs and the ``image_failed`` signal; ``code``
    and ``params`` let pages say the same in the reader's language.

    Outputs that earlier attempts wrote and no row refers to are deleted: an
    image that failed for good leaves no file but its original behind.
    """
    failed = UploadedImage.objects.transition(
        image_id,
        Status.FAILED,
        error=error[:2000],
        error_code=code,
        error_params=params or {},
        retry_at=None,
    )
    if failed:
        logger.warning("django-image-sync: image %s failed: %s", image_id, error)
        image = UploadedImage.objects.get(pk=image_id)
        plan = conf.output_plan()
        planned = output_entries(image.sha256, plan, main_size(image, plan))
        files.delete_unreferenced([entry["name"] for entry in planned])
        image_failed.send(sender=UploadedImage, image=image, error=image.error)
        return Status.FAILED
    return "skipped"


def retry_later(image_id: int, detail: str) -> str:
    """After the task's own retries: let the image wait for the sweeper.

    The row goes back to ``pending`` with ``detail`` as its visible error and
    a ``retry_at`` (the sweeper queues it then; the waits grow). Once it has
    been failing for ``RETRY_HORIZON`` seconds it is marked failed instead.
    Its attempt count starts over: the bound is for images that kill their
    worker, not for a storage that is down. Returns the status.
    """
    image = UploadedImage.objects.filter(pk=image_id, status=Status.PROCESSING).first()
    if image is None:
        return "skipped"  # finished, started over or deleted meanwhile
    now = timezone.now()
    since = image.retrying_since or now
    failing_for = (now - since).total_seconds()
    horizon = float(conf.get("RETRY_HORIZON"))
    if failing_for >= horizon:
        return fail_image(
            image_id,
            f"gave up after trying for {failing_for:.0f} s (RETRY_HORIZON): {detail}",
            code="horizon",
            params={"seconds": round(failing_for), "detail": detail},
        )
    delay = queue.retry_later_delay(failing_for, horizon)
    waiting = UploadedImage.objects.filter(
        status=Status.PROCESSING, attempts=image.attempts
    ).transition(
        image_id,
        Status.PENDING,
        error=f"trying again automatically after a temporary failure: {detail}"[:2000],
        error_code="retrying",
        error_params={"detail": detail},
        attempts=0,
        retry_at=now + timedelta(seconds=delay),
        retrying_since=since,
    )
    if not waiting:
        return "skipped"
    logger.warning(
        "django-image-sync: image %s waits %.0f s for its next try (failing for %.0f s): %s",
        image_id,
        delay,
        failing_for,
        detail,
    )
    return Status.PENDING
