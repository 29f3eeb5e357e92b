"""The web side of Celery: queue an image's resize (bounded, never hangs a request),
queue again what was left behind (the sweeper), and start images over (reprocess).

Tasks are published by name, so the web tier never imports the worker's code.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import Status, UploadedImage

logger = logging.getLogger("django_image_sync")

RESIZE_TASK = "django_image_sync.resize_image"
REFRESH_TASK = "django_image_sync.refresh_outputs"

# Seconds between the per-image soft time limit (PROCESSING_TIME_LIMIT) and the
# hard one, for the task to mark the image failed.
HARD_TIME_LIMIT_GRACE = 30

# Publishing must never hang a request: one quick retry, then give up and leave
# the row ``pending`` for the sweeper.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0.2,
    "interval_step": 0.3,
    "interval_max": 0.5,
}
# Socket bounds for publishing, used where the site's broker transport options
# leave them unset (redis-py's default is to wait forever on a silent server).
PUBLISH_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
# After a failed publish, this process does not try again for this long: the
# other files of the same submission are left to the sweeper at once.
BROKER_DOWN_BACKOFF = 5.0
_broker_down_until = 0.0
# Publishing reuses connections: opening one per task cost more than the rest
# of the upload's database work. One pool per process, broker and bounds. Not
# Celery's producer pool: it connects with the site's transport options as they
# are, so with none set a publish to a silent broker never returns; this one
# gives up in about 4.2 s (tests/test_faults.py, a broker that never answers).
PUBLISH_POOL_LIMIT = 16
_publish_pools: dict[tuple[Any, ...], Any] = {}
_publish_pools_lock = threading.Lock()


def enqueue_resize(image_id: int, *, force: bool = False, budgets: str = "") -> bool:
    """Queue ``resize_image`` for an image; never raises, and returns within seconds.

    ``budgets``: ``conf.budgets_key`` of the budgets the file was just checked
    against, if it was (the upload service's rows). Returns False when the
    broker could not be reached: the row stays ``pending`` and the sweeper
    (``image_sync_sweep``) queues it later.
    """
    kwargs: dict[str, Any] = {"force": True} if force else {}
    if budgets:
        kwargs["budgets"] = budgets
    return _publish(RESIZE_TASK, image_id, kwargs)


def enqueue_refresh(image_id: int, *, queue: str | None = None) -> bool:
    """Queue ``refresh_outputs`` for a done image (the backfill), on ``queue`` if
    given (else Celery's default); never raises. Returns False if not queued."""
    return _publish(REFRESH_TASK, image_id, {}, queue=queue)


def _publish(task: str, image_id: int, kwargs: dict[str, Any], *, queue: str | None = None) -> bool:
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning(
            "django-image-sync: broker was unreachable moments ago; image %s stays pending",
            image_id,
        )
        return False
    limit = conf.get("PROCESSING_TIME_LIMIT")
    routing: dict[str, Any] = {"queue": queue} if queue else {}
    try:
        pool = _publish_pool(current_app)
        # Leaving the block gives the connection back to the pool.
        with pool.acquire(block=True, timeout=PUBLISH_TIMEOUTS["socket_timeout"]) as connection:
            try:
                current_app.send_task(
                    task,
                    (image_id,),
                    kwargs,
                    connection=connection,
                    retry=True,
                    retry_policy=PUBLISH_RETRY_POLICY,
                    # The per-image budget: the soft limit raises in the task,
                    # which marks the image failed; the hard one ends a task
                    # stuck in C code, and MAX_ATTEMPTS bounds its redeliveries.
                    soft_time_limit=limit,
                    time_limit=limit + HARD_TIME_LIMIT_GRACE,
                    **routing,
                )
            except Exception:
                # Whatever state the failure left it in, the next user reconnects.
                connection.collect()
                raise
    except Exception:
        _broker_down_until = time.monotonic() + BROKER_DOWN_BACKOFF
        logger.exception("django-image-sync: could not queue image %s; it stays pending", image_id)
        return False
    return True


def _publish_pool(app: Any) -> Any:
    """This process's pool of publishing connections to ``app``'s broker.

    Connections carry socket bounds where the site's broker transport options
    set none (:data:`PUBLISH_TIMEOUTS`). Keyed by process id, so a forked
    process never shares a socket with its parent.
    """
    site_options = app.conf.broker_transport_options or {}
    bounds = {k: v for k, v in PUBLISH_TIMEOUTS.items() if site_options.get(k) is None}
    url = app.conf.broker_write_url or app.conf.broker_url
    # ``bounds`` follows from the site's options, which are part of the key.
    key = (os.getpid(), id(app), str(url), repr(sorted(site_options.items())))
    with _publish_pools_lock:
        pool = _publish_pools.get(key)
        if pool is None:
            connection = app.connection_for_write(transport_options=bounds)
            pool = connection.Pool(limit=PUBLISH_POOL_LIMIT)
            _publish_pools[key] = pool
    return pool


# Rows left pending or processing longer than this (seconds) are queued again by
# the sweeper; keep it above the task time limit.
DEFAULT_SWEEP_AGE = 600

# An image whose temporary failures outlasted the task's retries waits this
# long before the sweeper queues it again: as long as it has been failing so
# far, so the waits double, within these bounds (seconds). The sweeper's own
# schedule (every 5 minutes in celery_config.RECOMMENDED) rounds them up.
RETRY_LATER_MIN = 60
RETRY_LATER_MAX = 60 * 60


def retry_later_delay(failing_for: float, horizon: float) -> float:
    """Seconds until the next try of an image failing for ``failing_for`` seconds;
    never past the end of ``horizon``, where its last try happens."""
    delay = min(RETRY_LATER_MAX, max(RETRY_LATER_MIN, failing_for))
    return max(0.0, min(delay, horizon - failing_for))


def _due(now: datetime, cutoff: datetime) -> Q:
    # Waiting for its next try and due; or left behind (no next try set) too long.
    return Q(retry_at__lte=now) | Q(retry_at__isnull=True, updated__lt=cutoff)


def sweep(older_than: float, *, limit: int = 500) -> list[int]:
    """Queue again the images waiting for their next try, and those left behind.

    Waiting: ``pending`` rows whose temporary failures outlasted the task's
    retries (``retry_at`` is due). Left behind: ``pending`` rows whose publish
    never reached the broker, and ``processing`` rows whose worker died, older
    than ``older_than`` seconds (keep it above the task time limit so a live
    worker is not raced). Returns the ids queued.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than)
    due = _due(now, cutoff)
    stale = list(
        UploadedImage.objects.filter(due, status__in=(Status.PENDING, Status.PROCESSING))
        .order_by("updated")
        .values_list("pk", flat=True)[:limit]
    )
    queued = []
    for pk in stale:
        # Touch the row first so the next sweep does not queue it again at once;
        # should this publish be lost, it is left behind and swept after ``older_than``.
        touched = UploadedImage.objects.filter(due, pk=pk)
        if not touched.update(updated=timezone.now(), retry_at=None):
            continue
        if enqueue_resize(pk):
            queued.append(pk)
    return queued


def reprocess(images: Iterable[UploadedImage]) -> int:
    """Start images over (admin action); each is dispatched after commit.

    Done, failed and processing images, and pending ones waiting for their next
    try after temporary failures (which are tried now); a pending image already
    queued is left alone."""
    count = 0
    fresh: dict[str, Any] = {
        "error": "",
        "error_code": "",
        "error_params": {},
        "attempts": 0,
        "retry_at": None,
        "retrying_since": None,
    }
    for image in images:
        waiting = UploadedImage.objects.filter(
            pk=image.pk, status=Status.PENDING, retry_at__isnull=False
        )
        if UploadedImage.objects.transition(image.pk, Status.PENDING, **fresh) or waiting.update(
            updated=timezone.now(), **fresh
        ):
            transaction.on_commit(partial(enqueue_resize, image.pk, force=True), robust=True)
            count += 1
    return count
