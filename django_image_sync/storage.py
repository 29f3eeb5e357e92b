"""The storage every file of the app goes through, chosen by ``IMAGE_SYNC["STORAGE"]``."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages

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


def get_storage() -> Storage:
    """Callable storage for the model's file fields (keeps migrations stable)."""
    return image_storage
