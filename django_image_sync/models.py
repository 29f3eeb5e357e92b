"""The stored image, its state machine, and the one place that names stored files."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf
from .processing import FORMAT_MIME_TYPES, SPEC_KEY_LENGTH, RenditionPlan, fit_within
from .storage import file_url, get_output_storage, get_storage
from .wording import failure_message


class Status:
    """The states of an image. Plain strings: they are stored and sent as JSON."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    choices = (
        (PENDING, _("Pending")),
        (PROCESSING, _("Processing")),
        (DONE, _("Done")),
        (FAILED, _("Failed")),
    )


# Which states a row may move to a state from. Every status change goes
# through ``UploadedImageQuerySet.transition`` and so through this table.
TRANSITION_SOURCES: dict[str, frozenset[str]] = {
    # claimed by a worker; a redelivered task may claim a row still "processing"
    Status.PROCESSING: frozenset({Status.PENDING, Status.PROCESSING}),
    Status.DONE: frozenset({Status.PROCESSING}),
    Status.FAILED: frozenset({Status.PENDING, Status.PROCESSING}),
    # "reprocess" starts a row over: done, failed, or stuck in processing
    Status.PENDING: frozenset({Status.PROCESSING, Status.DONE, Status.FAILED}),
}


def scope_for(owner: Any) -> str:
    """The deduplication scope an upload by ``owner`` belongs to."""
    if conf.get("DEDUP_SCOPE") == "global":
        return "global"
    if owner is None or not getattr(owner, "pk", None):
        return "anonymous"
    return f"user:{owner.pk}"


def _hashed_dir(sha256: str) -> str:
    return f"{conf.get('UPLOAD_TO').strip('/')}/{{kind}}/{sha256[:2]}/{sha256[2:4]}"


def original_name(sha256: str, extension: str) -> str:
    """Storage name of an original: content-addressed, so written once and shared."""
    return f"{_hashed_dir(sha256).format(kind='originals')}/{sha256}.{extension}"


def resized_name(sha256: str, spec_key: str, extension: str) -> str:
    """Storage name of a resized file: the content hash plus the resize settings."""
    return f"{_hashed_dir(sha256).format(kind='resized')}/{sha256}-{spec_key}.{extension}"


def output_entries(
    sha256: str, plan: RenditionPlan, main_size: tuple[int, int]
) -> list[dict[str, Any]]:
    """The outputs ``plan`` asks for, as the row records them (without ``size``),
    for a main output of ``main_size``: known before any pixel is decoded."""
    return [
        {
            "format": planned.format,
            "width": planned.width,
            "height": planned.height,
            "name": resized_name(sha256, planned.key, planned.encoding.extension),
        }
        for planned in plan.outputs(main_size)
    ]


def main_size(image: UploadedImage, plan: RenditionPlan) -> tuple[int, int]:
    """The size the row's main output has (same settings) or will have (new settings)."""
    if image.resized_width and image.resized_height and image.is_current_main(plan):
        return image.resized_width, image.resized_height
    return fit_within(image.width, image.height, plan.main.box)


def name_sha256(name: str) -> str | None:
    """The content hash a stored name of the app starts with, else None."""
    stem = posixpath.basename(name).split(".", 1)[0].split("-", 1)[0]
    return stem if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) else None


def resized_name_parts(name: str) -> tuple[str, str] | None:
    """``(sha256, spec_key)`` of a name made by :func:`resized_name`, else None.

    Also reads names a storage made unique by appending a suffix to the stem.
    """
    stem = posixpath.basename(name).rsplit(".", 1)[0]
    if "-" not in stem:
        return None
    sha256, spec_key = stem.split("-", 1)
    return sha256, spec_key[:SPEC_KEY_LENGTH]


class UploadedImageQuerySet(models.QuerySet["UploadedImage"]):
    def transition(self, pk: int, to: str, **fields: Any) -> bool:
        """Move row ``pk`` to status ``to`` if the state machine allows it.

        A single conditional UPDATE, so two workers racing for the same row
        cannot both win. Returns whether the row moved.
        """
        sources = TRANSITION_SOURCES[to]
        fields.setdefault("updated", timezone.now())
        moved = self.filter(pk=pk, status__in=sources).update(status=to, **fields)
        return bool(moved)

    def for_scope(self, scope: str) -> UploadedImageQuerySet:
        return self.filter(scope=scope)


