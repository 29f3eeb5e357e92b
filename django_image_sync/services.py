"""The two paths of the app, each one straight line.

Upload (in the request, cheap): check -> hash -> dedup -> store original -> row
``pending`` -> after commit, dispatch the task (see ``receivers.py``).

Worker (in Celery): claim -> cached result? -> resize -> store result -> row
``done`` -> signal.

The HTML view, the JSON API and sites' own scripts all call these functions,
so validation and deduplication behave the same however an image arrives.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import IO, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.cache import caches
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import conf, processing
from .models import (
    Status,
    UploadedImage,
    original_name,
    resized_name,
    resized_name_parts,
    scope_for,
)
from .signals import image_failed, image_processed, image_uploaded
from .storage import image_storage

logger = logging.getLogger("django_image_sync")

# Temporary files are written under this prefix, then renamed into place.
INCOMING_PREFIX = ".incoming-"

# Rows left pending or processing longer than this (seconds) are queued again by
# the sweeper; keep it above the task time limit.
DEFAULT_SWEEP_AGE = 600


# -- errors -----------------------------------------------------------------


@dataclass(frozen=True)
class FileError:
    """One broken rule: which file (None for the submission), which rule, and why."""

    file: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "code": self.code, "message": self.message}


class UploadRejected(Exception):
    """The submission broke a rule; nothing of it was stored."""

    def __init__(self, errors: Sequence[FileError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


class TransientError(Exception):
    """Storage (or the database) failed in a way that a later retry may not."""


# -- the upload path ----------------------------------------------------------


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed every rule, with what validation learnt about it.

    ``duplicate`` is the image that already holds this content in the
    uploader's scope (the content was validated when that image was stored).
    """

    file: IO[bytes]
    name: str
    info: processing.ImageInfo
    md5: str | None = None
    sha256: str | None = None
    duplicate: UploadedImage | None = None


@dataclass(frozen=True)
class UploadOutcome:
    image: UploadedImage
    duplicate: bool


