"""The storages the app's files go through: originals in ``IMAGE_SYNC["STORAGE"]``,
resized files in ``IMAGE_SYNC["OUTPUT_STORAGE"]`` (the same one unless set)."""

from __future__ import annotations

import posixpath
import re
import threading
import time
from typing import Any

from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import conf

_DELEGATED = (
    "open",
    "save",
    "get_valid_name",
    "get_alternative_name",
    "get_available_name",
    "generate_filename",
    "path",
    "delete",
    "exists",
    "listdir",
    "size",
    "url",
    "get_accessed_time",
    "get_created_time",
    "get_modified_time",
)


class ConfiguredStorage(Storage):
    """Forwards every call to ``storages[IMAGE_SYNC[setting]]``, looked up per call.

    The alias is resolved at use, never at import: a wrong alias is reported by
    ``manage.py check`` (E001) instead of crashing start-up, and
    ``override_settings`` can switch storage in tests. Not Django's
    ``LazyObject``: ``FileField`` checks ``isinstance(storage, Storage)`` when
    the model class is built, which makes a ``LazyObject`` resolve the alias
    at import (tests/test_checks.py runs ``manage.py check`` with a wrong one).
    """

    def __init__(self, setting: str = "STORAGE") -> None:
        self.setting = setting

    @property
    def alias(self) -> str:
        alias = conf.get(self.setting)
        return str(conf.get("STORAGE") if alias is None else alias)

    @property
    def backend(self) -> Storage:
        backend: Storage = storages[self.alias]
        return backend

    def __getattr__(self, name: str) -> Any:
        # Backend-specific attributes (``bucket_name``, ``location``, ...).
        if name == "setting":  # not set yet (copy, pickle)
            raise AttributeError(name)
        return getattr(self.backend, name)


def _forward(name: str) -> Any:
    def method(self: ConfiguredStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.backend, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Forwarded to the configured storage's ``{name}``."
    return method


for _name in _DELEGATED:
    setattr(ConfiguredStorage, _name, _forward(_name))

# Originals.
image_storage = ConfiguredStorage("STORAGE")
# Resized files and renditions.
output_storage = ConfiguredStorage("OUTPUT_STORAGE")


def is_output_name(name: str) -> bool:
    """Whether ``name`` is a resized file (``<UPLOAD_TO>/resized/ab/cd/<file>``, as
    ``models.resized_name`` makes them; temporary files beside them too)."""
    parts = posixpath.dirname(name).split("/")
    return len(parts) >= 3 and parts[-3] == "resized"


def storage_for(name: str) -> ConfiguredStorage:
    """The storage that holds ``name``: the outputs' for resized files, else the originals'."""
    return output_storage if is_output_name(name) else image_storage


# Names that need no escaping in a URL: those the app makes (hex, "-", ".", "/")
# under an UPLOAD_TO of plain characters.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._/-]+\Z")
_PROBES = ("image_sync-probe/0123456789abcdef-0a1b2c3d4e5f.jpg", "p/q-r.avif")
# Per storage backend (and its base URL): the prefix its url() puts before a
# plain name, or None where its URLs are not plain (signed, say).
_url_prefixes: dict[tuple[int, str], str | None] = {}


def file_url(name: str) -> str:
    """``url(name)`` of the configured storage, made cheaply for a page of many files.

    A gallery page asks for ten URLs an image; ``FileSystemStorage.url`` spends
    most of its time in ``urljoin`` (half of the page's render time, measured
    with 50 images). Where the storage's URL for a plain name is a prefix plus
    the name (local files, S3 with public URLs or a ``custom_domain``), the
    prefix is found once and reused. Signed URLs are signed by the storage's
    own ``url()`` and then handed out again for half their lifetime
    (``querystring_expire``), so browsers can cache the images; names that
    need escaping go to ``url()`` every time.
    """
    backend = storage_for(name).backend
    key = (id(backend), str(getattr(backend, "base_url", "")))
    if key not in _url_prefixes:
        _url_prefixes[key] = _plain_prefix(backend)
    prefix = _url_prefixes[key]
    if prefix is not None and _PLAIN_NAME.match(name):
        return prefix + name
    if prefix is None:
        return _stable_url(backend, name)
    return str(backend.url(name))


# Signed URLs (S3's querystring_auth, CloudFront keys) carry the second they
# were signed at, so each page view would hand out new URLs and the browser
# would download every image again. A signed URL is kept and handed out again
# for half its lifetime: it stays valid at least as long again after that, and
# the browser's cache works across page views. Per process, bounded.
SIGNED_URL_MEMO_SIZE = 10_000
_signed_urls: dict[tuple[int, str], tuple[float, str]] = {}
_signed_urls_lock = threading.Lock()


def _stable_url(backend: Storage, name: str) -> str:
    expire = getattr(backend, "querystring_expire", None)
    if not isinstance(expire, int | float) or expire <= 1:
        return str(backend.url(name))
    now = time.monotonic()
    key = (id(backend), name)
    memo = _signed_urls.get(key)
    if memo is not None and memo[0] > now:
        return memo[1]
    url = str(backend.url(name))
    with _signed_urls_lock:
        if len(_signed_urls) >= SIGNED_URL_MEMO_SIZE:
            # Drop the expired entries, or else the oldest half.
            for stale in [k for k, (until, _) in _signed_urls.items() if until <= now]:
                del _signed_urls[stale]
            if len(_signed_urls) >= SIGNED_URL_MEMO_SIZE:
                for old in list(_signed_urls)[: SIGNED_URL_MEMO_SIZE // 2]:
                    del _signed_urls[old]
        _signed_urls[key] = (now + expire / 2, url)
    return url


def _plain_prefix(backend: Storage) -> str | None:
    try:
        urls = [str(backend.url(probe)) for probe in _PROBES]
    except Exception:
        return None
    first = urls[0]
    if "?" in first or "#" in first or not first.endswith(_PROBES[0]):
        return None
    prefix = first[: -len(_PROBES[0])]
    return prefix if urls[1] == prefix + _PROBES[1] else None


@receiver(setting_changed)
def _forget_url_prefixes(setting: str, **kwargs: Any) -> None:
    if setting in ("MEDIA_URL", "STORAGES", "IMAGE_SYNC") or setting.startswith("AWS_"):
        _url_prefixes.clear()
        _signed_urls.clear()


def get_storage() -> Storage:
    """Callable storage for the originals' file field (keeps migrations stable)."""
    return image_storage


def get_output_storage() -> Storage:
    """Callable storage for the resized file's field (keeps migrations stable)."""
    return output_storage
