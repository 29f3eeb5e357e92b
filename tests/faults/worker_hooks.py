"""Hooks installed in a fault-test Celery worker (``IMAGE_SYNC_TEST_FAULT_HOOKS=1``).

Loaded by ``tests/celery_app.py`` only when that variable is set, so the
ordinary test worker and the test process are unaffected. Each pool process
patches itself when it starts (``worker_process_init``):

* every claim, every decode of an original and every ``image_processed`` /
  ``image_failed`` is written to the events log, with the pool process id;
* an image whose uploaded name contains ``crash`` kills its pool process with
  SIGKILL in the middle of the resize (after the claim), every time;
* an image whose uploaded name contains ``slow`` takes
  ``IMAGE_SYNC_TEST_SLOW_SECONDS`` (default 3) longer to resize;
* ``IMAGE_SYNC_TEST_RETRY_BASE_DELAY`` (seconds) replaces the task's retry
  base delay, so a retry chain fits in a test, and
  ``IMAGE_SYNC_TEST_RETRY_LATER_MIN`` the shortest wait for the sweeper's next
  try after the chain (``queue.RETRY_LATER_MIN``).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery.signals import worker_process_init

from tests.faults import record


def _patch_pool_process(**kwargs: Any) -> None:
    from django_image_sync import queue, tasks, worker
    from django_image_sync.models import UploadedImage
    from django_image_sync.processing.backends import pillow as pillow_backend
    from django_image_sync.signals import image_failed, image_processed

    pid = os.getpid()
    claimed: dict[str, Any] = {}
    real_claim = worker.claim
    real_render = pillow_backend.render

    def claim(image_id: int, *args: Any) -> Any:
        image = real_claim(image_id, *args)
        claimed["image"] = image
        if image is not None:
            record(f"claimed {image_id} attempt={image.attempts} pid={pid} at={time.time():.3f}")
        return image

    def render(fileobj: Any, plan: Any, skip: Any = frozenset()) -> Any:
        image = claimed.get("image")
        if image is not None and "crash" in image.original_name:
            record(f"crashing {image.pk} attempt={image.attempts} pid={pid}")
            os.kill(pid, signal.SIGKILL)
        if image is not None and "slow" in image.original_name:
            time.sleep(float(os.environ.get("IMAGE_SYNC_TEST_SLOW_SECONDS", "3")))
        if image is not None:
            record(f"decoding {image.pk} sha256={image.sha256} pid={pid}")
        return real_render(fileobj, plan, skip)

    def processed(sender: Any, image: Any, **kw: Any) -> None:
        record(f"processed {image.pk} pid={pid}")

    def failed(sender: Any, image: Any, error: str, **kw: Any) -> None:
        record(f"failed {image.pk} pid={pid}")

    worker.claim = claim
    pillow_backend.render = render
    image_processed.connect(processed, sender=UploadedImage, weak=False)
    image_failed.connect(failed, sender=UploadedImage, weak=False)
    delay = os.environ.get("IMAGE_SYNC_TEST_RETRY_BASE_DELAY")
    if delay:
        tasks.RETRY_BASE_DELAY = float(delay)
    later = os.environ.get("IMAGE_SYNC_TEST_RETRY_LATER_MIN")
    if later:
        queue.RETRY_LATER_MIN = float(later)
    record(f"pool process {pid} ready")


def install() -> None:
    worker_process_init.connect(_patch_pool_process, weak=False)
