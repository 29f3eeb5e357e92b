import pytest
from django.db import transaction

from django_image_sync import services
from tests.conftest import wait_for_status
from tests.images import jpeg_bytes, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_upload_is_resized_by_worker(celery_worker, clear_cache):
    with transaction.atomic():
        [outcome] = services.upload_images([upload(jpeg_bytes((3000, 2000), orientation=6))])
    image = wait_for_status(outcome.image.pk, {"done", "failed"})
    assert image.status == "done", image.error
    assert (image.resized_width, image.resized_height) == (720, 1080)
