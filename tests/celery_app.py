"""The Celery app of the test "site"; the worker process is started with ``-A tests.celery_app``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("IMAGE_SYNC_TEST_FAULT_HOOKS"):
    # Fault-injection workers (tests/test_faults.py) only.
    from tests.faults import worker_hooks

    worker_hooks.install()

if os.environ.get("IMAGE_SYNC_TEST_MEMORY_LOG"):
    # Workers that measure each task's memory (tests/test_decode_budget.py) only.
    from tests import memory_log

    memory_log.install(os.environ["IMAGE_SYNC_TEST_MEMORY_LOG"])
