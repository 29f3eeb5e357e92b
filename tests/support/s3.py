"""S3 for the tests: moto's server mode on a loopback port, and django-storages' S3Storage on it.

``IMAGE_SYNC_TEST_S3=1`` runs the suites that apply on S3 instead of local
files (``scripts/test`` does it once): ``tests/settings.py`` then makes the
``default`` storage an ``S3Storage`` on ``IMAGE_SYNC_TEST_S3_URL`` (a free port
picked when the settings are first read and inherited by every subprocess),
and the session starts moto there (``tests/conftest.py``). Plain Python apart
from the optional boto3 import: settings, workers and fixtures all use it.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.processes import Service, free_port

BUCKET = "image-sync-test"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}
START_TIMEOUT = 30
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    ],
}


def enabled() -> bool:
    """Whether this run keeps the app's files on S3 (``IMAGE_SYNC_TEST_S3=1``)."""
    return os.environ.get("IMAGE_SYNC_TEST_S3") == "1"


def session_url() -> str:
    """The endpoint of this run's moto server, chosen once and inherited by subprocesses."""
    return os.environ.setdefault("IMAGE_SYNC_TEST_S3_URL", f"http://127.0.0.1:{free_port()}")


def storage_settings(
    endpoint_url: str, backend: str = "storages.backends.s3.S3Storage", **extra: Any
) -> dict[str, Any]:
    """A ``STORAGES`` entry for ``backend`` on the test bucket at ``endpoint_url``.

    Plain URLs (no query-string signature), as a site serving public media has:
    the pages' URLs are then the bucket's, prefix and all.
    """
    return {
        "BACKEND": backend,
        "OPTIONS": {
            "bucket_name": BUCKET,
            "endpoint_url": endpoint_url,
            "querystring_auth": False,
            **CREDENTIALS,
            **extra,
        },
    }


def moto_server() -> Path | None:
    server = Path(sys.executable).with_name("moto_server")
    return server if server.exists() else None


def start_moto(url: str, log: Path) -> Service:
    """moto_server listening at ``url`` (``http://127.0.0.1:PORT``), with the test bucket,
    whose objects anyone may read."""
    assert moto_server() is not None, "moto[server] is not installed (it is in the test extra)"
    port = int(url.rsplit(":", 1)[1])
    # Not moto_server itself: the same server with one request at a time (see there).
    launcher = Path(__file__).with_name("moto_serialised.py")
    service = Service(
        "moto",
        # -I: isolated, so tests/support (its html.py) is not on sys.path.
        [sys.executable, "-I", str(launcher), "127.0.0.1", str(port)],
        cwd=log.parent,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        log=log,
        grace=5,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or not service.alive():
                service.stop()
                raise AssertionError(f"moto_server did not start: {service.output()}") from None
            time.sleep(0.1)
    s3 = client(url)
    s3.create_bucket(Bucket=BUCKET)
    # Public media, as a site serving the bucket's plain URLs has it.
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_READ))
    return service


def client(url: str) -> Any:
    """A boto3 client of its own on ``url`` (not the storage's)."""
    boto3 = importlib.import_module("boto3")  # no type information
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
        region_name=CREDENTIALS["region_name"],
    )


def keys(url: str, prefix: str = "") -> list[str]:
    """Every key in the test bucket under ``prefix``, sorted."""
    found: list[str] = []
    pages = client(url).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    for page in pages:
        found += [item["Key"] for item in page.get("Contents", ())]
    return sorted(found)


def read(url: str, key: str) -> bytes:
    body: bytes = client(url).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def empty_bucket(url: str) -> None:
    s3 = client(url)
    names = keys(url)
    for start in range(0, len(names), 1000):
        batch = [{"Key": name} for name in names[start : start + 1000]]
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": batch, "Quiet": True})
