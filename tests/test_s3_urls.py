"""S3 URLs: private originals behind signed URLs that stay the same long enough
for browsers to cache them, and public outputs in a storage of their own
(OUTPUT_STORAGE) behind a CDN domain. On moto's S3 server (tests/test_s3.py)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from django_image_sync import services, storage
from django_image_sync.models import UploadedImage
from tests.images import jpeg_bytes, upload
from tests.support import s3
from tests.support.clients import logged_in
from tests.test_s3 import Requests

pytest.importorskip("storages", reason="django-storages is in the test extra")

pytestmark = [pytest.mark.django_db, pytest.mark.db_independent]

PRIVATE = "image-sync-private"  # no bucket policy: only signed requests may read
PUBLIC = s3.BUCKET  # the test bucket, readable by anyone (tests/support/s3.py)


@pytest.fixture
def split(settings: Any, moto_url: str, monkeypatch: Any) -> Iterator[str]:
    """Originals in a private bucket (signed URLs, 1 hour), outputs in a public one
    served from a CDN domain; nothing queued (the test runs the worker path)."""
    from django_image_sync import queue

    monkeypatch.setattr(queue, "enqueue_resize", lambda *args, **kwargs: True)
    client = s3.client(moto_url)
    s3.empty_bucket(moto_url)  # what other tests of the session left there
    if PRIVATE not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=PRIVATE)
    private = s3.storage_settings(moto_url, querystring_auth=True, querystring_expire=3600)
    private["OPTIONS"]["bucket_name"] = PRIVATE
    public = s3.storage_settings(moto_url, custom_domain="cdn.example.test")
    settings.STORAGES = {**settings.STORAGES, "private": private, "public": public}
    settings.IMAGE_SYNC = {"STORAGE": "private", "OUTPUT_STORAGE": "public"}
    yield moto_url
    for key in keys(moto_url, PRIVATE):
        client.delete_object(Bucket=PRIVATE, Key=key)
    s3.empty_bucket(moto_url)


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = s3.client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_originals_stay_private_and_outputs_go_public(split: str, alice: Any) -> None:
    [outcome] = services.upload_images([upload(jpeg_bytes((1200, 900), seed=521))], owner=alice)
    assert services.process_image(outcome.image.pk) == "done"
    image = UploadedImage.objects.get()

    assert keys(split, PRIVATE) == [str(image.original.name)]
    assert keys(split, PUBLIC) == sorted(image.output_names())

    requests, output_requests = Requests(), Requests(storage.output_storage)
    data = logged_in(alice).get(f"/api/images/{image.pk}/").json()
    page = logged_in(alice).get(f"/images/{image.pk}/").content.decode()
    assert requests == output_requests == []  # URLs are made here, never asked of S3

    for rendition in data["renditions"]:
        assert rendition["url"] == f"https://cdn.example.test/{rendition['url'].split('/', 3)[3]}"
        assert "Signature" not in rendition["url"]
        assert rendition["url"] in page
    assert data["resized_url"].startswith("https://cdn.example.test/image_sync/resized/")
    # The private original: a signed URL, which S3 serves.
    original = data["original_url"]
    assert "Signature=" in original  # SigV2 or SigV4, as botocore picks for the endpoint
    assert urlsplit(original).path == f"/{PRIVATE}/{image.original.name}"
    with storage.image_storage.open(str(image.original.name)) as stored:
        expected = stored.read()
    with urllib.request.urlopen(original, timeout=10) as response:
        assert response.status == 200
        assert response.read() == expected
    unsigned = original.split("?", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=10)
    refused.value.close()
    assert refused.value.code == 403


def test_a_signed_url_is_handed_out_again_for_half_its_lifetime(
    split: str, alice: Any, monkeypatch: Any
) -> None:
    [outcome] = services.upload_images([upload(jpeg_bytes((96, 64), seed=522))], owner=alice)
    client = logged_in(alice)
    url = f"/api/images/{outcome.image.pk}/"
    first = client.get(url).json()["original_url"]
    time.sleep(1.1)  # S3 signatures carry the second they were made at
    assert client.get(url).json()["original_url"] == first
    # The storage alone would have signed anew.
    backend = storage.image_storage.backend
    assert backend.url(str(outcome.image.original.name)) != first

    # Half an hour later (half of querystring_expire), a new one is signed.
    later = time.monotonic() + 1800 + 1
    monkeypatch.setattr(storage.time, "monotonic", lambda: later)
    assert client.get(url).json()["original_url"] != first
