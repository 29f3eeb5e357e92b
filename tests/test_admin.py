"""The admin of uploaded images, as a logged-in superuser (``admin_client``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from django_image_sync import services
from django_image_sync.models import UploadedImage
from tests.images import jpeg_bytes, upload
from tests.support import rows as support_rows
from tests.support.html import attrs, elements

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/django_image_sync/uploadedimage/"


def shown(response) -> list[int]:
    """Primary keys of the rows on a changelist page."""
    return [image.pk for image in response.context["cl"].result_list]


def uploaded(owner, seed: int, name: str = "photo.jpg") -> UploadedImage:
    [outcome] = services.upload_images([upload(jpeg_bytes(seed=seed), name)], owner=owner)
    return outcome.image


@pytest.fixture
def images(admin_user, clear_cache) -> dict[str, UploadedImage]:
    """One image in each of done, pending and failed."""
    done = uploaded(admin_user, 1, "done.jpg")
    pending = uploaded(admin_user, 2, "pending.jpg")
    failed = uploaded(admin_user, 3, "failed.jpg")
    assert services.process_image(done.pk) == "done"
    services.fail_image(failed.pk, "the image cannot be processed: boom")
    for image in (done, pending, failed):
        image.refresh_from_db()
    return {"done": done, "pending": pending, "failed": failed}


def test_changelist_shows_a_thumbnail_of_done_images(admin_client, images):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert sorted(shown(response)) == sorted(i.pk for i in images.values())
    srcs = [attrs(img)["src"] for img in elements(response.content.decode(), "img")]
    assert images["done"].resized.url in srcs
    # Only the done image has a preview.
    assert [s for s in srcs if s.startswith("/media/")] == [images["done"].resized.url]


@pytest.mark.parametrize("status", ["done", "pending", "failed"])
def test_changelist_filters_by_status(admin_client, images, status):
    response = admin_client.get(CHANGELIST, {"status__exact": status})
    assert response.status_code == 200
    assert shown(response) == [images[status].pk]


def test_changelist_offers_the_status_filter(admin_client, images):
    response = admin_client.get(CHANGELIST)
    hrefs = {attrs(a).get("href") for a in elements(response.content.decode(), "a")}
    assert {"?status__exact=done", "?status__exact=pending", "?status__exact=failed"} <= hrefs


def test_search_by_md5_finds_the_image(admin_client, images):
    target = images["pending"]
    response = admin_client.get(CHANGELIST, {"q": target.md5})
    assert response.status_code == 200
    assert shown(response) == [target.pk]
    assert target.md5 == hashlib.md5(jpeg_bytes(seed=2), usedforsecurity=False).hexdigest()


def test_search_by_unknown_md5_finds_nothing(admin_client, images):
    response = admin_client.get(CHANGELIST, {"q": "0" * 32})
    assert shown(response) == []


def test_reprocess_moves_done_and_failed_images_to_pending(
    admin_client, images, django_capture_on_commit_callbacks
):
    selected = [images["done"].pk, images["failed"].pk]
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            CHANGELIST, {"action": "reprocess", "_selected_action": selected}, follow=True
        )
    assert response.status_code == 200
    assertContains(response, "2 images queued for reprocessing.")
    for pk in selected:
        image = UploadedImage.objects.get(pk=pk)
        assert image.status == "pending"
        assert image.error == ""
        assert image.attempts == 0
    # One dispatch per image, held back until the transaction commits.
    assert len(callbacks) == 2


def test_reprocess_leaves_a_pending_image_alone(admin_client, images):
    pending = images["pending"]
    response = admin_client.post(
        CHANGELIST, {"action": "reprocess", "_selected_action": [pending.pk]}, follow=True
    )
    assert response.status_code == 200
    assertContains(response, "0 images queued for reprocessing.")
    assert UploadedImage.objects.get(pk=pending.pk).status == "pending"


def test_reprocess_tries_an_image_waiting_after_temporary_failures_now(
    admin_client, images, django_capture_on_commit_callbacks
):
    waiting = images["pending"]
    UploadedImage.objects.filter(pk=waiting.pk).update(
        retry_at=timezone.now() + timedelta(minutes=20),
        retrying_since=timezone.now() - timedelta(minutes=20),
        attempts=3,
        error="cannot store the resized file: storage down",
        error_code="retrying",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            CHANGELIST, {"action": "reprocess", "_selected_action": [waiting.pk]}, follow=True
        )
    assertContains(response, "1 image queued for reprocessing.")
    row = UploadedImage.objects.get(pk=waiting.pk)
    assert (row.status, row.error, row.attempts) == ("pending", "", 0)
    assert (row.retry_at, row.retrying_since) == (None, None)
    assert len(callbacks) == 1


def test_no_add_permission(admin_client, images):
    add_url = reverse("admin:django_image_sync_uploadedimage_add")
    assert admin_client.get(add_url).status_code == 403
    changelist = admin_client.get(CHANGELIST)
    assertNotContains(changelist, add_url)


def test_change_page_renders(admin_client, images):
    image = images["done"]
    response = admin_client.get(
        reverse("admin:django_image_sync_uploadedimage_change", args=[image.pk])
    )
    assert response.status_code == 200
    assertContains(response, image.md5)
    srcs = [attrs(img)["src"] for img in elements(response.content.decode(), "img")]
    assert image.resized.url in srcs


def make_rows(owner, count: int, start: int = 0) -> None:
    support_rows.make_rows(owner, count, start, label="admin-row", statuses=("done", "pending"))


def test_changelist_costs_the_same_queries_whatever_the_number_of_images(
    admin_client, admin_user, django_user_model
):
    other = django_user_model.objects.create_user("other")
    admin_client.get(CHANGELIST)  # warm up the session and user lookups

    make_rows(admin_user, 2)
    make_rows(other, 1, start=2)
    with CaptureQueriesContext(connection) as few:
        response = admin_client.get(CHANGELIST)
    assert len(shown(response)) == 3

    make_rows(admin_user, 13, start=3)
    make_rows(other, 14, start=16)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST)
    assert len(shown(response)) == 30

    assert len(many.captured_queries) == len(few.captured_queries)
