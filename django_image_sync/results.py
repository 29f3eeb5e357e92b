"""The result cache: what a resize produced, by content and settings, so nothing is
resized twice. Any Django cache (``IMAGE_SYNC["CACHE"]``); it only saves work."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
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


# How long the backfill can read what the last refresh of an image came to.
REFRESH_OUTCOME_TIMEOUT = 24 * 60 * 60


def note_refresh(image_id: int, outcome: str) -> None:
    """Record what the last refresh of an image came to, for ``image_sync_backfill``."""
    try:
        caches[conf.get("CACHE")].set(
            f"image_sync:refreshed:{image_id}", outcome, REFRESH_OUTCOME_TIMEOUT
        )
    except Exception:
        logger.warning("django-image-sync: cache write failed", exc_info=True)


def refresh_outcomes(image_ids: list[int]) -> dict[int, str]:
    """The recorded outcomes of the last refreshes of these images (where known)."""
    keys = {f"image_sync:refreshed:{pk}": pk for pk in image_ids}
    try:
        found = caches[conf.get("CACHE")].get_many(list(keys))
    except Exception:
        return {}
    return {keys[key]: str(value) for key, value in found.items()}


def forget_refreshes(image_ids: list[int]) -> None:
    try:
        caches[conf.get("CACHE")].delete_many([f"image_sync:refreshed:{pk}" for pk in image_ids])
    except Exception:
        logger.warning("django-image-sync: cache delete failed", exc_info=True)


# How long a lock holder may take (writing one image's outputs and updating its
# row), and how long another waits for it before going on without it.
LOCK_TTL = 120
# A lock released this long before its ttl runs out is deleted without first
# checking that it is still the holder's (seconds).
LOCK_MARGIN = 2.0
CONTENT_LOCK_WAIT = 60
_held = threading.local()


_HOST = socket.gethostname()


def _break_if_dead(cache: Any, key: str) -> None:
    """Free a lock whose holder was a process of this host that is gone (a worker
    killed mid-write): its task is redelivered here and would wait out the ttl."""
    holder = cache.get(key)
    if not isinstance(holder, str) or holder.count(":") < 3:
        return
    host, pid = holder.split(":", 2)[:2]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        if cache.get(key) == holder:
            logger.warning(
                "django-image-sync: freeing %s, held by process %s that is gone", key, pid
            )
            cache.delete(key)
    except OSError:
        return  # alive, under another user


@contextlib.contextmanager
def lock(name: str, *, wait: float = 0, ttl: float = LOCK_TTL) -> Iterator[bool]:
    """Hold the lock ``name`` (in the result cache, shared by every process when the
    cache is) for at most ``ttl`` seconds, waiting up to ``wait`` for it. Yields
    whether it is held; re-entrant within a thread. An unreachable cache yields
    True: the lock guards against races, it must never stop the work.
    """
    held: set[str] = getattr(_held, "names", None) or set()
    _held.names = held
    if name in held:
        yield True
        return
    key = f"image_sync:lock:{name}"
    token = f"{_HOST}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex}"
    cache = caches[conf.get("CACHE")]
    deadline = time.monotonic() + wait
    taken = False
    try:
        while not (taken := bool(cache.add(key, token, ttl))) and time.monotonic() < deadline:
            _break_if_dead(cache, key)
            time.sleep(0.05)
    except Exception:
        logger.warning("django-image-sync: lock %s not taken", key, exc_info=True)
        taken = True
    if not taken:
        yield False
        return
    held.add(name)
    taken_at = time.monotonic()
    try:
        yield True
    finally:
        held.discard(name)
        with contextlib.suppress(Exception):
            # Still ours for sure well within the ttl: one command. Later it may
            # have run out and be another holder's: look before deleting.
            if time.monotonic() - taken_at < ttl - LOCK_MARGIN or cache.get(key) == token:
                cache.delete(key)


@contextlib.contextmanager
def content_lock(sha256: str) -> Iterator[None]:
    """Serialise, for one content, what could otherwise lose a shared file: writing
    its outputs and recording them in a row, and deciding that its files are
    unreferenced and deleting them (``files.delete_unreferenced``). Goes on
    without the lock after waiting ``CONTENT_LOCK_WAIT`` seconds (logged)."""
    with lock(f"content:{sha256}", wait=CONTENT_LOCK_WAIT) as taken:
        if not taken:
            logger.warning("django-image-sync: content %s still locked; going on", sha256)
        yield


def forget_file(name: str) -> None:
    """Forget the cached results that may point at the stored file ``name``: the one
    its name gives (a main output), and the current settings' result for its content
    (whose renditions it may be one of)."""
    parts = resized_name_parts(name)
    if parts is None:
        return
    forget(result_cache_key(*parts))
    current = result_cache_key(parts[0], conf.resize_spec())
    value = cached(current)
    if value is not None and any(
        entry.get("name") == name for entry in value.get("renditions") or ()
    ):
        forget(current)
