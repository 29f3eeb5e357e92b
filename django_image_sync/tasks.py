"""A thin Celery shell around the worker path; retries and bounds live here."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import conf, services

logger = logging.getLogger("django_image_sync")

# Retries of transient errors (storage, database): 5 s, 10 s, 20 s, ... capped.
RETRY_BASE_DELAY = 5
RETRY_MAX_DELAY = 300
MAX_RETRIES = 3

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
# of the upload's database work. One pool per process, broker and bounds.
PUBLISH_POOL_LIMIT = 16
_publish_pools: dict[tuple[Any, ...], Any] = {}
_publish_pools_lock = threading.Lock()


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
    except SoftTimeLimitExceeded:
        # Raised in this process when the message's soft limit (dispatch() sets
        # PROCESSING_TIME_LIMIT) runs out: retrying the same bytes cannot help.
        # A site's own task_soft_time_limit may have fired instead.
        _, soft = self.request.timelimit or (None, None)
        setting = "PROCESSING_TIME_LIMIT" if soft else "task_soft_time_limit"
        soft = soft or self.app.conf.task_soft_time_limit
        return services.fail_image(
            image_id,
            f"resizing took longer than {soft:g} s, the limit for one image ({setting}); "
            "the file costs more to decode than any photo should",
        )
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
    """Queue ``resize_image`` for an image; never raises, and returns within seconds.

    Returns False when the broker could not be reached: the row stays
    ``pending`` and the sweeper (``image_sync_sweep``) queues it later.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning(
            "django-image-sync: broker was unreachable moments ago; image %s stays pending",
            image_id,
        )
        return False
    kwargs = {"force": True} if force else {}
    limit = conf.get("PROCESSING_TIME_LIMIT")
    try:
        pool = _publish_pool(resize_image.app)
        # Leaving the block gives the connection back to the pool.
        with pool.acquire(block=True, timeout=PUBLISH_TIMEOUTS["socket_timeout"]) as connection:
            try:
                resize_image.apply_async(
                    (image_id,),
                    kwargs,
                    connection=connection,  # type: ignore[call-arg]  # missing from the stubs
                    retry=True,
                    retry_policy=PUBLISH_RETRY_POLICY,
                    # The per-image budget: the soft limit raises in the task,
                    # which marks the image failed; the hard one ends a task
                    # stuck in C code, and MAX_ATTEMPTS bounds its redeliveries.
                    soft_time_limit=limit,
                    time_limit=limit + HARD_TIME_LIMIT_GRACE,
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