def display_name(name: str | None) -> str:
    """The client's file name made safe to show; it is never used as a path."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip()
    if len(name) > 255:
        stem, ext = os.path.splitext(name)
        name = stem[: 255 - len(ext[:16])] + ext[:16]
    return name


def check_files(files: Sequence[IO[bytes]], owner: Any = None) -> list[CheckedFile]:
    """Check a whole submission against the rules; all of it passes or none.

    Each file is hashed first (one pass, after the byte-size check): content
    already stored in ``owner``'s scope was validated when it was stored, so
    a duplicate skips the decode and is answered at the cost of the hash.
    Raises :class:`UploadRejected` listing every broken rule, each naming the
    file. Nothing is stored here.
    """
    max_files = conf.get("MAX_FILES")
    if not files:
        raise UploadRejected([FileError(None, "required", "no file was sent")])
    if len(files) > max_files:
        raise UploadRejected(
            [
                FileError(
                    None,
                    "max_files",
                    f"{len(files)} files were sent; at most {max_files} are accepted at once",
                )
            ]
        )
    scope = scope_for(_real_owner(owner))
    checked: list[CheckedFile] = []
    errors: list[FileError] = []
    for index, fileobj in enumerate(files, start=1):
        name = display_name(getattr(fileobj, "name", None)) or f"file {index}"
        try:
            checked.append(_check_one(fileobj, name, scope))
        except processing.ImageProblem as problem:
            errors.append(FileError(name, problem.code, f"{name}: {problem.message}"))
    if errors:
        raise UploadRejected(errors)
    return checked


def _check_one(fileobj: IO[bytes], name: str, scope: str) -> CheckedFile:
    size = processing.check_byte_size(fileobj, conf.get("MAX_FILE_SIZE"))
    md5, sha256 = processing.hash_file(fileobj)
    existing = find_duplicate(scope, md5, sha256)
    if existing is not None:
        info = processing.ImageInfo(
            format=existing.format,
            width=existing.width,
            height=existing.height,
            frames=1,
            size=size,
        )
        return CheckedFile(fileobj, name, info, md5, sha256, duplicate=existing)
    info = processing.inspect_image(
        fileobj,
        allowed_formats=conf.get("ALLOWED_FORMATS"),
        max_pixels=conf.get("MAX_PIXELS"),
        max_bytes=conf.get("MAX_FILE_SIZE"),
        **_cost_limits(current_spec()),
    )
    return CheckedFile(fileobj, name, info, md5, sha256)


def _cost_limits(spec: processing.ResizeSpec) -> dict[str, Any]:
    """The decode budgets for ``inspect_image``: what a worker may spend on one image."""
    return {
        "box": spec.box,
        "backend": spec.backend,
        "max_decode_memory": conf.get("MAX_DECODE_MEMORY"),
        "max_jpeg_scans": conf.get("MAX_JPEG_SCANS"),
    }


def _real_owner(owner: Any) -> Any:
    """None for anonymous users: their uploads have no owner."""
    if owner is not None and not getattr(owner, "is_authenticated", True):
        return None
    return owner


def find_duplicate(scope: str, md5: str, sha256: str) -> UploadedImage | None:
    """The image with this content in ``scope``: MD5 finds it, SHA-256 confirms it."""
    candidates = UploadedImage.objects.filter(scope=scope, md5=md5).order_by()
    for candidate in candidates.select_related("owner"):
        if candidate.sha256 == sha256:
            return candidate
    return None


def _write_once(name: str, content: IO[bytes] | File[Any], size: int) -> bool:
    """Store ``content`` (``size`` bytes) at the content-addressed ``name`` unless it is there.

    Returns True when this call wrote the file. Where the storage has local
    paths, the bytes are saved under a temporary name and renamed into place,
    so no reader sees a half-written file and two writers of the same content
    cannot harm each other. A file at ``name`` with another size is the
    remains of a write that was cut off (a killed process): it is replaced.
    """
    storage = image_storage
    if storage.exists(name) and storage.size(name) == size:
        return False
    content.seek(0)
    local_path = _local_path(name)
    if local_path is not None:
        temporary = storage.save(_incoming_name(name), content)
        try:
            os.replace(storage.path(temporary), local_path)
        except BaseException:
            _delete_quietly(temporary)
            raise
        return True
    if storage.exists(name):
        logger.warning("django-image-sync: replacing incomplete file %s", name)
        storage.delete(name)
    saved = storage.save(name, content)
    if saved != name:
        # A concurrent upload of the same bytes wrote ``name`` first and the
        # storage picked another name for ours: keep one copy.
        _delete_quietly(saved)
        return False
    return True


def _incoming_name(name: str) -> str:
    directory, base = posixpath.split(name)
    return posixpath.join(directory, f"{INCOMING_PREFIX}{uuid.uuid4().hex}-{base}")


def _remove_incoming(name: str) -> None:
    """Delete temporary files left by a write of ``name`` that was cut off."""
    if _local_path(name) is None:
        return
    directory, base = posixpath.split(name)
    try:
        _, files = image_storage.listdir(directory)
    except OSError:  # the folder does not exist yet
        return
    for candidate in files:
        if candidate.startswith(INCOMING_PREFIX) and candidate.endswith(f"-{base}"):
            _delete_quietly(posixpath.join(directory, candidate))


def _still_stored(name: str) -> bool:
    try:
        return bool(image_storage.exists(name))
    except Exception as exc:
        raise TransientError(f"cannot check the stored file {name}: {exc}") from exc


def _local_path(name: str) -> str | None:
    try:
        path: str = image_storage.path(name)
    except NotImplementedError:  # remote storages (S3, ...) write objects whole
        return None
    return path


def _ensure_stored(name: str, content: IO[bytes] | File[Any], size: int) -> None:
    """After commit: put back a shared original that a concurrent failure or deletion removed.

    An upload that found its content already stored wrote nothing; if the
    upload or row that owned that file went away before this one committed,
    the file may have been deleted as unreferenced.
    """
    try:
        if not image_storage.exists(name):
            logger.warning("django-image-sync: restoring shared original %s", name)
            _write_once(name, content, size)
    except Exception:
        logger.exception("django-image-sync: could not restore %s", name)


def _delete_quietly(name: str) -> None:
    try:
        image_storage.delete(name)
    except Exception:
        logger.exception("django-image-sync: could not delete stored file %s", name)


def _is_referenced(name: str) -> bool:
    return UploadedImage.objects.filter(Q(original=name) | Q(resized=name)).exists()


def delete_unreferenced(names: Iterable[str]) -> None:
    """Delete stored files no row refers to any more (files are shared by content).

    Called after the deleting transaction commits; a rollback keeps the files.
    Storage errors are logged, never raised.
    """
    for name in names:
        if not name or _is_referenced(name):
            continue
        resized = resized_name_parts(name)
        if resized is not None:
            # A resized file: forget the cached result that points at it.
            _cache_delete(result_cache_key(*resized))
        _delete_quietly(name)


def store_files(checked: Iterable[CheckedFile], owner: Any = None) -> list[UploadOutcome]:
    """Store checked files for ``owner``; identical content is not stored again.

    Runs in one transaction: either every file gets its row, or none does and
    the originals this call wrote are removed again.
    """
    owner = _real_owner(owner)
    scope = scope_for(owner)
    written: list[str] = []
    outcomes: list[UploadOutcome] = []
    try:
        with transaction.atomic():
            for item in checked:
                outcomes.append(_store_one(item, owner, scope, written))
    except Exception:
        for name in written:
            if not _is_referenced(name):
                _delete_quietly(name)
        raise
    for outcome in outcomes:
        transaction.on_commit(
            lambda o=outcome: image_uploaded.send(  # type: ignore[misc]
                sender=UploadedImage, image=o.image, duplicate=o.duplicate
            ),
            robust=True,
        )
    return outcomes


def _store_one(item: CheckedFile, owner: Any, scope: str, written: list[str]) -> UploadOutcome:
    if item.duplicate is not None:
        return UploadOutcome(item.duplicate, duplicate=True)
    if item.md5 and item.sha256:
        md5, sha256 = item.md5, item.sha256
    else:
        md5, sha256 = processing.hash_file(item.file)
    # Not looked up again: if an earlier file of this submission or a
    # concurrent upload stored the same content since the check, the unique
    # constraint refuses the insert below and that row is the answer.
    name = original_name(sha256, item.info.extension)
    if _write_once(name, item.file, item.info.size):
        written.append(name)
    else:
        transaction.on_commit(partial(_ensure_stored, name, item.file, item.info.size), robust=True)
    image = UploadedImage(
        original=name,
        original_name=item.name,
        md5=md5,
        sha256=sha256,
        scope=scope,
        status=Status.PENDING,
        width=item.info.width,
        height=item.info.height,
        format=item.info.format,
        size=item.info.size,
        owner=owner,
    )
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:
        # An identical upload in the same scope committed first; it is the image.
        existing = find_duplicate(scope, md5, sha256)
        if existing is None:
            raise
        return UploadOutcome(existing, duplicate=True)
    return UploadOutcome(image, duplicate=False)


def upload_images(files: Sequence[IO[bytes]], owner: Any = None) -> list[UploadOutcome]:
    """Check and store files in one call: the entry point for sites' own code."""
    return store_files(check_files(files, owner=owner), owner=owner)


