"""The result cache: what a resize produced, by content and settings, so nothing is
resized twice. Any Django cache (``IMAGE_SYNC["CACHE"]``); it only saves work."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches

from . import conf, processing
from .models import Status, UploadedImage, resized_name_parts

logger = logging.getLogger("django_image_sync")


def result_cache_key(sha256: str, spec: processing.ResizeSpec | str) -> str:
    spec_key = spec if isinstance(spec, str) else spec.key
    return f"image_sync:resized:{sha256}:{spec_key}"


def cached(key: str) -> dict[str, Any] | None:
    try:
        value = caches[conf.get("CACHE")].get(key)
    except Exception:
        # The cache only saves work; without it everything still runs.
        logger.warning("django-image-sync: cache read failed for %s", key, exc_info=True)
        return None
    return value if isinstance(value, dict) else None


def remember(key: str, value: dict[str, Any]) -> None:
    try:
        caches[conf.get("CACHE")].set(key, value, conf.get("CACHE_TIMEOUT"))
    except Exception:
        logger.warning("django-image-sync: cache write failed for %s", key, exc_info=True)


def forget(key: str) -> None:
    try:
        caches[conf.get("CACHE")].delete(key)
    except Exception:
        logger.warning("django-image-sync: cache delete failed for %s", key, exc_info=True)


def known_result(image: UploadedImage, name: str) -> dict[str, Any] | None:
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


def forget_file(name: str) -> None:
    """Forget the cached result stored as ``name``, if it is a resized file's name."""
    parts = resized_name_parts(name)
    if parts is not None:
        forget(result_cache_key(*parts))
