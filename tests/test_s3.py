"""Uploads on django-storages' S3Storage against a real S3 API: moto's server
mode, started on a free loopback port (``moto_url`` in tests/conftest.py).

Each request the storage sends is counted (a botocore ``before-send`` hook) to
hold the budget of an upload: one PUT per new file and at most one other
request (the check after commit that the object is still there); none for a
duplicate. A storage that does not answer gives 503 ``storage_unavailable``
and leaves nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_image_sync import queue
from django_image_sync.models import UploadedImage, original_name
from django_image_sync.storage import image_storage
from tests.images import jpeg_bytes, upload
from tests.support import s3
from tests.support.clients import logged_in
from tests.support.processes import free_port

boto3 = pytest.importorskip("boto3", reason="boto3 comes with django-storages[s3] (test extra)")
pytest.importorskip("storages", reason="django-storages is in the test extra")

pytestmark = [pytest.mark.django_db, pytest.mark.db_independent]


def s3_options(endpoint_url: str, **extra: Any) -> dict[str, Any]:
    return s3.storage_settings(endpoint_url, **extra)


@pytest.fixture
def on_s3(settings: Any, moto_url: str, monkeypatch: Any) -> None:
    # Nothing is queued: a task left behind would be taken later by the session's
    # worker, for whatever row then has this id (ids are reused between tests).
    monkeypatch.setattr(queue, "enqueue_resize", lambda *args, **kwargs: True)
    settings.STORAGES = {**settings.STORAGES, "s3": s3_options(moto_url)}
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "STORAGE": "s3"}


class Requests(list[tuple[str, str]]):
    """(method, key) of every request the storage's client sends."""

    def __init__(self, storage: Any = image_storage) -> None:
        super().__init__()
        client = storage.backend.connection.meta.client
        client.meta.events.register("before-send.s3.*", self.record)

    def record(self, request: Any, **kwargs: Any) -> None:
        path = request.url.split("?", 1)[0]
        self.append((request.method, path.split(f"/{s3.BUCKET}/", 1)[-1]))


def test_a_new_upload_is_one_put_and_one_check_after_commit(
    on_s3: None, alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    data = jpeg_bytes((96, 64), seed=501)
    requests = Requests()
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(alice).post("/api/images/", {"images": [upload(data)]})
    assert response.status_code == 201
    image = UploadedImage.objects.get()
    key = original_name(image.sha256, "jpg")
    assert requests == [("PUT", key), ("HEAD", key)]
    with image_storage.open(key) as stored:
        assert stored.read() == data


def test_a_duplicate_makes_no_request(
    on_s3: None, alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    data = jpeg_bytes((96, 64), seed=502)
    client = logged_in(alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/images/", {"images": [upload(data)]}).status_code == 201
    requests = Requests()
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/api/images/", {"images": [upload(data, "again.jpg")]})
    assert again.status_code == 200
    assert again.json()["images"][0]["duplicate"] is True
    assert requests == []


def test_pages_and_the_api_make_no_request(
    on_s3: None, alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = logged_in(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/images/", {"images": [upload(jpeg_bytes((96, 64), seed=503))]})
    pk = UploadedImage.objects.get().pk
    requests = Requests()
    for url in ("/images/", f"/images/{pk}/", "/api/images/", f"/api/images/{pk}/"):
        assert client.get(url).status_code == 200
    assert requests == []


def test_an_unreachable_storage_is_503_and_leaves_nothing(
    settings: Any, moto_url: str, alice: Any
) -> None:
    from botocore.config import Config

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})
    settings.STORAGES = {
        **settings.STORAGES,
        "s3": s3_options(closed, client_config=config),
    }
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "STORAGE": "s3"}
    response = logged_in(alice).post(
        "/api/images/", {"images": [upload(jpeg_bytes((96, 64), seed=504))]}
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["errors"]["__all__"][0]["code"] == "storage_unavailable"
    assert UploadedImage.objects.count() == 0


def test_the_worker_reads_the_original_once_and_writes_each_output_once(
    on_s3: None, alice: Any
) -> None:
    from django_image_sync import services

    [outcome] = services.upload_images([upload(jpeg_bytes((1200, 900), seed=505))], owner=alice)
    requests = Requests()
    assert services.process_image(outcome.image.pk) == "done"
    image = UploadedImage.objects.get()
    original = str(image.original.name)
    outputs = sorted(image.output_names())
    assert len(outputs) > 1  # the main output and its renditions
    assert [key for method, key in requests if method == "GET"] == [original]
    assert sorted(key for method, key in requests if method == "PUT") == outputs
    others = [(method, key) for method, key in requests if method not in ("GET", "PUT")]
    assert len(others) <= 2, others  # django-storages' S3File looks the object up first
