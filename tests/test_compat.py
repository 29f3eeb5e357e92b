"""Import paths and names sites may use from earlier versions keep working."""

from __future__ import annotations

import pytest

from django_image_sync import processing, queue, services, tasks, uploads, worker
from django_image_sync.processing.backends import pillow


def test_the_upload_names_are_still_in_services():
    assert services.upload_images is uploads.upload_images
    assert services.UploadRejected is uploads.UploadRejected
    assert services.check_files is uploads.check_files
    assert services.store_files is uploads.store_files
    assert services.process_image is worker.process_image
    assert services.sweep is queue.sweep
    assert services.reprocess is queue.reprocess


def test_processing_resize_image_is_the_pillow_backend():
    assert processing.resize_image is pillow.resize_image


def test_the_tasks_keep_their_module_and_celery_names():
    assert tasks.resize_image.name == "django_image_sync.resize_image"
    assert tasks.sweep.name == "django_image_sync.sweep"
    assert tasks.resize_image.name == queue.RESIZE_TASK


@pytest.mark.parametrize("value", ["pillow", "vips", "Pillow", "VIPS"])
def test_the_backend_names_are_unchanged(value):
    assert processing.backend_name(value) in processing.BACKENDS
    assert processing.resizer_for(processing.backend_name(value)).__name__ == "resize_image"
