"""The benchmark's Django site. Its Celery app is loaded with it, as a project's would be,
so tasks are published to this site's Redis broker and nowhere else."""

from bench.site.celery_app import app as celery_app

__all__ = ("celery_app",)
