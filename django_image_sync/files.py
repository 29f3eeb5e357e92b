"""Stored files: written once under content-addressed names, atomically where the
storage has local paths, and deleted when no row refers to them any more."""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import uuid
from collections.abc import Iterable
from typing import IO, Any

from django.core.files import File
from django.db.models import Q

from . import results
from .models import UploadedImage, name_sha256
from .storage import storage_for

logger = logging.getLogger("django_image_sync")

# Temporary files are written under this prefix, then renamed into place.
INCOMING_PREFIX = ".incoming-"


class TransientError(Exception):
    """Storage (or the database) failed in a way that a later retry may not."""


class StorageUnavailable(TransientError):
    """The storage refused or did not answer a call made for an upload."""


def write_once(
    name: str, content: IO[bytes] | File[Any], size: int, *, replace: bool = False
) -> bool:
    """Store ``content`` (``size`` bytes) at the content-addressed ``name`` unless it is there.

    Returns True when this call wrote the file. Where the storage has local
    paths, the bytes are saved under a temporary name and renamed into place,
    so no reader sees a half-written file and two writers of the same content
    cannot harm each other. A file at ``name`` with another size is the
    remains of a write that was cut off (a killed process): it is replaced.
    ``replace`` writes even a file already there (reprocessing): atomically
    on local storages, so readers of the old file never see it missing.
    Object storages have no rename and need none: see ``_write_remote``.
    """
    storage = storage_for(name)
    local_path = _local_path(name)
    if local_path is None:
        return _write_remote(name, content)
    if not replace and storage.exists(name) and storage.size(name) == size:
        return False
    content.seek(0)
    for _ in range(2):
        temporary = _incoming_name(name)
        try:
            temporary = storage.save(temporary, content)
            os.replace(storage.path(temporary), local_path)
        except FileNotFoundError:
            # Another run of the same image (a redelivery racing this one)
            # removed our temporary file as a leftover: it is writing the
            # same bytes. Done if it has; otherwise write once more.
            if storage.exists(name) and storage.size(name) == size:
                return False
            content.seek(0)
            continue
        except BaseException:
            delete_quietly(temporary)
            raise
        return True
    raise OSError(f"the temporary file for {name} was removed twice while writing it")


def _write_remote(name: str, content: IO[bytes] | File[Any]) -> bool:
    """Object storages (S3, ...): one PUT, with no existence probe before it.

    A PUT is atomic, so no reader ever sees part of an object, and there is
    no incomplete object to find and replace. The name is content-addressed,
    so writing an object that is already there writes the same bytes: a probe
    would cost a round trip on every upload to save one on a duplicate, which
    the database has usually caught already. A storage set not to overwrite
    (``file_overwrite=False``) picks another name when ``name`` exists; that
    copy is removed and the call wrote nothing.
    """
    content.seek(0)
    saved = storage_for(name).save(name, content)
    if saved != name:
        delete_quietly(saved)
        return False
    return True


def _incoming_name(name: str) -> str:
    directory, base = posixpath.split(name)
    return posixpath.join(directory, f"{INCOMING_PREFIX}{uuid.uuid4().hex}-{base}")


def remove_incoming(name: str) -> None:
    """Delete temporary files left by a write of ``name`` that was cut off."""
    if _local_path(name) is None:
        return
    directory, base = posixpath.split(name)
    try:
        _, files = storage_for(name).listdir(directory)
    except OSError:  # the folder does not exist yet
        return
    for candidate in files:
        if candidate.startswith(INCOMING_PREFIX) and candidate.endswith(f"-{base}"):
            delete_quietly(posixpath.join(directory, candidate))


def still_stored(name: str) -> bool:
    try:
        return bool(storage_for(name).exists(name))
    except Exception as exc:
        raise TransientError(f"cannot check the stored file {name}: {exc}") from exc


def is_remote() -> bool:
    """Whether the originals' storage has no local paths (S3 and other object storages)."""
    return _local_path("probe") is None


def _local_path(name: str) -> str | None:
    try:
        path: str = storage_for(name).path(name)
    except NotImplementedError:  # remote storages (S3, ...) write objects whole
        return None
    return path


def ensure_stored(name: str, content: IO[bytes] | File[Any], size: int) -> None:
    """After commit: put back a shared original that a concurrent failure or deletion removed.

    An upload that found its content already stored wrote nothing; if the
    upload or row that owned that file went away before this one committed,
    the file may have been deleted as unreferenced.
    """
    try:
        if not storage_for(name).exists(name):
            logger.warning("django-image-sync: restoring shared original %s", name)
            write_once(name, content, size)
    except Exception:
        logger.exception("django-image-sync: could not restore %s", name)


def delete_quietly(name: str) -> None:
    try:
        storage_for(name).delete(name)
    except Exception:
        logger.exception("django-image-sync: could not delete stored file %s", name)


def is_referenced(name: str) -> bool:
    """Whether any row refers to ``name``: as its original, main output or a rendition."""
    return name in referenced([name])


def referenced(names: Iterable[str]) -> set[str]:
    """Those of ``names`` that some row refers to.

    Names of the app start with the content's SHA-256, so only the rows of
    that content are read: one indexed query per content, however many of its
    files are asked about. Renditions are looked up in Python, which works the
    same on every database's JSON.
    """
    found: set[str] = set()
    by_content: dict[str, set[str]] = {}
    for name in names:
        sha256 = name_sha256(name)
        if sha256 is not None:
            by_content.setdefault(sha256, set()).add(name)
        elif UploadedImage.objects.filter(Q(original=name) | Q(resized=name)).exists():
            found.add(name)
    for sha256, asked in by_content.items():
        rows = UploadedImage.objects.filter(sha256=sha256).values_list(
            "original", "resized", "renditions"
        )
        for original, resized, renditions in rows:
            used = {original, resized}
            used.update(entry.get("name") for entry in renditions or () if isinstance(entry, dict))
            found |= asked & used
    return found


def delete_unreferenced(names: Iterable[str]) -> None:
    """Delete stored files no row refers to any more (files are shared by content).

    Called after the deleting transaction commits; a rollback keeps the files.
    For each content, deciding and deleting happen under its lock
    (``results.content_lock``), which a worker also holds while it writes that
    content's outputs and records them in a row: a file one run is about to
    record is never deleted by another. Storage errors are logged, never raised.
    """
    by_content: dict[str | None, list[str]] = {}
    for name in dict.fromkeys(names):
        if name:
            by_content.setdefault(name_sha256(name), []).append(name)
    for sha256, candidates in by_content.items():
        guard = results.content_lock(sha256) if sha256 else contextlib.nullcontext()
        with guard:
            still_used = referenced(candidates)
            for name in candidates:
                if name in still_used:
                    continue
                # A resized file: forget the cached result that points at it.
                results.forget_file(name)
                delete_quietly(name)
