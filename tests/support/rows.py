"""Rows made straight in the database, for pages and the admin: no upload, no files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django_image_sync.models import UploadedImage

STATUSES = ("done", "pending", "processing", "failed")


def make_rows(
    owner: Any,
    count: int,
    start: int = 0,
    *,
    label: str = "row",
    statuses: Sequence[str] = STATUSES,
) -> list[UploadedImage]:
    """``count`` rows of ``owner``, taking ``statuses`` in turn; their files do not exist."""
    rows = []
    for i in range(start, start + count):
        sha = hashlib.sha256(f"{label}-{i}".encode()).hexdigest()
        status = statuses[i % len(statuses)]
        done = status == "done"
        rows.append(
            UploadedImage.objects.create(
                original=f"image_sync/originals/{sha[:2]}/{sha[2:4]}/{sha}.jpg",
                resized=f"image_sync/resized/{sha[:2]}/{sha[2:4]}/{sha}-k.jpg" if done else "",
                original_name=f"row-{i}.jpg",
                md5=hashlib.md5(sha.encode(), usedforsecurity=False).hexdigest(),
                sha256=sha,
                scope=f"user:{owner.pk}",
                status=status,
                error="broken" if status == "failed" else "",
                width=640,
                height=480,
                format="JPEG",
                size=1234,
                resized_width=64 if done else None,
                resized_height=48 if done else None,
                owner=owner,
            )
        )
    return rows