def visible_images(user: Any) -> Any:
    """The images ``user`` may see: their own, or everyone's with a global scope."""
    images = UploadedImage.objects.select_related("owner")
    if conf.get("DEDUP_SCOPE") == "global":
        return images.all()
    if user is None or not user.is_authenticated:
        return images.filter(owner__isnull=True)
    return images.filter(owner=user)


# -- the worker path ----------------------------------------------------------


def current_spec() -> processing.ResizeSpec:
    box = conf.get("TARGET_SIZE")
    background = conf.get("BACKGROUND_COLOR")
    return processing.ResizeSpec(
        box=(int(box[0]), int(box[1])),
        format=conf.get("OUTPUT_FORMAT").upper(),
        quality=int(conf.get("QUALITY")),
        background=(int(background[0]), int(background[1]), int(background[2])),
        backend=processing.backend_name(str(conf.get("BACKEND"))),
    )


def result_cache_key(sha256: str, spec: processing.ResizeSpec | str) -> str:
    spec_key = spec if isinstance(spec, str) else spec.key
    return f"image_sync:resized:{sha256}:{spec_key}"


def _cache_get(key: str) -> dict[str, Any] | None:
    try:
        value = caches[conf.get("CACHE")].get(key)
    except Exception:
        # The cache only saves work; without it everything still runs.
        logger.warning("django-image-sync: cache read failed for %s", key, exc_info=True)
        return None
    return value if isinstance(value, dict) else None


