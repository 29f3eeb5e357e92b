"""The files a test run stored under ``MEDIA_ROOT`` (the app's storage in the tests)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def stored_files(kind: str | None = None) -> list[str]:
    """Files under MEDIA_ROOT (or under the app's ``kind`` folder), as sorted names."""
    root = media_root()
    base = root / "image_sync" / kind if kind else root
    if not base.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
