"""The storage every file of the app goes through, chosen by ``IMAGE_SYNC["STORAGE"]``."""

from __future__ import annotations

import re
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
    """Forwards every call to ``storages[IMAGE_SYNC["STORAGE"]]``, looked up per call.

    The alias is resolved at use, never at import: a wrong alias is reported by
    ``manage.py check`` (E001) instead of crashing start-up, and
    ``override_settings`` can switch storage in tests. Not Django's
    ``LazyObject``: ``FileField`` checks ``isinstance(storage, Storage)`` when
    the model class is built, which makes a ``LazyObject`` resolve the alias
    at import (tests/test_checks.py runs ``manage.py check`` with a wrong one).
    """

    @property
    def backend(self) -> Storage:
        backend: Storage = storages[conf.get("STORAGE")]
        return backend

    def __getattr__(self, name: str) -> Any:
        # Backend-specific attributes (``bucket_name``, ``location``, ...).
        return getattr(self.backend, name)


def _forward(name: str) -> Any:
    def method(self: ConfiguredStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.backend, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Forwarded to the configured storage's ``{name}``."
    return method


for _name in _DELEGATED:
    setattr(ConfiguredStorage, _name, _forward(_name))

image_storage = ConfiguredStorage()


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
    prefix is found once and reused; signed URLs and names that need escaping
    go to the storage's own ``url()`` every time.
    """
    backend = image_storage.backend
    key = (id(backend), str(getattr(backend, "base_url", "")))
    if key not in _url_prefixes:
        _url_prefixes[key] = _plain_prefix(backend)
    prefix = _url_prefixes[key]
    if prefix is not None and _PLAIN_NAME.match(name):
        return prefix + name
    return str(backend.url(name))


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
    if setting in ("MEDIA_URL", "STORAGES", "IMAGE_SYNC", "AWS_S3_CUSTOM_DOMAIN"):
        _url_prefixes.clear()


def get_storage() -> Storage:
    """Callable storage for the model's file fields (keeps migrations stable)."""
    return image_storage
