"""Rows made straight in the database, for pages and the admin: no upload, no files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django_image_sync import conf
from django_image_sync.models import UploadedImage, output_entries

STATUSES = ("done", "pending", "processing", "failed")


def recorded_outputs(sha256: str, main_size: tuple[int, int]) -> list[dict[str, Any]]:
    """The outputs the settings give a main output of ``main_size``, as a done row
    records them (sizes made up; the files do not exist)."""
    entries = output_entries(sha256, conf.output_plan(), main_size)
    return [{**entry, "size": 1000 + index} for index, entry in enumerate(entries)]


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
        # A done row has the outputs the settings ask for: 1200x900 in every
        # format, and at 480 and 960 (its <picture> has 9 URLs).
        outputs = recorded_outputs(sha, (1200, 900)) if done else []
        rows.append(
            UploadedImage.objects.create(
                original=f"image_sync/originals/{sha[:2]}/{sha[2:4]}/{sha}.jpg",
                resized=outputs[0]["name"] if done else "",
                renditions=outputs,
                placeholder="data:image/webp;base64,UklGRg==" if done else "",
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
                resized_width=1200 if done else None,
                resized_height=900 if done else None,
                owner=owner,
            )
        )
    return rows