class UploadedImage(models.Model):
    original = models.FileField(_("original"), storage=get_storage, max_length=255)
    resized = models.FileField(_("resized"), storage=get_output_storage, max_length=255, blank=True)
    original_name = models.CharField(
        _("uploaded file name"),
        max_length=255,
        blank=True,
        help_text=_("The name the client sent; display only, never a storage path."),
    )
    md5 = models.CharField(_("MD5"), max_length=32, db_index=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    scope = models.CharField(
        _("deduplication scope"),
        max_length=64,
        editable=False,
        help_text=_('"user:<id>", "anonymous" or "global": where identical content is shared.'),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    error = models.TextField(_("error"), blank=True)
    # What ``error`` says, as a code and its figures, so it can be shown in the
    # reader's language (``error_text``); ``error`` stays English, for logs.
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_params = models.JSONField(_("error figures"), default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(_("processing attempts"), default=0)
    # After temporary failures outlasted the task's own retries: when the
    # sweeper queues the image again, and since when it has been failing
    # (RETRY_HORIZON counts from there).
    retry_at = models.DateTimeField(_("next try"), null=True, blank=True, editable=False)
    retrying_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    format = models.CharField(_("format"), max_length=10)
    size = models.PositiveBigIntegerField(_("size in bytes"))
    resized_width = models.PositiveIntegerField(_("resized width"), null=True, blank=True)
    resized_height = models.PositiveIntegerField(_("resized height"), null=True, blank=True)
    renditions = models.JSONField(
        _("renditions"),
        default=list,
        blank=True,
        editable=False,
        help_text=_("Every stored output, the main one first: format, width, height, name, size."),
    )
    placeholder = models.TextField(
        _("placeholder"),
        blank=True,
        editable=False,
        help_text=_("A tiny blurred preview as a data: URI, shown while the image loads."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="uploaded_images",
        verbose_name=_("owner"),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    objects = UploadedImageQuerySet.as_manager()

    class Meta:
        verbose_name = _("uploaded image")
        verbose_name_plural = _("uploaded images")
        ordering = ("-created", "-id")
        constraints = (
            # The database, not a check-then-insert, decides a race between two
            # uploads of the same bytes in the same scope.
            models.UniqueConstraint(
                fields=("scope", "sha256"), name="image_sync_unique_content_in_scope"
            ),
        )
        indexes = (
            models.Index(fields=("status", "updated"), name="image_sync_status_updated"),
            # The sweeper's images waiting for their next try.
            models.Index(fields=("retry_at",), name="image_sync_retry_at"),
            # Every row of one content: twins, and whether a stored file is
            # still referenced (files.is_referenced).
            models.Index(fields=("sha256",), name="image_sync_sha256"),
        )

    def __str__(self) -> str:
        return self.original_name or f"image {self.pk}"

    @property
    def error_text(self) -> str:
        """Why the image failed, in the active language (``error`` is English)."""
        if not self.error or not self.error_code:
            return self.error
        return failure_message(self.error_code, self.error_params or {}, self.error)

    @property
    def is_done(self) -> bool:
        return self.status == Status.DONE and bool(self.resized)

    @property
    def resized_url(self) -> str | None:
        """URL of the resized file once processed, else None. No storage I/O."""
        return file_url(str(self.resized.name)) if self.is_done else None

    @property
    def outputs(self) -> list[Rendition]:
        """The stored outputs (renditions), main one first; empty until done."""
        if not self.is_done:
            return []
        return [Rendition.from_entry(entry) for entry in self.renditions or ()]

    def stored_names(self) -> list[str]:
        """Every file this row refers to: the original, the main output, the renditions."""
        return [name for name in [str(self.original.name or ""), *self.output_names()] if name]

    def output_names(self) -> list[str]:
        """The files made from the original: the main output and the renditions."""
        names = [str(self.resized.name or "")]
        names += [str(entry.get("name") or "") for entry in self.renditions or ()]
        return [name for name in dict.fromkeys(names) if name]

    def is_current_main(self, plan: RenditionPlan) -> bool:
        """Whether the row's main output is the one ``plan`` asks for."""
        return self.resized.name == resized_name(self.sha256, plan.main.key, plan.main.extension)

    def is_current(self, plan: RenditionPlan) -> bool:
        """Whether the row is done with exactly the outputs ``plan`` asks for."""
        if self.status != Status.DONE or not self.is_current_main(plan) or not self.resized_width:
            return False
        expected = output_entries(self.sha256, plan, (self.resized_width, self.resized_height or 0))
        have = {entry.get("name") for entry in self.renditions or ()}
        return have == {entry["name"] for entry in expected} and (
            bool(self.placeholder) == plan.placeholder
        )


@dataclass(frozen=True)
class Rendition:
    """One stored output of an image, read from the row (no storage I/O but ``url``)."""

    format: str
    width: int
    height: int
    name: str
    size: int

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Rendition:
        return cls(
            format=str(entry["format"]),
            width=int(entry["width"]),
            height=int(entry["height"]),
            name=str(entry["name"]),
            size=int(entry.get("size") or 0),
        )

    @property
    def url(self) -> str:
        """The storage's URL for the file: string work, no storage call."""
        return file_url(self.name)

    @property
    def mime_type(self) -> str:
        return FORMAT_MIME_TYPES[self.format]
