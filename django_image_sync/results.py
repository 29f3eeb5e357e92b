"""The result cache: what a resize produced, by content and settings, so nothing is
resized twice. Any Django cache (``IMAGE_SYNC["CACHE"]``); it only saves work."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from django.core.cache import caches

from . import conf, processing
from .models import Status, UploadedImage, resized_name, resized_name_parts

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


def cached_result(key: str, plan: processing.RenditionPlan) -> dict[str, Any] | None:
    """The cached result for ``key`` if it holds every output ``plan`` asks for.

    One entry per content and main output settings; it records the plan it
    was made for, so a result of other rendition settings is not reused.
    """
    value = cached(key)
    if value is None or value.get("plan") != plan.key or "renditions" not in value:
        return None
    return value


def known_result(image: UploadedImage, plan: processing.RenditionPlan) -> dict[str, Any] | None:
    """A result another row already has for the same content and settings."""
    main = resized_name(image.sha256, plan.main.key, plan.main.extension)
    twins = UploadedImage.objects.filter(
        sha256=image.sha256, resized=main, status=Status.DONE
    ).exclude(pk=image.pk)[:5]
    for twin in twins:
        if twin.is_current(plan):
            return result_of(twin, plan)
    return None


def result_of(image: UploadedImage, plan: processing.RenditionPlan) -> dict[str, Any]:
    """A done row's outputs as a result (what the cache holds)."""
    return {
        "plan": plan.key,
        "name": str(image.resized.name),
        "width": image.resized_width,
        "height": image.resized_height,
        "renditions": list(image.renditions),
        "placeholder": image.placeholder,
    }


@contextlib.contextmanager
def exclusive(name: str, seconds: float) -> Iterator[bool]:
    """Hold a lock named ``name`` in the cache for at most ``seconds``; yields whether
    it was taken (True too when the cache cannot be reached: it only guards)."""
    key = f"image_sync:lock:{name}"
    cache = caches[conf.get("CACHE")]
    try:
        taken = bool(cache.add(key, os.getpid(), seconds))
    except Exception:
        logger.warning("django-image-sync: cache lock %s not taken", key, exc_info=True)
        yield True
        return
    try:
        yield taken
    finally:
        if taken:
            with contextlib.suppress(Exception):
                cache.delete(key)


def forget_file(name: str) -> None:
    """Forget the cached result stored as ``name``, if it is a resized file's name."""
    parts = resized_name_parts(name)
    if parts is not None:
        forget(result_cache_key(*parts))