def _cache_set(key: str, value: dict[str, Any]) -> None:
    try:
        caches[conf.get("CACHE")].set(key, value, conf.get("CACHE_TIMEOUT"))
    except Exception:
        logger.warning("django-image-sync: cache write failed for %s", key, exc_info=True)


def _cache_delete(key: str) -> None:
    try:
        caches[conf.get("CACHE")].delete(key)
    except Exception:
        logger.warning("django-image-sync: cache delete failed for %s", key, exc_info=True)


def _known_result(image: UploadedImage, name: str) -> dict[str, Any] | None:
    """A result another row already has for the same content and settings."""
    twin = (
        UploadedImage.objects.filter(sha256=image.sha256, resized=name, status=Status.DONE)
        .exclude(pk=image.pk)
        .values("resized_width", "resized_height")
        .first()
    )
    if twin is None:
        return None
    return {"name": name, "width": twin["resized_width"], "height": twin["resized_height"]}


def claim(image_id: int) -> UploadedImage | None:
    """Take a row for processing; None when it is done, failed or gone."""
    image = UploadedImage.objects.filter(pk=image_id).first()
    if image is None or image.status not in (Status.PENDING, Status.PROCESSING):
        return None
    attempts = image.attempts + 1
    # Conditional on the attempts we read: of two tasks claiming the same row at
    # once (a redelivery racing a retry), only one wins.
    claimed = UploadedImage.objects.filter(attempts=image.attempts).transition(
        image_id, Status.PROCESSING, attempts=attempts
    )
    if not claimed:
        return None
    image.status = Status.PROCESSING
    image.attempts = attempts
    return image


def process_image(image_id: int, *, force: bool = False) -> str:
    """Run the worker path for one image. Returns the image's status afterwards.

    Idempotent: a done or failed image is left alone. A result cached for the
    same content and settings is reused without resizing. ``force`` skips the
    cache and writes the resized file again (used by "reprocess").
    Raises :class:`TransientError` for failures worth a retry.
    """
    image = claim(image_id)
    if image is None:
        return "skipped"
    max_attempts = conf.get("MAX_ATTEMPTS")
    if image.attempts > max_attempts:
        return fail_image(image_id, f"gave up after {max_attempts} attempts")

    spec = current_spec()
    name = resized_name(image.sha256, spec.key, spec.extension)
    key = result_cache_key(image.sha256, spec)
    result = None if force else (_cache_get(key) or _known_result(image, name))
    if result is not None and not _still_stored(result["name"]):
        # The cache (or a row) outlived the file: a deletion whose cache
        # clean-up failed, or a per-process cache. Resize again.
        _cache_delete(key)
        result = None
    if result is None:
        try:
            with image_storage.open(str(image.original.name), "rb") as fh:
                data = fh.read()
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            raise TransientError(f"cannot read the original {image.original.name}: {exc}") from exc
        too_costly = _over_budget(data, spec)
        if too_costly is not None:
            return fail_image(image_id, f"{image.original_name}: {too_costly}")
        try:
            resize = processing.resizer_for(spec.backend)
        except (ImportError, OSError) as exc:
            # pyvips or libvips missing on this worker: the image is fine and
            # can be resized once they are installed (check E011 says how).
            raise TransientError(f"the {spec.backend} backend cannot be loaded: {exc}") from exc
        try:
            output = resize(io.BytesIO(data), spec)
        except SoftTimeLimitExceeded:
            raise  # the task marks the image failed (PROCESSING_TIME_LIMIT)
        except Exception as exc:
            # The bytes passed validation but cannot be processed: retrying
            # the same bytes cannot help.
            return fail_image(image_id, f"the image cannot be processed: {exc}")
        try:
            if force and image_storage.exists(name):
                image_storage.delete(name)
            if image.attempts > 1:
                # An earlier attempt may have been killed while writing.
                _remove_incoming(name)
            _write_once(name, ContentFile(output.data), len(output.data))
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            raise TransientError(f"cannot store the resized file {name}: {exc}") from exc
        result = {"name": name, "width": output.width, "height": output.height}
        _cache_set(key, result)

    moved = UploadedImage.objects.transition(
        image_id,
        Status.DONE,
        resized=result["name"],
        resized_width=result["width"],
        resized_height=result["height"],
        error="",
    )
    if moved:
        logger.info(
            "django-image-sync: image %s done (%sx%s)", image_id, result["width"], result["height"]
        )
        image.refresh_from_db()
        image_processed.send(sender=UploadedImage, image=image)
        return Status.DONE
    return "skipped"


