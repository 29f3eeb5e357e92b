"""Recommended Celery settings for sites running django-image-sync.

Take them into the site's Django settings, after its own ``CELERY_*``
settings (which win), when Celery reads its configuration from there with the
``CELERY`` namespace::

    # mysite/settings.py
    from django_image_sync.celery_config import RECOMMENDED

    for _name, _value in RECOMMENDED.items():
        globals().setdefault(f"CELERY_{_name.upper()}", _value)

Each value is chosen so that no upload is lost and no call hangs.
"""

from __future__ import annotations

from typing import Any

# Seconds a task may run before the worker kills it; the broker's visibility
# timeout must be larger, or Redis hands the same task to a second worker.
TASK_TIME_LIMIT = 300
VISIBILITY_TIMEOUT = 3600

RECOMMENDED: dict[str, Any] = {
    # JSON only: a pickled message from the broker would run code in the worker.
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_serializer": "json",
    "task_ignore_result": True,
    # Acknowledge after the task ran, so a worker that dies mid-resize does not
    # lose the image; the app's attempt bound (MAX_ATTEMPTS) stops an image
    # that kills the worker every time.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    # One message at a time per worker process: a long resize does not hold
    # back tasks another process could run.
    "worker_prefetch_multiplier": 1,
    # Keep each worker process's database connection from task to task.
    # Celery's Django fixup otherwise closes it before and after every task,
    # so every image paid a new connection (3 ms on PostgreSQL over loopback,
    # more with TLS or a network between). The fixup then closes it only
    # every this many tasks; the app's own tasks close it sooner where Django
    # would close a request's: broken, or older than CONN_MAX_AGE.
    "db_reuse_max": 1000,
    "task_time_limit": TASK_TIME_LIMIT,
    "task_soft_time_limit": TASK_TIME_LIMIT - 30,
    # Never hang on a broker that is down or silent.
    "broker_connection_timeout": 3,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
    },
    # The sweeper queues again images left pending (broker down during the
    # upload) or processing (worker died) longer than 10 minutes.
    "beat_schedule": {
        "django-image-sync-sweep": {
            "task": "django_image_sync.sweep",
            "schedule": 300.0,
        }
    },
}
