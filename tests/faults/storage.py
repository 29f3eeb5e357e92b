"""Real storages that fail on demand (see ``tests.faults``): FileSystemStorage
(MEDIA_ROOT), and django-storages' S3Storage for runs on S3 (``tests.support.s3``)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from tests.faults import fault_dir, fire

# How long a stalled write waits for the test to kill its process.
STALL_SECONDS = 120


def _is_resized(name: str) -> bool:
    return "/resized/" in f"/{name}"


def _stall() -> None:
    """Tell the test this process is stalled, then wait to be killed."""
    (fault_dir() / "stalled").write_text(str(os.getpid()))
    time.sleep(STALL_SECONDS)


class _HalfThenStall(ContentFile):
    """Content whose second half comes only after the process was told to die."""

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        self.seek(0)
        data = self.read()
        half = len(data) // 2
        yield data[:half]  # more than the file buffer: written through to the file
        _stall()
        yield data[half:]


class FlakyStorage(FileSystemStorage):
    """Saves resized files (and deletes any file) unless a fault is armed."""

    def _save(self, name: str, content: Any) -> str:
        if _is_resized(name):
            if fire("save"):
                raise OSError(errno.EIO, "flaky storage: injected save failure", name)
            if fire("stall"):
                content.seek(0)
                content = _HalfThenStall(content.read(), name=content.name)
        return super()._save(name, content)

    def delete(self, name: str) -> None:
        if fire("delete"):
            raise OSError(errno.EIO, "flaky storage: injected delete failure", name)
        super().delete(name)


try:
    from storages.backends.s3 import S3Storage
except ImportError:  # django-storages is in the test extra; only the S3 runs need it
    pass
else:

    class FlakyS3Storage(S3Storage):  # type: ignore[misc]
        """``FlakyStorage`` on S3. A stall holds the PUT of a resized file back
        before it is sent: an object is stored whole or not at all."""

        def _save(self, name: str, content: Any) -> str:
            if _is_resized(name):
                if fire("save"):
                    raise OSError(errno.EIO, "flaky storage: injected save failure", name)
                if fire("stall"):
                    _stall()
            saved: str = super()._save(name, content)
            return saved

        def delete(self, name: str) -> None:
            if fire("delete"):
                raise OSError(errno.EIO, "flaky storage: injected delete failure", name)
            super().delete(name)
