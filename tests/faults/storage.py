"""A real FileSystemStorage (MEDIA_ROOT) that fails on demand (see ``tests.faults``)."""

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


class _HalfThenStall(ContentFile):
    """Content whose second half comes only after the process was told to die."""

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        self.seek(0)
        data = self.read()
        half = len(data) // 2
        yield data[:half]  # more than the file buffer: written through to the file
        (fault_dir() / "stalled").write_text(str(os.getpid()))
        time.sleep(STALL_SECONDS)
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
