"""Steps run inside the benchmark site (DJANGO_SETTINGS_MODULE=bench.site.settings).

``python -m bench.site.driver gallery ROWS REPEATS``: goal 5, prints JSON timings.
``python -m bench.site.driver backlog TAG COUNT IMAGE [IMAGE ...]``: goal 6 and the
camera mix, creates COUNT rows of distinct content through the upload service,
taking the images in turn; each is queued on commit.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site.settings")

import django

django.setup()

from django.conf import settings as django_settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.test import Client  # noqa: E402

from bench.images import with_unique_comment  # noqa: E402
from django_image_sync import conf, services  # noqa: E402
from django_image_sync.models import Status, UploadedImage, output_entries  # noqa: E402


def gallery(rows: int, repeats: int) -> dict[str, object]:
    UploadedImage.objects.filter(original_name__startswith="gallery-").delete()
    plan = conf.output_plan()

    def outputs(index: int) -> list[dict[str, object]]:
        # The outputs the settings give a 4000x3000 photo: 1440, 960, 480 wide,
        # in JPEG, AVIF and WebP, so each tile is the <picture> a site serves.
        entries = output_entries(f"{index:064x}", plan, (1440, 1080))
        return [{**entry, "size": 100_000} for entry in entries]

    UploadedImage.objects.bulk_create(
        UploadedImage(
            original=f"image_sync/originals/ab/ab/{index:064x}.jpg",
            resized=outputs(index)[0]["name"],
            renditions=outputs(index),
            placeholder="data:image/webp;base64," + "A" * 300,
            original_name=f"gallery-{index}.jpg",
            md5=f"{index:032x}",
            sha256=f"{index:064x}",
            scope="anonymous",
            status=Status.DONE,
            width=4000,
            height=3000,
            format="JPEG",
            size=4_000_000,
            resized_width=1440,
            resized_height=1080,
        )
        for index in range(rows)
    )
    client = Client()
    pages = {
        "plain": "/bench/plain-gallery/",
        "gallery": "/images/",
        "api": "/api/images/",
    }
    for url in pages.values():  # warm-up: templates compiled, connection open
        for _ in range(10):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
    count = {
        "plain": pages_count(client.get(pages["plain"]).content, b"<img "),
        "gallery": pages_count(client.get(pages["gallery"]).content, b"<img "),
        "api": len(json.loads(client.get(pages["api"]).content)["results"]),
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(repeats):
        for name, url in pages.items():  # interleaved: noise falls on all three
            start = time.perf_counter()
            client.get(url)
            times[name].append(time.perf_counter() - start)
    result: dict[str, object] = {
        name: {
            "median": statistics.median(values),
            "min": min(values),
            "items": count[name],
        }
        for name, values in times.items()
    }
    result["urls"] = url_costs(client, repeats)
    return result


# How a site may serve the files on S3 (django-storages' S3Storage; its url()
# makes no request, which the hook below checks): see docs/storage.md.
_S3 = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "bucket_name": "bench-images",
        "region_name": "eu-central-1",
        "access_key": "bench",
        "secret_key": "bench-not-secret",
    },
}
URL_MODES: dict[str, dict[str, Any]] = {
    "local files": {},
    "S3, public URLs": {"querystring_auth": False},
    "S3, CDN (custom_domain)": {"querystring_auth": False, "custom_domain": "img.example.com"},
    "S3, signed URLs": {"querystring_auth": True, "querystring_expire": 3600},
}


def url_costs(client: Client, repeats: int) -> dict[str, object]:
    """The gallery page and the list API with each way of serving the files: the
    cost of the page's URLs, and the requests the storage sent (none)."""
    try:
        import storages  # noqa: F401
    except ImportError:
        return {}
    from django.test import override_settings

    from django_image_sync.storage import image_storage

    results: dict[str, object] = {}
    settings_for = {}
    for mode, options in URL_MODES.items():
        if not options:
            settings_for[mode] = override_settings()
            continue
        alias = {**_S3, "OPTIONS": {**_S3["OPTIONS"], **options}}
        stores = {**django_settings.STORAGES, "bench-s3": alias}
        image_sync = {**django_settings.IMAGE_SYNC, "STORAGE": "bench-s3"}
        settings_for[mode] = override_settings(STORAGES=stores, IMAGE_SYNC=image_sync)
    times: dict[str, dict[str, list[float]]] = {m: {"gallery": [], "api": []} for m in URL_MODES}
    sent: list[str] = []
    for _ in range(max(10, repeats // 2)):
        for mode in URL_MODES:
            with settings_for[mode]:
                backend = image_storage.backend
                if hasattr(backend, "connection") and not hasattr(backend, "_bench_hooked"):
                    events = backend.connection.meta.client.meta.events
                    events.register(
                        "before-send.s3.*", lambda request, **kw: sent.append(request.url)
                    )
                    backend._bench_hooked = True
                # Entering the settings made new storage objects (a new boto3
                # client): a site makes them once per process, so one untimed
                # page first.
                client.get("/images/")
                client.get("/api/images/")
                for page, url in (("gallery", "/images/"), ("api", "/api/images/")):
                    start = time.perf_counter()
                    response = client.get(url)
                    times[mode][page].append(time.perf_counter() - start)
                    assert response.status_code == 200, (mode, url, response.status_code)
    # What the app saves by handing a signed URL out again: one signing by the
    # storage's own url(), per URL, fastest of a few rounds of 200.
    with settings_for["S3, signed URLs"]:
        backend = image_storage.backend
        names = [f"image_sync/originals/ab/cd/{index:064x}.jpg" for index in range(200)]
        rounds = []
        for _ in range(5):
            start = time.perf_counter()
            for name in names:
                backend.url(name)
            rounds.append((time.perf_counter() - start) / len(names))
        results["sign_one_url"] = min(rounds)
    urls_per_page = pages_count(client.get("/images/").content, b"/image_sync/resized/")
    for mode in URL_MODES:
        results[mode] = {page: statistics.median(values) for page, values in times[mode].items()}
    results["urls_per_page"] = urls_per_page
    results["storage_requests"] = len(sent)
    return results


def pages_count(body: bytes, needle: bytes) -> int:
    return body.count(needle)


def backlog(tag: str, count: int, images: list[str]) -> dict[str, object]:
    from celery import current_app

    broker = str(current_app.conf.broker_url)
    assert broker.startswith("redis://"), f"tasks would go to {broker}"
    photos = []
    for image in images:
        with open(image, "rb") as fh:
            photos.append(fh.read())
    ids = []
    for index in range(count):
        data = photos[index % len(photos)]
        upload = SimpleUploadedFile(
            f"{tag}-{index}.jpg", with_unique_comment(data, f"{tag}-{index}"), "image/jpeg"
        )
        outcome = services.upload_images([upload])[0]
        ids.append(outcome.image.pk)
    return {"ids": ids}


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "gallery":
        result = gallery(int(args[0]), int(args[1]))
    elif command == "backlog":
        result = backlog(args[0], int(args[1]), args[2:])
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
