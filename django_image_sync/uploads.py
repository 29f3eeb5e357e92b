"""The upload path, in the request: check a submission (bytes, hash, duplicates,
validation), then store it (content-addressed originals, rows ``pending``).

The HTML view, the JSON API and sites' own code all call these functions, so
validation and deduplication behave the same however an image arrives.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import conf, files, processing
from .models import Status, UploadedImage, original_name, scope_for
from .signals import image_uploaded
from .wording import problem_message


@dataclass(frozen=True)
class FileError:
    """One broken rule: which file (None for the submission), which rule, and why.

    ``message`` is in the language active when the error was made (the
    request's); ``params`` are the figures it names, as JSON types (sizes in
    bytes, pixel counts, format names: see :class:`~.processing.ImageProblem`),
    for clients that word the message themselves.
    """

    file: str | None
    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # file, code, message, params


class UploadRejected(Exception):
    """The submission broke a rule; nothing of it was stored."""

    def __init__(self, errors: Sequence[FileError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


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
    #: ``conf.budgets_key`` of the budgets the file was checked against ("": unknown).
    budgets: str = ""


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
        raise UploadRejected([FileError(None, "required", _("no file was sent"))])
    if len(files) > max_files:
        message = ngettext(
            "%(count)s files were sent; at most %(limit)s is accepted at once",
            "%(count)s files were sent; at most %(limit)s are accepted at once",
            max_files,
        ) % {"count": number_format(len(files)), "limit": number_format(max_files)}
        params = {"count": len(files), "limit": max_files}
        raise UploadRejected([FileError(None, "max_files", message, params)])
    scope = scope_for(_real_owner(owner))
    checked: list[CheckedFile] = []
    errors: list[FileError] = []
    for index, fileobj in enumerate(files, start=1):
        name = display_name(getattr(fileobj, "name", None)) or _("file %(number)s") % {
            "number": index
        }
        try:
            checked.append(_check_one(fileobj, name, scope))
        except processing.ImageProblem as problem:
            message = _("%(file)s: %(problem)s") % {
                "file": name,
                "problem": problem_message(problem),
            }
            errors.append(FileError(name, problem.code, message, dict(problem.params)))
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
    spec = conf.resize_spec()
    info = processing.inspect_image(
        fileobj,
        allowed_formats=conf.get("ALLOWED_FORMATS"),
        max_bytes=conf.get("MAX_FILE_SIZE"),
        **conf.cost_limits(spec),
    )
    return CheckedFile(fileobj, name, info, md5, sha256, budgets=conf.budgets_key(spec))


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
            if not files.is_referenced(name):
                files.delete_quietly(name)
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
    try:
        wrote = files.write_once(name, item.file, item.info.size)
    except Exception as exc:
        # Whatever the backend raises (OSError, botocore's errors, ...): the
        # views answer 503, and store_files removes what this submission wrote.
        raise files.StorageUnavailable(f"cannot store {name}: {exc}") from exc
    if wrote:
        written.append(name)
    if not wrote or files.is_remote():
        # After commit, the file must still be there: a concurrent upload of
        # the same bytes that failed may have removed it as its own (on object
        # storages every writer writes, so every writer checks: one HEAD).
        transaction.on_commit(
            partial(files.ensure_stored, name, item.file, item.info.size), robust=True
        )
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
    # Sent with the resize task (receivers.dispatch_new_image): a worker with
    # the same budgets does not check the file's cost a second time.
    image._image_sync_budgets = item.budgets  # type: ignore[attr-defined]
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
