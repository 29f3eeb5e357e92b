"""WSGI entry point of the test "site", for tests that serve it over real HTTP.

``python -m gunicorn tests.wsgi:application`` with ``IMAGE_SYNC_TEST_WORKER=1``
serves the database the test session created (see ``tests/settings.py``).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

# The site's Celery app, as a project's ``__init__`` loads it: without it, tasks
# would be sent with Celery's defaults (AMQP on localhost), not to this run's queue.
import tests.celery_app  # noqa: F401

application = get_wsgi_application()
