"""Settings of the benchmark's Django site: the app, a bare upload view, PostgreSQL, Redis.

The benchmark driver sets the ``BENCH_*`` variables: a database it created (and
drops), a media folder, and a marker naming this run's Redis queue and keys.
Load clients send a CSRF cookie and header; the app's views and the bare views
run behind the same middleware and the same CSRF check.
"""

from __future__ import annotations

import os

from django_image_sync.celery_config import RECOMMENDED

SECRET_KEY = "benchmark-only-not-secret"  # noqa: S105 - a local benchmark site
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "bench.site.urls"
WSGI_APPLICATION = "bench.site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MARKER = os.environ.get("BENCH_MARKER", "image-sync-bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_image_sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DB", "postgres"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        # Kept open between requests and tasks, as a production site would.
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": MARKER,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

MEDIA_ROOT = os.environ.get("BENCH_MEDIA", "/tmp/image-sync-bench-media")  # noqa: S108
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = MARKER
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# The rest as a site takes them (docs/celery.md): JSON only, acks late, prefetch
# 1, time limits, bounded broker connections, the database connection kept
# between tasks (db_reuse_max). No beat runs here, so its schedule is unused.
for _name, _value in RECOMMENDED.items():
    globals().setdefault(f"CELERY_{_name.upper()}", _value)

IMAGE_SYNC = {
    "TARGET_SIZE": (1920, 1080),
    "REQUIRE_AUTH": False,
    "MAX_FILE_SIZE": 32 * 1024 * 1024,
    "PAGE_SIZE": 50,
}
if os.environ.get("BENCH_MAIN_ONLY") == "1":
    # The main output alone, as before renditions: the worker part's baseline.
    IMAGE_SYNC.update({"RENDITION_WIDTHS": (), "RENDITION_FORMATS": (), "PLACEHOLDER": False})
if os.environ.get("BENCH_BACKEND"):
    # The mix's worker with another resize backend ("auto"), web and worker alike.
    IMAGE_SYNC["BACKEND"] = os.environ["BENCH_BACKEND"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_image_sync": {"handlers": ["console"], "level": "WARNING"}},
}
