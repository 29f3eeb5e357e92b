"""The HTML views: upload page, gallery and detail page."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from django_image_sync import services
from django_image_sync.models import UploadedImage
from django_image_sync.storage import image_storage
from tests.images import jpeg_bytes, upload
from tests.support import rows as support_rows
from tests.support.html import attrs, elements

pytestmark = pytest.mark.django_db

UPLOAD = "/upload-image/"
GALLERY = "/images/"


def detail(pk: int) -> str:
    return f"/images/{pk}/"


def media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def post_images(client: Client, *files, **extra):
    return client.post(UPLOAD, {"images": list(files)} if files else {}, **extra)


def figures(response) -> list[dict[str, str | None]]:
    return [attrs(f) for f in elements(response.content.decode(), "figure")]


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def make_rows(owner, count: int, start: int = 0) -> list[UploadedImage]:
    return support_rows.make_rows(owner, count, start, label="view-row")


# -- upload page ----------------------------------------------------------------


def test_upload_page_shows_the_form(alice_client):
    response = alice_client.get(UPLOAD)
    assert response.status_code == 200
    assert "Nothing was uploaded" not in response.content.decode()
    # No favicon request that would 404 (a console error in the browser).
    assert '<link rel="icon" href="data:,">' in response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    [form] = [attrs(f) for f in elements(html, "form") if "image-sync-upload" in str(attrs(f))]
    assert form["action"] == UPLOAD
    assert form["method"].lower() == "post"
    assert form["enctype"] == "multipart/form-data"
    inputs = {i["name"]: i for i in map(attrs, elements(html, "input"))}
    assert inputs["images"]["type"] == "file"
    assert "multiple" in inputs["images"]
    assert inputs["images"]["accept"] == "image/jpeg,image/png"
    assert inputs["csrfmiddlewaretoken"]["type"] == "hidden"
    assert inputs["csrfmiddlewaretoken"]["value"]


def test_upload_page_needs_login(client, settings):
    response = client.get(UPLOAD)
    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next={UPLOAD}"


def test_html_upload_needs_login_and_stores_nothing(client, settings):
    response = post_images(client, upload(jpeg_bytes()))
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_json_upload_to_the_page_needs_login_with_401(client, settings):
    response = post_images(client, upload(jpeg_bytes()), HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["errors"]["__all__"][0]["code"] == "auth"
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_html_upload_redirects_303_to_the_gallery(alice_client, alice, settings):
    data = jpeg_bytes(seed=1)
    response = post_images(alice_client, upload(data, "beach.jpg"))
    assert response.status_code == 303
    assert response["Location"] == GALLERY
    image = UploadedImage.objects.get()
    assert image.owner == alice
    assert image.status == "pending"
    assert image.original_name == "beach.jpg"
    assert image.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (Path(settings.MEDIA_ROOT) / image.original.name).read_bytes() == data

    gallery = alice_client.get(response["Location"])
    assertContains(gallery, "1 image uploaded")
    assert [f["data-image-sync-id"] for f in figures(gallery)] == [str(image.pk)]


def test_html_upload_of_two_files(alice_client):
    response = post_images(alice_client, upload(jpeg_bytes(seed=2)), upload(jpeg_bytes(seed=3)))
    assert response.status_code == 303
    assert UploadedImage.objects.count() == 2
    assertContains(alice_client.get(GALLERY), "2 images uploaded")


def test_html_reupload_says_already_uploaded(alice_client):
    data = jpeg_bytes(seed=4)
    post_images(alice_client, upload(data))
    alice_client.get(GALLERY)  # consume the first message
    response = post_images(alice_client, upload(data, "again.jpg"))
    assert response.status_code == 303
    assert UploadedImage.objects.count() == 1
    gallery = alice_client.get(GALLERY)
    assertContains(gallery, "1 image was already uploaded")
    assertNotContains(gallery, "uploaded; it is being resized")


def test_html_upload_refused_rerenders_the_form_with_400(alice_client, settings):
    response = post_images(
        alice_client, upload(jpeg_bytes(seed=5), "fine.jpg"), upload(b"hello", "notes.txt")
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    [form] = [attrs(f) for f in elements(html, "form") if "image-sync-upload" in str(attrs(f))]
    assert form["action"] == UPLOAD
    [errorlist] = [e for e in elements(html, "ul") if "errorlist" in attrs(e).get("class", "")]
    assert "notes.txt" in str(errorlist)
    assert "fine.jpg" not in str(errorlist)
    # The page says plainly that nothing was stored, the good file included.
    [refused] = [p for p in elements(html, "p") if "image-sync-refused" in str(attrs(p))]
    assert attrs(refused)["role"] == "alert"
    assert "Nothing was uploaded" in str(refused)
    # Nothing of the submission is kept, not even the valid file.
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_html_upload_without_files_is_400(alice_client):
    response = post_images(alice_client)
    assert response.status_code == 400
    assert response.context["form"].errors["images"]
    assert UploadedImage.objects.count() == 0


def test_html_upload_with_too_many_files_is_400(alice_client, settings):
    settings.IMAGE_SYNC = {"MAX_FILES": 1}
    response = post_images(alice_client, upload(jpeg_bytes(seed=6)), upload(jpeg_bytes(seed=7)))
    assert response.status_code == 400
    assert response.context["form"].errors["images"]
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_upload_page_answers_json_when_asked(alice_client):
    data = jpeg_bytes(seed=8)
    response = post_images(alice_client, upload(data), HTTP_ACCEPT="application/json")
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    [item] = response.json()["images"]
    assert item["id"] == UploadedImage.objects.get().pk
    assert item["duplicate"] is False
    assert item["resized_url"] is None

    again = post_images(alice_client, upload(data), HTTP_ACCEPT="application/json")
    assert again.status_code == 200
    assert again.json()["images"][0]["duplicate"] is True


def test_upload_page_answers_json_errors_when_asked(alice_client, settings):
    response = post_images(
        alice_client, upload(b"hello", "notes.txt"), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]["images"]
    assert (error["file"], error["code"]) == ("notes.txt", "format")
    assert "notes.txt" in error["message"]
    assert media_files(settings) == []


def test_anonymous_html_upload_without_require_auth(client, settings):
    settings.IMAGE_SYNC = {"REQUIRE_AUTH": False}
    assert client.get(UPLOAD).status_code == 200
    response = post_images(client, upload(jpeg_bytes(seed=9)))
    assert response.status_code == 303
    image = UploadedImage.objects.get()
    assert image.owner is None
    gallery = client.get(GALLERY)
    assert [f["data-image-sync-id"] for f in figures(gallery)] == [str(image.pk)]


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_upload_page_wrong_method_is_405(alice_client, method):
    response = getattr(alice_client, method)(UPLOAD)
    assert response.status_code == 405
    assert "POST" in response["Allow"]
    as_json = getattr(alice_client, method)(UPLOAD, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 405
    assert as_json.json()["errors"]["__all__"][0]["code"] == "method"


@pytest.mark.parametrize("path", [GALLERY, "/images/1/"])
def test_read_only_pages_refuse_post(alice_client, path):
    assert alice_client.post(path).status_code == 405


def test_html_upload_needs_the_csrf_token(alice, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    refused = post_images(client, upload(jpeg_bytes(seed=10)))
    assert refused.status_code == 403
    assert UploadedImage.objects.count() == 0

    page = client.get(UPLOAD).content.decode()
    token = next(
        attrs(i)["value"]
        for i in elements(page, "input")
        if attrs(i).get("name") == "csrfmiddlewaretoken"
    )
    response = client.post(
        UPLOAD, {"images": [upload(jpeg_bytes(seed=10))], "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303
    assert UploadedImage.objects.count() == 1


# -- gallery and detail ---------------------------------------------------------


def test_gallery_needs_login(client, settings):
    response = client.get(GALLERY)
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)


def test_gallery_shows_resized_images_and_placeholders(alice_client, settings, clear_cache):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (32, 32)}
    post_images(alice_client, upload(jpeg_bytes((64, 48), seed=11), "done.jpg"))
    post_images(alice_client, upload(jpeg_bytes((64, 48), seed=12), "waiting.jpg"))
    done = UploadedImage.objects.get(original_name="done.jpg")
    waiting = UploadedImage.objects.get(original_name="waiting.jpg")
    assert services.process_image(done.pk) == "done"
    done.refresh_from_db()

    response = alice_client.get(GALLERY)
    assert response.status_code == 200
    html = response.content.decode()
    by_id = {f["data-image-sync-id"]: f for f in figures(response)}
    assert set(by_id) == {str(done.pk), str(waiting.pk)}
    assert "data-image-sync-poll" not in by_id[str(done.pk)]
    assert by_id[str(waiting.pk)]["data-image-sync-poll"] == f"/api/images/{waiting.pk}/"
    [img] = [attrs(i) for i in elements(html, "img")]
    assert img["src"] == done.resized.url
    assert (img["width"], img["height"]) == ("32", "24")
    assert (Path(settings.MEDIA_ROOT) / done.resized.name).is_file()
    assert '<span class="image-sync-placeholder"' in html
    assert ">Pending</span>" in html
    links = {attrs(a)["href"] for a in elements(html, "a")}
    assert {detail(done.pk), detail(waiting.pk)} <= links


def test_gallery_is_paginated_by_page_size(alice_client, alice, settings):
    settings.IMAGE_SYNC = {"PAGE_SIZE": 2}
    rows = make_rows(alice, 3)
    first = alice_client.get(GALLERY)
    second = alice_client.get(GALLERY + "?page=2")
    assert len(figures(first)) == 2
    assert len(figures(second)) == 1
    shown = {f["data-image-sync-id"] for f in figures(first) + figures(second)}
    assert shown == {str(r.pk) for r in rows}
    assert alice_client.get(GALLERY + "?page=3").status_code == 404


def test_detail_page_shows_the_image(alice_client, alice):
    done, pending = make_rows(alice, 2)
    response = alice_client.get(detail(done.pk))
    assert response.status_code == 200
    html = response.content.decode()
    [img] = [attrs(i) for i in elements(html, "img")]
    assert img["src"] == done.resized.url
    assertContains(response, done.md5)

    response = alice_client.get(detail(pending.pk))
    assert response.status_code == 200
    assert elements(response.content.decode(), "img") == []
    [figure] = figures(response)
    assert figure["data-image-sync-poll"] == f"/api/images/{pending.pk}/"


def test_detail_page_labels_a_waiting_image_s_message_and_shows_its_next_try(alice_client, alice):
    waiting, failed = make_rows(alice, 2)
    next_try = timezone.now() + timedelta(minutes=7)
    UploadedImage.objects.filter(pk=waiting.pk).update(
        status="pending",
        error="cannot store the resized file: storage down",
        error_code="retrying",
        error_params={"detail": "storage down"},
        retry_at=next_try,
        retrying_since=timezone.now(),
    )
    UploadedImage.objects.filter(pk=failed.pk).update(status="failed", error="gave up")

    def facts(pk: int) -> dict[str, str]:
        html = alice_client.get(detail(pk)).content.decode()
        labels = [attrs(dt).get("data-image-sync-field", "") for dt in elements(html, "dt")]
        return dict(zip(labels, re.findall(r"<dt[^>]*>([^<]*)</dt>", html), strict=True))

    shown = facts(waiting.pk)
    assert shown["error-label"] == "Last try"
    assert shown["next-try-label"] == "Next try"
    html = alice_client.get(detail(waiting.pk)).content.decode()
    assert f'<time datetime="{next_try.isoformat()}" data-image-sync-localtime>' in html

    shown = facts(failed.pk)
    assert shown["error-label"] == "Error"
    assert "next-try-label" not in shown


def test_detail_page_of_a_missing_image_is_404(alice_client):
    assert alice_client.get(detail(999999)).status_code == 404


def test_owner_scope_hides_other_users_images(alice_client, bob_client, bob):
    data = jpeg_bytes(seed=13)
    post_images(alice_client, upload(data, "alice.jpg"))
    a_image = UploadedImage.objects.get()

    assert figures(bob_client.get(GALLERY)) == []
    assert bob_client.get(detail(a_image.pk)).status_code == 404

    post_images(bob_client, upload(data, "bob.jpg"))
    b_image = UploadedImage.objects.get(owner=bob)
    assert b_image.pk != a_image.pk
    assert [f["data-image-sync-id"] for f in figures(bob_client.get(GALLERY))] == [str(b_image.pk)]
    assert [f["data-image-sync-id"] for f in figures(alice_client.get(GALLERY))] == [
        str(a_image.pk)
    ]
    assert alice_client.get(detail(b_image.pk)).status_code == 404


def test_global_scope_shows_shared_images(alice_client, bob_client, settings):
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global"}
    data = jpeg_bytes(seed=14)
    post_images(alice_client, upload(data))
    post_images(bob_client, upload(data))
    image = UploadedImage.objects.get()
    assert [f["data-image-sync-id"] for f in figures(bob_client.get(GALLERY))] == [str(image.pk)]
    assert bob_client.get(detail(image.pk)).status_code == 200


def test_gallery_escapes_file_names(alice_client, alice):
    [row] = make_rows(alice, 1)
    UploadedImage.objects.filter(pk=row.pk).update(original_name="<script>x()</script>.jpg")
    response = alice_client.get(GALLERY)
    assertNotContains(response, "<script>x()")
    assertContains(response, "&lt;script&gt;x()")


# -- cost per image -------------------------------------------------------------


def test_gallery_costs_the_same_queries_and_no_storage_io_per_image(
    alice_client, alice, settings, storage_calls
):
    settings.IMAGE_SYNC = {"PAGE_SIZE": 100}
    alice_client.get(GALLERY)  # warm up the session and user lookups

    make_rows(alice, 3)
    with CaptureQueriesContext(connection) as few:
        response = alice_client.get(GALLERY)
    assert len(figures(response)) == 3

    make_rows(alice, 27, start=3)
    with CaptureQueriesContext(connection) as many:
        response = alice_client.get(GALLERY)
    assert len(figures(response)) == 30
    html = response.content.decode()
    assert len(elements(html, "img")) == 8
    assert len(elements(html, "picture")) == 8  # every done image's <picture>, with 2 sources
    assert len(elements(html, "source")) == 16

    assert len(many.captured_queries) == len(few.captured_queries)
    assert storage_calls == []
    # The counter does see the storage the app uses.
    image_storage.exists("anything")
    assert storage_calls == ["exists"]


def test_detail_page_does_no_storage_io(alice_client, alice, storage_calls):
    [row] = make_rows(alice, 1)
    assert alice_client.get(detail(row.pk)).status_code == 200
    assert storage_calls == []


# -- without JavaScript, and who is signed in --------------------------------------------

# Not a meta refresh: reloading by itself would take a screen-reader or keyboard
# user back to the top every few seconds (WCAG 2.2.1; axe's "meta-refresh").
RELOAD_NOTICE = "Some images are still being resized."


def test_pages_with_images_being_resized_offer_a_reload_without_javascript(alice_client, alice):
    done, pending = make_rows(alice, 2)  # statuses taken in turn: done, pending
    gallery = alice_client.get(GALLERY)
    assertContains(gallery, RELOAD_NOTICE)
    [notice] = elements(gallery.content.decode(), "noscript")
    assert [attrs(a)["href"] for a in elements(str(notice), "a")] == [GALLERY]
    assert "Reload this page to see them." in str(notice)
    assertContains(alice_client.get(detail(pending.pk)), RELOAD_NOTICE)
    assertNotContains(alice_client.get(detail(done.pk)), RELOAD_NOTICE)
    for response in (gallery, alice_client.get(detail(pending.pk))):
        assertNotContains(response, 'http-equiv="refresh"')
    UploadedImage.objects.filter(pk=pending.pk).update(status="done")
    # Failed images no longer change: nothing to wait for.
    UploadedImage.objects.filter(pk=done.pk).update(status="failed")
    assertNotContains(alice_client.get(GALLERY), RELOAD_NOTICE)


def test_pages_say_who_is_signed_in_with_a_log_out_button(alice_client):
    response = alice_client.get(GALLERY)
    assertContains(response, "Signed in as alice")
    [form] = [
        attrs(f)
        for f in elements(response.content.decode(), "form")
        if attrs(f)["method"] == "post"
    ]
    assert form["action"] == "/accounts/logout/"
    logged_out = alice_client.post("/accounts/logout/")
    assert logged_out.status_code in (200, 302)
    assert alice_client.get(GALLERY).status_code == 302  # signed out: to the login page


def test_anonymous_visitors_get_a_log_in_link(client, settings):
    settings.IMAGE_SYNC = {"REQUIRE_AUTH": False}
    html = client.get(GALLERY).content.decode()
    assert "Signed in as" not in html
    links = [attrs(a)["href"] for a in elements(html, "a")]
    assert "/accounts/login/?next=/images/" in links
