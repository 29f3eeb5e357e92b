"""The worker path, in Celery: claim a row, reuse a known result or resize the original
once, store the result, and move the row to ``done`` or ``failed``."""

from __future__ import annotations

import io
import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile

from . import conf, files, processing, results
from .files import TransientError
from .models import Status, UploadedImage, resized_name
from .signals import image_failed, image_processed
from .storage import image_storage

logger = logging.getLogger("django_image_sync")


def claim(image_id: int) -> UploadedImage | None:
    """Take a row for processing; None when it is done, failed or gone."""
    image = UploadedImage.objects.filter(pk=image_id).first()
    if image is None or image.status not in (Status.PENDING, Status.PROCESSING):
        return None
    attempts = image.attempts + 1
    # Conditional on the attempts we read: of two tasks claiming the same row at
    # once (a redelivery racing a retry), only one wins.
    claimed = UploadedImage.objects.filter(attempts=image.attempts).transition(
        image_id, Status.PROCESSING, attempts=attempts
    )
    if not claimed:
        return None
    image.status = Status.PROCESSING
    image.attempts = attempts
    return image


def process_image(image_id: int, *, force: bool = False) -> str:
    """Run the worker path for one image. Returns the image's status afterwards.

    Idempotent: a done or failed image is left alone. A result cached for the
    same content and settings is reused without resizing. ``force`` skips the
    cache and writes the resized file again (used by "reprocess").
    Raises :class:`TransientError` for failures worth a retry.
    """
    image = claim(image_id)
    if image is None:
        return "skipped"
    max_attempts = conf.get("MAX_ATTEMPTS")
    if image.attempts > max_attempts:
        return fail_image(image_id, f"gave up after {max_attempts} attempts")

    spec = conf.resize_spec()
    name = resized_name(image.sha256, spec.key, spec.extension)
    key = results.result_cache_key(image.sha256, spec)
    result = None if force else (results.cached(key) or results.known_result(image, name))
    if result is not None and not files.still_stored(result["name"]):
        # The cache (or a row) outlived the file: a deletion whose cache
        # clean-up failed, or a per-process cache. Resize again.
        results.forget(key)
        result = None
    if result is None:
        try:
            with image_storage.open(str(image.original.name), "rb") as fh:
                data = fh.read()
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            raise TransientError(f"cannot read the original {image.original.name}: {exc}") from exc
        too_costly = _over_budget(data, spec)
        if too_costly is not None:
            return fail_image(image_id, f"{image.original_name}: {too_costly}")
        try:
            resize = processing.resizer_for(spec.backend)
        except (ImportError, OSError) as exc:
            # pyvips or libvips missing on this worker: the image is fine and
            # can be resized once they are installed (check E011 says how).
            raise TransientError(f"the {spec.backend} backend cannot be loaded: {exc}") from exc
        try:
            output = resize(io.BytesIO(data), spec)
        except SoftTimeLimitExceeded:
            raise  # the task marks the image failed (PROCESSING_TIME_LIMIT)
        except Exception as exc:
            # The bytes passed validation but cannot be processed: retrying
            # the same bytes cannot help.
            return fail_image(image_id, f"the image cannot be processed: {exc}")
        try:
            if force and image_storage.exists(name):
                image_storage.delete(name)
            if image.attempts > 1:
                # An earlier attempt may have been killed while writing.
                files.remove_incoming(name)
            files.write_once(name, ContentFile(output.data), len(output.data))
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            raise TransientError(f"cannot store the resized file {name}: {exc}") from exc
        result = {"name": name, "width": output.width, "height": output.height}
        results.remember(key, result)

    moved = UploadedImage.objects.transition(
        image_id,
        Status.DONE,
        resized=result["name"],
        resized_width=result["width"],
        resized_height=result["height"],
        error="",
    )
    if moved:
        logger.info(
            "django-image-sync: image %s done (%sx%s)", image_id, result["width"], result["height"]
        )
        image.refresh_from_db()
        image_processed.send(sender=UploadedImage, image=image)
        return Status.DONE
    return "skipped"


def _over_budget(data: bytes, spec: processing.ResizeSpec) -> str | None:
    """Why resizing ``data`` would cost more than the worker allows now, if it would.

    The upload was checked against the same budgets; this second look covers
    budgets lowered since, or a backend changed, before anything is decoded.
    Other problems are left to the decoder, whose own message is clearer.
    """
    try:
        processing.inspect_image(
            io.BytesIO(data),
            allowed_formats=conf.SUPPORTED_INPUT_FORMATS,
            max_pixels=conf.get("MAX_PIXELS"),
            **conf.cost_limits(spec),
        )
    except processing.ImageProblem as problem:
        if problem.code in ("max_decode_memory", "max_jpeg_scans", "max_pixels"):
            return problem.message
    return None


def fail_image(image_id: int, error: str) -> str:
    """Mark an image failed with a readable error and tell the site."""
    if UploadedImage.objects.transition(image_id, Status.FAILED, error=error[:2000]):
        logger.warning("django-image-sync: image %s failed: %s", image_id, error)
        image = UploadedImage.objects.get(pk=image_id)
        image_failed.send(sender=UploadedImage, image=image, error=image.error)
        return Status.FAILED
    return "skipped"
