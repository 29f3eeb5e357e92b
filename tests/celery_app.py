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