def _over_budget(data: bytes, spec: processing.ResizeSpec) -> str | None:
    """Why resizing ``data`` would cost more than the worker allows now, if it would.

    The upload was checked against the same budgets; this second look covers
    budgets lowered since, or a backend changed, before anything is decoded.
    Other problems are left to the decoder, whose own message is clearer.
    """
    try:
        processing.inspect_image(
            io.BytesIO(data),
            allowed_formats=conf.SUPPORTED_INPUT_FORMATS,
            max_pixels=conf.get("MAX_PIXELS"),
            **_cost_limits(spec),
        )
    except processing.ImageProblem as problem:
        if problem.code in ("max_decode_memory", "max_jpeg_scans", "max_pixels"):
            return problem.message
    return None


def fail_image(image_id: int, error: str) -> str:
    """Mark an image failed with a readable error and tell the site."""
    if UploadedImage.objects.transition(image_id, Status.FAILED, error=error[:2000]):
        logger.warning("django-image-sync: image %s failed: %s", image_id, error)
        image = UploadedImage.objects.get(pk=image_id)
        image_failed.send(sender=UploadedImage, image=image, error=image.error)
        return Status.FAILED
    return "skipped"


def sweep(older_than: float, *, limit: int = 500) -> list[int]:
    """Queue again the images left ``pending`` or ``processing`` too long.

    ``pending`` rows whose dispatch never reached the broker, and
    ``processing`` rows whose worker died, older than ``older_than`` seconds
    (keep it above the task time limit so a live worker is not raced).
    Returns the ids queued.
    """
    from .tasks import dispatch

    cutoff = timezone.now() - timedelta(seconds=older_than)
    stale = list(
        UploadedImage.objects.filter(
            status__in=(Status.PENDING, Status.PROCESSING), updated__lt=cutoff
        )
        .order_by("updated")
        .values_list("pk", flat=True)[:limit]
    )
    queued = []
    for pk in stale:
        # Touch the row first so the next sweep does not queue it again at once.
        UploadedImage.objects.filter(pk=pk, updated__lt=cutoff).update(updated=timezone.now())
        if dispatch(pk):
            queued.append(pk)
    return queued


def reprocess(images: Iterable[UploadedImage]) -> int:
    """Start images over (admin action); each is dispatched after commit."""
    from .tasks import dispatch

    count = 0
    for image in images:
        if UploadedImage.objects.transition(image.pk, Status.PENDING, error="", attempts=0):
            transaction.on_commit(partial(dispatch, image.pk, force=True), robust=True)
            count += 1
    return count
