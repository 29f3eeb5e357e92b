"""The content lookup the upload page asks before sending bytes, and deletion
by an image's owner (the detail page's confirmation and the API's DELETE).

- ``GET /api/images/lookup/?sha256=HEX`` answers 200 with the image
  (``duplicate: true``) exactly when an upload of those bytes by this user
  would be answered as a duplicate, 204 otherwise; it never names an image the
  user could not already see, stores nothing and sends no signal.
- Only an image's owner (or a user with the model's delete permission) may
  delete it; its files go once the deletion commits, unless still shared.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from django_image_sync import services
from django_image_sync.models import UploadedImage
from django_image_sync.signals import image_uploaded
from tests.images import jpeg_bytes, upload
from tests.support.clients import logged_in
from tests.support.media import stored_files

pytestmark = pytest.mark.django_db

LOOKUP = "/api/images/lookup/"


def lookup(client: Client, data: bytes) -> Any:
    return client.get(LOOKUP, {"sha256": hashlib.sha256(data).hexdigest()})


@pytest.fixture
def uploaded_signals() -> Any:
    seen: list[Any] = []

    def receiver(sender: Any, image: Any, duplicate: bool, **kwargs: Any) -> None:
        seen.append((image.pk, duplicate))

    image_uploaded.connect(receiver)
    yield seen
    image_uploaded.disconnect(receiver)


def test_lookup_answers_what_an_upload_would_answer(alice, uploaded_signals):
    client = logged_in(alice)
    data = jpeg_bytes((96, 64), seed=301)
    # Unknown content: 204, no body, nothing stored.
    missing = lookup(client, data)
    assert (missing.status_code, missing.content) == (204, b"")

    response = client.post("/api/images/", {"images": [upload(data, "first.jpg")]})
    assert response.status_code == 201
    [stored] = response.json()["images"]
    rows, files = UploadedImage.objects.count(), stored_files()
    signals = len(uploaded_signals)

    found = lookup(client, data)
    assert found.status_code == 200
    body = found.json()
    assert (body["id"], body["duplicate"], body["name"]) == (stored["id"], True, "first.jpg")
    assert set(body) == set(stored)
    # Asking changes nothing and tells no receiver that something was uploaded.
    assert UploadedImage.objects.count() == rows
    assert stored_files() == files
    assert len(uploaded_signals) == signals

    # The upload it stands in for gives the same image as a duplicate.
    again = client.post("/api/images/", {"images": [upload(data, "again.jpg")]})
    assert again.status_code == 200
    assert again.json()["images"][0]["id"] == body["id"]
    # Upper-case hexadecimal is the same digest.
    digest = hashlib.sha256(data).hexdigest().upper()
    assert client.get(LOOKUP, {"sha256": digest}).json()["id"] == body["id"]


def test_lookup_never_reveals_another_users_image(alice, bob):
    data = jpeg_bytes((96, 64), seed=302)
    services.upload_images([upload(data)], owner=alice)
    bobs = lookup(logged_in(bob), data)
    unknown = lookup(logged_in(bob), jpeg_bytes((96, 64), seed=303))
    assert (bobs.status_code, bobs.content) == (unknown.status_code, unknown.content) == (204, b"")


def test_lookup_in_the_global_scope_finds_the_shared_image(alice, bob, settings):
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global"}
    data = jpeg_bytes((96, 64), seed=304)
    [outcome] = services.upload_images([upload(data)], owner=alice)
    response = lookup(logged_in(bob), data)
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["duplicate"]) == (outcome.image.pk, True)


@pytest.mark.parametrize("digest", ["", "abc", "g" * 64, "0" * 63, "0" * 65])
def test_lookup_with_a_malformed_digest_is_400(alice, digest):
    response = logged_in(alice).get(LOOKUP, {"sha256": digest})
    assert response.status_code == 400
    [error] = response.json()["errors"]["__all__"]
    assert error["code"] == "bad_request"
    assert "sha256" in error["message"]


def test_lookup_needs_a_login_like_every_api_call(client, alice):
    data = jpeg_bytes((96, 64), seed=305)
    services.upload_images([upload(data)], owner=alice)
    response = lookup(client, data)
    assert response.status_code == 401
    assert response.json()["errors"]["__all__"][0]["code"] == "auth"


def test_owner_deletes_through_the_confirmation_page(alice, django_capture_on_commit_callbacks):
    [outcome] = services.upload_images([upload(jpeg_bytes((96, 64), seed=306))], owner=alice)
    pk = outcome.image.pk
    assert services.process_image(pk) == "done"
    client = logged_in(alice)
    assert f'href="/images/{pk}/delete/"' in client.get(f"/images/{pk}/").content.decode()
    page = client.get(f"/images/{pk}/delete/")
    assert page.status_code == 200
    assert b'method="post"' in page.content
    assert stored_files()  # the original and its outputs

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/images/{pk}/delete/")
    assert (response.status_code, response["Location"]) == (302, "/images/")
    assert not UploadedImage.objects.filter(pk=pk).exists()
    assert stored_files() == []
    messages = [str(m) for m in client.get("/images/").context["messages"]]
    assert messages == ["photo.jpg was deleted."]


def test_nobody_else_may_delete(alice, bob, settings):
    [outcome] = services.upload_images([upload(jpeg_bytes((96, 64), seed=307))], owner=alice)
    pk = outcome.image.pk
    bob_client = logged_in(bob)
    # Owner scope: to Bob the image does not exist.
    assert bob_client.get(f"/images/{pk}/delete/").status_code == 404
    assert bob_client.post(f"/images/{pk}/delete/").status_code == 404
    assert bob_client.delete(f"/api/images/{pk}/").status_code == 404
    # Global scope: he sees it, but it is not his to delete.
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global"}
    assert "/delete/" not in bob_client.get(f"/images/{pk}/").content.decode()
    assert bob_client.post(f"/images/{pk}/delete/").status_code == 403
    response = bob_client.delete(f"/api/images/{pk}/")
    assert response.status_code == 403
    assert response.json()["errors"]["__all__"][0]["code"] == "auth"
    assert UploadedImage.objects.filter(pk=pk).exists()


def test_a_user_with_the_delete_permission_may_delete_any_visible_image(alice, bob, settings):
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global"}
    [outcome] = services.upload_images([upload(jpeg_bytes((96, 64), seed=308))], owner=alice)
    bob.user_permissions.add(Permission.objects.get(codename="delete_uploadedimage"))
    response = logged_in(bob).delete(f"/api/images/{outcome.image.pk}/")
    assert response.status_code == 204
    assert not UploadedImage.objects.filter(pk=outcome.image.pk).exists()


def test_api_delete_by_the_owner_removes_row_and_files(alice, django_capture_on_commit_callbacks):
    [outcome] = services.upload_images([upload(jpeg_bytes((96, 64), seed=309))], owner=alice)
    assert stored_files()
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(alice).delete(f"/api/images/{outcome.image.pk}/")
    assert (response.status_code, response.content) == (204, b"")
    assert not UploadedImage.objects.exists()
    assert stored_files() == []


def test_visitors_are_sent_to_log_in_and_the_api_answers_them_401(client, settings):
    settings.IMAGE_SYNC = {"REQUIRE_AUTH": False}
    [outcome] = services.upload_images([upload(jpeg_bytes((96, 64), seed=310))], owner=None)
    pk = outcome.image.pk
    page = client.get(f"/images/{pk}/delete/")
    assert page.status_code == 302
    assert page["Location"].startswith(f"{settings.LOGIN_URL}?next=")
    assert client.post(f"/images/{pk}/delete/").status_code == 302
    response = client.delete(f"/api/images/{pk}/")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response
    assert UploadedImage.objects.filter(pk=pk).exists()
