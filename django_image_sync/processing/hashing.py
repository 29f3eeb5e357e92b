"""Hashing an upload: MD5 and SHA-256 in one pass, over a mapping of the file where it can."""

from __future__ import annotations

import contextlib
import hashlib
import io
import mmap
from collections.abc import Iterator
from typing import IO

HASH_CHUNK_SIZE = 1024 * 1024


def hash_file(fileobj: IO[bytes]) -> tuple[str, str]:
    """Return ``(md5, sha256)`` hex digests of the whole file in one pass."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    with mapped_contents(fileobj) as contents:
        if contents is not None:
            # The whole file at once, without copying it into Python.
            md5.update(contents)
            sha256.update(contents)
        else:
            fileobj.seek(0)
            while chunk := fileobj.read(HASH_CHUNK_SIZE):
                md5.update(chunk)
                sha256.update(chunk)
    fileobj.seek(0)
    return md5.hexdigest(), sha256.hexdigest()


@contextlib.contextmanager
def mapped_contents(fileobj: IO[bytes]) -> Iterator[memoryview | mmap.mmap | None]:
    """The file's bytes as a buffer that shares memory with it, or None.

    A file on disk (Django's temporary upload files) is mapped read-only, an
    in-memory one is viewed in place; anything else yields None and is read.
    """
    raw = getattr(fileobj, "file", fileobj)  # Django's File wraps the real file
    if isinstance(raw, io.BytesIO):
        with raw.getbuffer() as view:
            yield view
        return
    try:
        descriptor = raw.fileno()
        mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):  # no descriptor, or empty
        yield None
        return
    with mapped:
        yield mapped


def file_size(fileobj: IO[bytes]) -> int:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


def read_all(fileobj: IO[bytes]) -> bytes:
    fileobj.seek(0)
    return fileobj.read()
