"""The files a test run stored: under ``MEDIA_ROOT``, or in the test bucket when the
run keeps the app's files on S3 (``IMAGE_SYNC_TEST_S3=1``, see ``tests.support.s3``).

Read straight from the disk or the bucket, never through the app's storage.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tests.support import s3


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def stored_files(kind: str | None = None) -> list[str]:
    """Stored files (or those under the app's ``kind`` folder), as sorted names."""
    if s3.enabled():
        return s3.keys(s3.session_url(), f"image_sync/{kind}/" if kind else "")
    root = media_root()
    base = root / "image_sync" / kind if kind else root
    if not base.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())


def stored_url(name: str) -> str:
    """The URL the site gives for stored file ``name``."""
    if s3.enabled():
        return f"{s3.session_url()}/{s3.BUCKET}/{name}"
    return f"{settings.MEDIA_URL}{name}"


def is_stored(name: str) -> bool:
    if s3.enabled():
        return name in s3.keys(s3.session_url(), name)
    return (media_root() / name).is_file()


def read_stored(name: str) -> bytes:
    if s3.enabled():
        return s3.read(s3.session_url(), name)
    return (media_root() / name).read_bytes()


def forget_stored_files() -> None:
    """Empty the store between tests (the bucket on S3; MEDIA_ROOT is the caller's)."""
    if s3.enabled():
        s3.empty_bucket(s3.session_url())
