"""The admin: browse and search uploaded images, see their status, and reprocess them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import queue
from .models import UploadedImage


@admin.register(UploadedImage)
class UploadedImageAdmin(admin.ModelAdmin):
    list_display = (
        "thumbnail",
        "__str__",
        "owner",
        "status",
        "format",
        "dimensions",
        "size",
        "created",
    )
    list_display_links = ("thumbnail", "__str__")
    list_filter = ("status", "format", "created")
    search_fields = ("=md5", "=sha256", "original_name")
    list_select_related = ("owner",)
    date_hierarchy = "created"
    actions = ("reprocess",)
    readonly_fields = (
        "thumbnail",
        "original",
        "resized",
        "original_name",
        "md5",
        "sha256",
        "scope",
        "status",
        "failure",
        "attempts",
        "retry_at",
        "retrying_since",
        "width",
        "height",
        "format",
        "size",
        "resized_width",
        "resized_height",
        "renditions_summary",
        "created",
        "updated",
    )
    fields = ("thumbnail", "owner", *readonly_fields[1:])

    @admin.display(description=_("preview"))
    def thumbnail(self, obj: UploadedImage) -> str:
        # The smallest file in the main format: every browser shows it.
        outputs = [o for o in obj.outputs if o.format == obj.outputs[0].format]
        url = min(outputs, key=lambda o: o.width).url if outputs else obj.resized_url
        if not url:
            return "—"
        return format_html(
            '<img src="{}" alt="" loading="lazy" style="max-width:120px;max-height:80px">', url
        )

    @admin.display(description=_("error"))
    def failure(self, obj: UploadedImage) -> str:
        return obj.error_text or "—"

    @admin.display(description=_("renditions"))
    def renditions_summary(self, obj: UploadedImage) -> str:
        summary = (
            f"{o.format} {o.width}×{o.height} ({filesizeformat(o.size)})"  # noqa: RUF001
            for o in obj.outputs
        )
        return ", ".join(summary) or "—"

    @admin.display(description=_("dimensions"))
    def dimensions(self, obj: UploadedImage) -> str:
        return f"{obj.width}×{obj.height}"  # noqa: RUF001

    @admin.action(description=_("Reprocess selected images"))
    def reprocess(self, request: HttpRequest, queryset: QuerySet[UploadedImage]) -> None:
        count = queue.reprocess(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d image queued for reprocessing.",
                "%(count)d images queued for reprocessing.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Images arrive through the upload path (validation, hashing, dedup).
        return False
