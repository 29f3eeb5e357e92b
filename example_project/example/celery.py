"""The example site's Celery app.

Run a worker from ``example_project/``::

    python -m celery -A example worker -l info -c 1
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery("example")
# Every Celery setting lives in Django's settings with a CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds django_image_sync.tasks (and any other installed app's tasks module).
app.autodiscover_tasks()
