"""The django-image-sync example project.

The Celery app is imported here so that ``@shared_task`` tasks bind to it
whenever Django starts (web process or worker).
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
