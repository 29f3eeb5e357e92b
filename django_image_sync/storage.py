"""The storage every file of the app goes through, chosen by ``IMAGE_SYNC["STORAGE"]``."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages
from django.utils.functional import LazyObject, empty

from . import conf


class ConfiguredStorage(LazyObject):
    """A lazy handle on ``storages[IMAGE_SYNC["STORAGE"]]``.

    Resolved at first use, not at import, and reset when the settings change
    (see ``apps.py``), so tests and sites can switch storage at run time.
    """

    def _setup(self) -> None:
        self._wrapped = storages[conf.get("STORAGE")]

    def reset(self) -> None:
        self._wrapped = empty  # type: ignore[assignment]


image_storage: Any = ConfiguredStorage()


def get_storage() -> Storage:
    """Callable storage for the model's file fields (keeps migrations stable)."""
    storage: Storage = image_storage
    return storage
