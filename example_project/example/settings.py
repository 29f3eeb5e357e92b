"""Settings of the django-image-sync example project.

Everything that differs between machines comes from the environment:

``DATABASE_URL``
    Any URL dj-database-url understands. Default: SQLite at ``var/db.sqlite3``.
``REDIS_URL``
    When set, Redis is the cache (and the Celery broker, unless
    ``CELERY_BROKER_URL`` says otherwise). When unset, a file-based cache under
    ``var/cache`` is used, shared by the web and worker processes.
``CELERY_BROKER_URL``
    Default: ``REDIS_URL`` if set, else kombu's ``filesystem://`` transport
    with its messages under ``var/broker``: no broker server needed.
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (default on), ``DJANGO_ALLOWED_HOSTS``
    The usual.

``var/`` (next to ``manage.py``) holds every file the site writes and is created
on import. It is ignored by git; delete it to start over.
"""

import importlib.util
import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

PROJECT_DIR = Path(__file__).resolve().parent.parent  # example_project/
REPO_DIR = PROJECT_DIR.parent
VAR_DIR = PROJECT_DIR / "var"

# Run against the checkout's app even when it has not been pip-installed.
if importlib.util.find_spec("django_image_sync") is None:
    sys.path.insert(0, str(REPO_DIR))

from django_image_sync.celery_config import RECOMMENDED  # noqa: E402 - after the path fix


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-example-project-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

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
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PROJECT_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Files ------------------------------------------------------------------

MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_URL = "/static/"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CACHE_DIR = VAR_DIR / "cache"
BROKER_DIR = VAR_DIR / "broker"
for _folder in (VAR_DIR, MEDIA_ROOT, CACHE_DIR, BROKER_DIR, BROKER_DIR / "control"):
    _folder.mkdir(parents=True, exist_ok=True)

# --- Database ---------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        # runserver handles every request in a new thread: persistent
        # connections would only pile up there. Raise it under gunicorn.
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "0")),
        conn_health_checks=True,
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker write to the same file: wait for locks
    # instead of failing, and let readers run while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "").strip()

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "image-sync-example",
        }
    }
else:
    # Not LocMemCache: the worker writes results that the web process reads.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(CACHE_DIR),
        }
    }

# --- Celery -----------------------------------------------------------------

# The host part means nothing to the filesystem transport; giving one keeps
# kombu from warning "No hostname was supplied" on every connection.
FILESYSTEM_BROKER_URL = "filesystem://localhost//"
CELERY_BROKER_URL = (
    os.environ.get("CELERY_BROKER_URL", "").strip() or REDIS_URL or FILESYSTEM_BROKER_URL
)

if CELERY_BROKER_URL.startswith("filesystem:"):
    # kombu's file-system transport: one folder that producers write messages
    # to and the worker reads them from; "control" holds the exchange tables
    # (remote control such as `celery inspect ping` goes through it).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis:", "rediss:", "redis+socket:")):
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(RECOMMENDED["broker_transport_options"])

# The app's recommended Celery settings (JSON only, acks_late with
# reject_on_worker_lost, prefetch 1, time limits below the visibility timeout,
# bounded broker connections, the sweeper in the beat schedule), written as
# Django settings with the CELERY_ prefix; anything set above wins.
for _name, _value in RECOMMENDED.items():
    globals().setdefault(f"CELERY_{_name.upper()}", _value)

# Several checkouts may share one Redis: the demo uses its own queue so that
# its worker never takes another site's tasks.
CELERY_TASK_DEFAULT_QUEUE = "image-sync-example"
CELERY_TASK_ALWAYS_EAGER = False  # always through a real broker and worker
CELERY_TIMEZONE = "UTC"
# The beat schedule (from RECOMMENDED) runs only under Celery beat:
# `python -m celery -A example beat`, or -B on the worker. Without beat, run
# `python manage.py image_sync_sweep` now and then.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- django-image-sync --------------------------------------------------------

IMAGE_SYNC = {
    # Resized copies fit in this box; smaller images are never upscaled.
    "TARGET_SIZE": (1920, 1080),
}

# Uploads need a logged-in user: the site's own login page (templates/registration/),
# in the app's style; the admin keeps its own.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "image_sync:upload"
LOGOUT_REDIRECT_URL = "login"

# --- Misc ---------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
# The languages the app ships translations for; LocaleMiddleware picks one from
# the browser's Accept-Language, falling back to LANGUAGE_CODE.
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
    },
    "loggers": {
        # The app's progress (uploads, deduplication, resizing) on the console
        # of the web server and of the worker. Not through the root logger:
        # Django's own loggers propagate there and would print twice.
        "django_image_sync": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
