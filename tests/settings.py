"""Settings for the test suite (and for the Celery worker process the tests start).

``TEST_DB`` picks the database: ``sqlite`` (default), ``postgres`` or ``mariadb``,
all on this machine's services. Values shared with the worker subprocess come
from environment variables the test session sets before starting it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django_image_sync.celery_config import RECOMMENDED
from tests.support import s3 as _s3

BASE_DIR = Path(__file__).resolve().parent
RUN_ID = os.environ.setdefault("IMAGE_SYNC_TEST_RUN", f"{os.getpid()}")
SCRATCH = Path(
    os.environ.setdefault(
        "IMAGE_SYNC_TEST_SCRATCH", tempfile.mkdtemp(prefix=f"image-sync-test-{RUN_ID}-")
    )
)

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
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
    "django.middleware.locale.LocaleMiddleware",
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

TEST_DB = os.environ.get("TEST_DB", "sqlite")
DATABASES: dict[str, dict[str, Any]]
_DB_NAME = f"image_sync_test_{RUN_ID}"
if TEST_DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": _DB_NAME},
        }
    }
elif TEST_DB == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": "test",
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"NAME": _DB_NAME, "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
elif TEST_DB == "sqlite":
    # A file, not memory: the worker process must see the same database.
    _sqlite = str(SCRATCH / "db.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _sqlite,
            "TEST": {"NAME": _sqlite},
            "OPTIONS": {"timeout": 20},
        }
    }
else:
    raise RuntimeError(f"TEST_DB must be sqlite, postgres or mariadb, not {TEST_DB!r}")

if os.environ.get("IMAGE_SYNC_TEST_WORKER"):
    # The worker process talks to the database the test session created.
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]

REDIS_URL = os.environ.get("IMAGE_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"image-sync-test-{RUN_ID}",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    },
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

MEDIA_ROOT = str(SCRATCH / "media")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # A second storage for OUTPUT_STORAGE (tests/test_output_storage.py).
    "outputs": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(SCRATCH / "outputs"), "base_url": "/outputs/"},
    },
}
# The fault tests' storage that fails on demand (tests/faults/storage.py).
FLAKY_STORAGE: dict[str, Any] = {"BACKEND": "tests.faults.storage.FlakyStorage"}
if _s3.enabled():
    # IMAGE_SYNC_TEST_S3=1: the app's files go to S3 (django-storages on the moto
    # server the session starts at IMAGE_SYNC_TEST_S3_URL), through the default
    # alias, so a test replacing IMAGE_SYNC whole is still on S3.
    STORAGES["default"] = _s3.storage_settings(_s3.session_url())
    FLAKY_STORAGE = _s3.storage_settings(
        _s3.session_url(), backend="tests.faults.storage.FlakyS3Storage"
    )
if os.environ.get("IMAGE_SYNC_TEST_MEDIA_ROOT"):
    # A worker with a local disk of its own (tests/test_s3_workers.py).
    MEDIA_ROOT = os.environ["IMAGE_SYNC_TEST_MEDIA_ROOT"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Celery: a real broker (Redis) and a real worker; never eager.
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = f"image-sync-test-{RUN_ID}"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 5,
    "socket_connect_timeout": 3,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

IMAGE_SYNC: dict[str, object] = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_image_sync": {"handlers": ["console"], "level": "INFO"},
        # A 500 in a served test site (gunicorn) leaves its traceback in the log.
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}

# Fault-injection workers (tests/test_faults.py) only.
if os.environ.get("IMAGE_SYNC_TEST_STORAGE") == "flaky":
    # A storage that fails on demand.
    STORAGES["flaky"] = FLAKY_STORAGE
    IMAGE_SYNC = {**IMAGE_SYNC, "STORAGE": "flaky"}
if os.environ.get("IMAGE_SYNC_TEST_SWEEP_EVERY"):
    # A worker started with an embedded beat (-B) that sweeps this often, in seconds.
    CELERY_BEAT_SCHEDULE = {
        "django-image-sync-sweep": {
            "task": "django_image_sync.sweep",
            "schedule": float(os.environ["IMAGE_SYNC_TEST_SWEEP_EVERY"]),
        }
    }
if os.environ.get("IMAGE_SYNC_TEST_BACKEND"):
    # A worker on another processing backend (tests/test_decode_budget.py).
    IMAGE_SYNC = {**IMAGE_SYNC, "BACKEND": os.environ["IMAGE_SYNC_TEST_BACKEND"]}
if os.environ.get("IMAGE_SYNC_TEST_STORAGE_ALIAS"):
    # A storage alias that may be missing from STORAGES (tests/test_checks.py).
    IMAGE_SYNC = {**IMAGE_SYNC, "STORAGE": os.environ["IMAGE_SYNC_TEST_STORAGE_ALIAS"]}
if os.environ.get("IMAGE_SYNC_TEST_CACHE"):
    # Another alias of CACHES for resize results ("local": one cache per process).
    IMAGE_SYNC = {**IMAGE_SYNC, "CACHE": os.environ["IMAGE_SYNC_TEST_CACHE"]}
if os.environ.get("IMAGE_SYNC_TEST_RESIZE_QUEUE"):
    # Resizes routed to a queue of their own (tests/test_s3_workers.py).
    CELERY_TASK_ROUTES = {
        "django_image_sync.resize_image": {"queue": os.environ["IMAGE_SYNC_TEST_RESIZE_QUEUE"]}
    }
if os.environ.get("IMAGE_SYNC_TEST_KEEP_CONNECTIONS"):
    # A worker that keeps its database connection between tasks, as
    # celery_config.RECOMMENDED sets it up (tests/test_worker_connections.py).
    DATABASES["default"].update({"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True})
    CELERY_DB_REUSE_MAX = RECOMMENDED["db_reuse_max"]
if os.environ.get("IMAGE_SYNC_TEST_OVERRIDES"):
    # Settings of a worker started by a test (tests/test_backfill.py), as JSON.
    IMAGE_SYNC = {**IMAGE_SYNC, **json.loads(os.environ["IMAGE_SYNC_TEST_OVERRIDES"])}
