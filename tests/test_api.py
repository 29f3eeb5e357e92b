"""The JSON API: ``api/images/`` (list, upload) and ``api/images/<pk>/`` (one image)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_image_sync import services
from django_image_sync.models import UploadedImage
from django_image_sync.storage import image_storage
from tests.images import encode, jpeg_bytes, photo_like, png_bytes, upload
from tests.support import rows as support_rows

pytestmark = pytest.mark.django_db

API_LIST = "/api/images/"
IMAGE_KEYS = {
    "id",
    "renditions",
    "placeholder",
    "status",
    "duplicate",
    "md5",
    "width",
    "height",
    "resized_width",
    "resized_height",
    "original_url",
    "resized_url",
    "error",
    "created",
}


def api_detail(pk: int) -> str:
    return f"/api/images/{pk}/"


def media_files(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def post_images(client: Client, *files, url: str = API_LIST, **extra):
    data = {"images": list(files)} if files else {}
    return client.post(url, data, **extra)


def new_client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice) -> Client:
    return new_client(alice)


@pytest.fixture
def bob_client(bob) -> Client:
    return new_client(bob)


def make_rows(owner, count: int, start: int = 0) -> list[UploadedImage]:
    return support_rows.make_rows(owner, count, start, label="row")


# -- authentication -----------------------------------------------------------


def test_list_anonymous_is_401_json(client):
    response = client.get(API_LIST)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "WWW-Authenticate" in response
    body = response.json()
    assert [e["code"] for e in body["errors"]["__all__"]] == ["auth"]


def test_detail_anonymous_is_401_json(client, alice):
    [row] = make_rows(alice, 1)
    response = client.get(api_detail(row.pk))
    assert response.status_code == 401
    assert response.json()["errors"]["__all__"][0]["code"] == "auth"


def test_upload_anonymous_is_401_and_stores_nothing(client, settings):
    response = post_images(client, upload(jpeg_bytes()))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"]["__all__"][0]["code"] == "auth"
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_anonymous_upload_and_list_work_without_require_auth(client, settings):
    settings.IMAGE_SYNC = {"REQUIRE_AUTH": False}
    response = post_images(client, upload(jpeg_bytes()))
    assert response.status_code == 201
    [data] = response.json()["images"]
    image = UploadedImage.objects.get()
    assert data["id"] == image.pk
    assert image.owner is None
    listing = client.get(API_LIST).json()
    assert [r["id"] for r in listing["results"]] == [image.pk]
    assert client.get(api_detail(image.pk)).json()["id"] == image.pk


# -- upload -------------------------------------------------------------------


def test_upload_answers_201_with_the_image_object(alice_client, alice, settings):
    data = jpeg_bytes((64, 48), seed=11)
    response = post_images(alice_client, upload(data, "holiday.jpg"))
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"images"}
    [item] = body["images"]
    assert set(item) >= IMAGE_KEYS
    image = UploadedImage.objects.get()
    assert image.owner == alice
    assert item["id"] == image.pk
    assert item["status"] == "pending"
    assert item["duplicate"] is False
    assert item["md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (item["width"], item["height"]) == (64, 48)
    assert item["resized_width"] is None
    assert item["resized_height"] is None
    assert item["resized_url"] is None
    assert item["error"] == ""
    assert datetime.fromisoformat(item["created"]) == image.created
    assert item["original_url"].startswith(settings.MEDIA_URL)
    stored = Path(settings.MEDIA_ROOT) / item["original_url"][len(settings.MEDIA_URL) :]
    assert stored.read_bytes() == data


def test_upload_reports_displayed_orientation(alice_client):
    response = post_images(alice_client, upload(jpeg_bytes((64, 48), orientation=6)))
    assert response.status_code == 201
    [item] = response.json()["images"]
    assert (item["width"], item["height"]) == (48, 64)


def test_upload_of_two_files_stores_both(alice_client):
    response = post_images(
        alice_client, upload(jpeg_bytes(seed=1), "a.jpg"), upload(jpeg_bytes(seed=2), "b.jpg")
    )
    assert response.status_code == 201
    images = response.json()["images"]
    assert [i["duplicate"] for i in images] == [False, False]
    assert {i["id"] for i in images} == set(UploadedImage.objects.values_list("pk", flat=True))
    assert UploadedImage.objects.count() == 2


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_png_upload_is_accepted(alice_client, mode):
    data = png_bytes((64, 48), mode=mode, seed=14)
    response = post_images(alice_client, upload(data, "drawing.png", "image/png"))
    assert response.status_code == 201, response.json()
    [item] = response.json()["images"]
    assert (item["width"], item["height"]) == (64, 48)
    assert UploadedImage.objects.get().format == "PNG"


def test_reupload_is_200_duplicate_with_the_same_id(alice_client):
    data = jpeg_bytes(seed=3)
    first = post_images(alice_client, upload(data, "one.jpg")).json()["images"][0]
    response = post_images(alice_client, upload(data, "renamed.jpg"))
    assert response.status_code == 200
    [item] = response.json()["images"]
    assert item["duplicate"] is True
    assert item["id"] == first["id"]
    assert UploadedImage.objects.count() == 1


def test_upload_with_one_new_file_and_one_duplicate_is_201(alice_client):
    old = jpeg_bytes(seed=4)
    first_id = post_images(alice_client, upload(old)).json()["images"][0]["id"]
    response = post_images(alice_client, upload(old, "old.jpg"), upload(jpeg_bytes(seed=5)))
    assert response.status_code == 201
    images = response.json()["images"]
    assert [i["duplicate"] for i in images] == [True, False]
    assert images[0]["id"] == first_id
    assert images[1]["id"] != first_id
    assert UploadedImage.objects.count() == 2


def test_same_bytes_twice_in_one_submission_store_one_image(alice_client):
    data = jpeg_bytes(seed=6)
    response = post_images(alice_client, upload(data, "a.jpg"), upload(data, "b.jpg"))
    assert response.status_code == 201
    images = response.json()["images"]
    assert [i["duplicate"] for i in images] == [False, True]
    assert images[0]["id"] == images[1]["id"]
    assert UploadedImage.objects.count() == 1


@pytest.mark.parametrize(
    ("image_sync", "name", "data", "code"),
    [
        ({}, "notes.txt", b"just some text, not an image", "format"),
        ({}, "anim.gif", encode(photo_like((8, 8)), "GIF"), "format"),
        ({}, "empty.jpg", b"", "empty"),
        ({}, "cut.jpg", jpeg_bytes((64, 48))[:-200], "corrupt"),
        ({"MAX_FILE_SIZE": 1000}, "big.jpg", jpeg_bytes((64, 48)), "max_file_size"),
        ({"MAX_PIXELS": 100}, "wide.jpg", jpeg_bytes((64, 48)), "max_pixels"),
        ({"ALLOWED_FORMATS": ("JPEG",)}, "pic.png", png_bytes(), "format"),
    ],
)
def test_rejected_file_is_400_naming_the_file_and_nothing_is_stored(
    alice_client, settings, image_sync, name, data, code
):
    settings.IMAGE_SYNC = image_sync
    good = upload(jpeg_bytes((1, 1), seed=7), "good.jpg")  # passes every rule set here
    response = post_images(alice_client, good, upload(data, name))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"errors"}
    errors = body["errors"]["images"]
    assert [(e["file"], e["code"]) for e in errors] == [(name, code)]
    assert name in errors[0]["message"]
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_every_rejected_file_is_reported(alice_client, settings):
    response = post_images(
        alice_client, upload(b"nope", "one.txt"), upload(b"", "two.jpg", "image/jpeg")
    )
    assert response.status_code == 400
    errors = response.json()["errors"]["images"]
    assert [(e["file"], e["code"]) for e in errors] == [("one.txt", "format"), ("two.jpg", "empty")]
    assert "one.txt" in errors[0]["message"]
    assert "two.jpg" in errors[1]["message"]
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_too_many_files_is_400_and_nothing_is_stored(alice_client, settings):
    settings.IMAGE_SYNC = {"MAX_FILES": 2}
    response = post_images(alice_client, *(upload(jpeg_bytes(seed=s)) for s in range(3)))
    assert response.status_code == 400
    errors = response.json()["errors"]["images"]
    assert [e["code"] for e in errors] == ["max_files"]
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_upload_without_files_is_400(alice_client):
    response = post_images(alice_client)
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]["images"]] == ["required"]


def test_storage_failure_mid_submission_leaves_nothing_behind(alice_client, settings, monkeypatch):
    saved: list[str] = []
    original_save = FileSystemStorage.save

    def failing_second_save(self, name, content, max_length=None):
        if saved:
            raise OSError("disk full")
        saved.append(name)
        return original_save(self, name, content, max_length=max_length)

    monkeypatch.setattr(FileSystemStorage, "save", failing_second_save)
    response = post_images(alice_client, upload(jpeg_bytes(seed=8)), upload(jpeg_bytes(seed=9)))
    # A storage failure is the server's, and passes: 503, JSON, when to try again.
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    [error] = response.json()["errors"]["__all__"]
    assert error["code"] == "storage_unavailable"
    assert "nothing was kept" in error["message"]
    assert len(saved) == 1
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


def test_storage_failure_on_the_upload_page_says_so_and_keeps_nothing(
    alice_client, settings, monkeypatch
):
    def failing_save(self, name, content, max_length=None):
        raise OSError("connection reset by the storage")

    monkeypatch.setattr(FileSystemStorage, "save", failing_save)
    response = alice_client.post("/upload-image/", {"images": [upload(jpeg_bytes(seed=10))]})
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "The images could not be stored just now" in response.content.decode()
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


# -- methods ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", API_LIST, "POST"),
        ("patch", API_LIST, "POST"),
        ("delete", API_LIST, "POST"),
        ("post", "/api/images/1/", "GET"),
        ("put", "/api/images/1/", "DELETE"),
        ("patch", "/api/images/1/", "DELETE"),
    ],
)
def test_wrong_method_is_405_json(alice_client, method, path, allowed):
    response = getattr(alice_client, method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert allowed in response["Allow"]
    assert [e["code"] for e in response.json()["errors"]["__all__"]] == ["method"]


def test_wrong_method_does_not_store_anything(alice_client, settings):
    response = alice_client.put(API_LIST, b"", content_type="multipart/form-data; boundary=x")
    assert response.status_code == 405
    assert UploadedImage.objects.count() == 0


# -- list ---------------------------------------------------------------------


def test_empty_list(alice_client):
    response = alice_client.get(API_LIST)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "count": 0,
        "page": 1,
        "num_pages": 1,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_list_is_paginated_by_page_size(alice_client, alice, settings):
    settings.IMAGE_SYNC = {"PAGE_SIZE": 2}
    rows = make_rows(alice, 5)
    newest_first = [r.pk for r in sorted(rows, key=lambda r: (r.created, r.pk), reverse=True)]

    first = alice_client.get(API_LIST).json()
    assert (first["count"], first["page"], first["num_pages"]) == (5, 1, 3)
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/images/?page=2"
    assert len(first["results"]) == 2

    second = alice_client.get(first["next"]).json()
    assert second["page"] == 2
    assert second["previous"] == "http://testserver/api/images/?page=1"
    assert second["next"] == "http://testserver/api/images/?page=3"

    third = alice_client.get(second["next"]).json()
    assert third["page"] == 3
    assert third["next"] is None
    assert len(third["results"]) == 1

    ids = [r["id"] for page in (first, second, third) for r in page["results"]]
    assert ids == newest_first


@pytest.mark.parametrize("page", ["3", "0", "abc"])
def test_list_page_that_does_not_exist_is_404_json(alice_client, alice, settings, page):
    settings.IMAGE_SYNC = {"PAGE_SIZE": 2}
    make_rows(alice, 3)
    response = alice_client.get(API_LIST, {"page": page})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert [e["code"] for e in response.json()["errors"]["__all__"]] == ["not_found"]


def test_list_results_are_image_objects(alice_client, alice):
    rows = make_rows(alice, 4)
    results = {r["id"]: r for r in alice_client.get(API_LIST).json()["results"]}
    assert set(results) == {r.pk for r in rows}
    for row in rows:
        item = results[row.pk]
        assert set(item) >= IMAGE_KEYS
        assert item["status"] == row.status
        assert item["duplicate"] is False
        assert item["md5"] == row.md5
        assert item["original_url"] == row.original.url
        if row.status == "done":
            assert item["resized_url"] == row.resized.url
            assert (item["resized_width"], item["resized_height"]) == (1200, 900)
            assert item["renditions"] == [
                {
                    "format": e["format"],
                    "width": e["width"],
                    "height": e["height"],
                    "url": f"/media/{e['name']}",
                    "size": e["size"],
                }
                for e in row.renditions
            ]
            assert len(item["renditions"]) == 9
            assert item["placeholder"] == row.placeholder
        else:
            assert item["resized_url"] is None
            assert (item["renditions"], item["placeholder"]) == ([], None)
        assert item["error"] == ("broken" if row.status == "failed" else "")


# -- detail -------------------------------------------------------------------


def test_detail_follows_the_image_from_pending_to_done(alice_client, settings, clear_cache):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (32, 32)}
    uploaded = post_images(alice_client, upload(jpeg_bytes((64, 48), seed=12))).json()
    pk = uploaded["images"][0]["id"]

    pending = alice_client.get(api_detail(pk))
    assert pending.status_code == 200
    assert pending["Content-Type"] == "application/json"
    assert pending.json()["status"] == "pending"
    assert pending.json()["resized_url"] is None

    assert services.process_image(pk) == "done"

    done = alice_client.get(api_detail(pk)).json()
    assert set(done) >= IMAGE_KEYS
    assert done["id"] == pk
    assert done["status"] == "done"
    assert done["duplicate"] is False
    assert (done["width"], done["height"]) == (64, 48)
    assert (done["resized_width"], done["resized_height"]) == (32, 24)
    assert done["error"] == ""
    assert done["resized_url"].startswith(settings.MEDIA_URL)
    resized = Path(settings.MEDIA_ROOT) / done["resized_url"][len(settings.MEDIA_URL) :]
    assert resized.is_file()
    # The list says the same.
    [listed] = alice_client.get(API_LIST).json()["results"]
    assert listed == done


def test_reprocessed_image_has_no_resized_url_until_done_again(alice_client, clear_cache):
    pk = post_images(alice_client, upload(jpeg_bytes(seed=15))).json()["images"][0]["id"]
    assert services.process_image(pk) == "done"
    assert alice_client.get(api_detail(pk)).json()["resized_url"]

    assert services.reprocess(UploadedImage.objects.filter(pk=pk)) == 1
    data = alice_client.get(api_detail(pk)).json()
    assert data["status"] == "pending"
    assert data["resized_url"] is None


def test_detail_of_a_failed_image_shows_the_error(alice_client):
    pk = post_images(alice_client, upload(jpeg_bytes(seed=13))).json()["images"][0]["id"]
    services.fail_image(pk, "the image cannot be processed: boom")
    data = alice_client.get(api_detail(pk)).json()
    assert data["status"] == "failed"
    assert data["error"] == "the image cannot be processed: boom"
    assert data["resized_url"] is None


def test_detail_of_a_missing_image_is_404_json(alice_client):
    response = alice_client.get(api_detail(999999))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert [e["code"] for e in response.json()["errors"]["__all__"]] == ["not_found"]


# -- who sees what ------------------------------------------------------------


def test_owner_scope_keeps_users_apart(alice_client, bob_client, alice, bob):
    data = jpeg_bytes(seed=21)
    a_item = post_images(alice_client, upload(data)).json()["images"][0]

    # Bob cannot see Alice's image, and it looks exactly like a missing one.
    assert bob_client.get(API_LIST).json()["count"] == 0
    hidden = bob_client.get(api_detail(a_item["id"]))
    assert hidden.status_code == 404
    assert hidden.json() == bob_client.get(api_detail(999999)).json()

    # Bob uploading the same bytes gets a new image of his own.
    response = post_images(bob_client, upload(data))
    assert response.status_code == 201
    [b_item] = response.json()["images"]
    assert b_item["duplicate"] is False
    assert b_item["id"] != a_item["id"]
    assert UploadedImage.objects.get(pk=b_item["id"]).owner == bob
    assert UploadedImage.objects.get(pk=a_item["id"]).owner == alice

    assert [r["id"] for r in bob_client.get(API_LIST).json()["results"]] == [b_item["id"]]
    assert [r["id"] for r in alice_client.get(API_LIST).json()["results"]] == [a_item["id"]]
    assert alice_client.get(api_detail(b_item["id"])).status_code == 404

    # A re-upload by Bob is a duplicate of Bob's image, not Alice's.
    again = post_images(bob_client, upload(data)).json()["images"][0]
    assert (again["id"], again["duplicate"]) == (b_item["id"], True)


def test_global_scope_shares_identical_content(alice_client, bob_client, alice, settings):
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global"}
    data = jpeg_bytes(seed=22)
    a_item = post_images(alice_client, upload(data)).json()["images"][0]

    response = post_images(bob_client, upload(data, "mine.jpg"))
    assert response.status_code == 200
    [b_item] = response.json()["images"]
    assert b_item["duplicate"] is True
    assert b_item["id"] == a_item["id"]
    assert UploadedImage.objects.count() == 1
    assert UploadedImage.objects.get().owner == alice

    assert [r["id"] for r in bob_client.get(API_LIST).json()["results"]] == [a_item["id"]]
    assert bob_client.get(api_detail(a_item["id"])).status_code == 200


# -- CSRF ---------------------------------------------------------------------


def test_session_authenticated_upload_needs_the_csrf_token(alice, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    refused = post_images(client, upload(jpeg_bytes(seed=31)))
    assert refused.status_code == 403
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []

    page = client.get(reverse("image_sync:upload"))
    assert page.status_code == 200
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    wrong = post_images(client, upload(jpeg_bytes(seed=31)), HTTP_X_CSRFTOKEN="x" * 64)
    assert wrong.status_code == 403
    assert UploadedImage.objects.count() == 0

    accepted = post_images(client, upload(jpeg_bytes(seed=31)), HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert UploadedImage.objects.count() == 1


# -- cost per image -----------------------------------------------------------


def test_list_costs_the_same_queries_and_no_storage_io_per_image(
    alice_client, alice, settings, storage_calls
):
    settings.IMAGE_SYNC = {"PAGE_SIZE": 100}
    alice_client.get(API_LIST)  # warm up the session and user lookups

    make_rows(alice, 3)
    with CaptureQueriesContext(connection) as few:
        response = alice_client.get(API_LIST)
    assert len(response.json()["results"]) == 3

    make_rows(alice, 27, start=3)
    with CaptureQueriesContext(connection) as many:
        response = alice_client.get(API_LIST)
    results = response.json()["results"]
    assert len(results) == 30
    assert sum(1 for r in results if r["resized_url"]) == 8

    assert len(many.captured_queries) == len(few.captured_queries)
    assert storage_calls == []
    # The counter does see the storage the app uses.
    image_storage.exists("anything")
    assert storage_calls == ["exists"]
