"""The state machine the worker path relies on (``models`` transitions and
``worker.claim``), against the real database. The worker path itself is in
``test_tasks.py`` (in this process, then through a real Celery worker)."""

from __future__ import annotations

import pytest
from PIL import Image

from django_image_sync import services
from django_image_sync.models import Status, UploadedImage
from tests.images import jpeg_bytes, upload
from tests.support.media import media_root

pytestmark = pytest.mark.django_db


# -- the state machine ------------------------------------------------------------------


@pytest.fixture
def pending_image(db):
    [outcome] = services.upload_images([upload(jpeg_bytes(seed=81))])
    return outcome.image


def status_of(pk: int) -> str:
    return UploadedImage.objects.get(pk=pk).status


def test_done_cannot_go_back_to_processing(pending_image):
    rows = UploadedImage.objects
    assert rows.transition(pending_image.pk, Status.PROCESSING)
    assert rows.transition(pending_image.pk, Status.DONE)
    assert not rows.transition(pending_image.pk, Status.PROCESSING)
    assert status_of(pending_image.pk) == Status.DONE
    assert not rows.transition(pending_image.pk, Status.FAILED)
    assert status_of(pending_image.pk) == Status.DONE


def test_failed_cannot_become_done(pending_image):
    rows = UploadedImage.objects
    assert not rows.transition(pending_image.pk, Status.DONE)  # pending -> done skips a step
    assert rows.transition(pending_image.pk, Status.FAILED, error="broken")
    assert not rows.transition(pending_image.pk, Status.DONE)
    assert not rows.transition(pending_image.pk, Status.PROCESSING)
    image = UploadedImage.objects.get(pk=pending_image.pk)
    assert (image.status, image.error) == (Status.FAILED, "broken")


def test_claim_increments_attempts(pending_image):
    claimed = services.claim(pending_image.pk)
    assert (claimed.status, claimed.attempts) == (Status.PROCESSING, 1)
    stored = UploadedImage.objects.get(pk=pending_image.pk)
    assert (stored.status, stored.attempts) == (Status.PROCESSING, 1)

    # A redelivered task may claim a row still "processing".
    again = services.claim(pending_image.pk)
    assert again.attempts == 2
    assert UploadedImage.objects.get(pk=pending_image.pk).attempts == 2


@pytest.mark.parametrize("final", [Status.DONE, Status.FAILED])
def test_claim_refuses_finished_rows(pending_image, final):
    assert services.claim(pending_image.pk) is not None
    assert UploadedImage.objects.transition(pending_image.pk, final)
    before = UploadedImage.objects.get(pk=pending_image.pk)

    assert services.claim(pending_image.pk) is None

    after = UploadedImage.objects.get(pk=pending_image.pk)
    assert (after.status, after.attempts, after.updated) == (final, 1, before.updated)


@pytest.mark.django_db
def test_claim_of_a_missing_row_is_none():
    assert services.claim(987654321) is None


def test_uploaded_original_decodes(pending_image):
    # What the worker will read is exactly what was validated.
    with Image.open(media_root() / pending_image.original.name) as im:
        assert im.format == "JPEG"
        assert im.size == (pending_image.width, pending_image.height)
