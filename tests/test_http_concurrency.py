"""Concurrent uploads over real HTTP, against a real server process.

The test site (``tests.settings``, ``tests.urls``) is served by gunicorn on
loopback, with several worker processes of several threads each, on the
database this test session created (``IMAGE_SYNC_TEST_WORKER=1``) and the same
storage: MEDIA_ROOT (``IMAGE_SYNC_TEST_SCRATCH`` is inherited), or on an S3 run
(``IMAGE_SYNC_TEST_S3=1``) the session's moto bucket, where each upload is one
PUT with no probe before it. A real Celery worker resizes what is stored.

Two users each send the same photo twenty times at once. Deduplication must
hold across processes: one row per user (the owner scope), one stored original
shared by both rows, every request answered 201 (the one that stored it) or 200
(duplicate), never a server error, and no file left behind that no row uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from django_image_sync.models import Status, UploadedImage, original_name
from tests.conftest import REPO, wait_for_status
from tests.images import jpeg_bytes
from tests.support.media import read_stored, stored_files, stored_url
from tests.support.processes import Service, free_port

requests = pytest.importorskip("requests", reason="requests is needed (the test extra)")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.worker,
    pytest.mark.skipif(os.name != "posix", reason="drives POSIX processes"),
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None,
        reason="gunicorn is not installed; it must be in the test extra for this test to run",
    ),
]

UPLOADS_PER_USER = 20
# gunicorn: processes x threads handling requests at once.
SERVER_PROCESSES = 4
SERVER_THREADS = 4
# Bounds, in seconds, so that a hang fails the test instead of the job.
START_TIMEOUT = 30
HTTP_TIMEOUT = 30
THREAD_WAIT = 60


# -- the server -----------------------------------------------------------------


def control_socket_off() -> list[str]:
    """Recent gunicorn opens a control socket at one path shared by every instance."""
    from gunicorn.config import KNOWN_SETTINGS

    flags = {flag for setting in KNOWN_SETTINGS for flag in setting.cli or ()}
    return ["--no-control-socket"] if "--no-control-socket" in flags else []


class Server(Service):
    """gunicorn, with the base URL it serves."""

    def __init__(self, base: str, argv: list[str], *, env: dict[str, str], log: Path) -> None:
        super().__init__("gunicorn", argv, cwd=REPO, env=env, log=log)
        self.base = base


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """gunicorn serving ``tests.wsgi`` on the session's test database."""
    if connection.vendor == "sqlite":
        pytest.skip(
            "needs a database server: SQLite with the test settings' deferred transactions "
            "refuses concurrent writers from several processes (run with TEST_DB=postgres)"
        )
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "IMAGE_SYNC_TEST_WORKER": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }
    argv = [
        *(sys.executable, "-m", "gunicorn", "tests.wsgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(SERVER_PROCESSES)),
        *("--worker-class", "gthread", "--threads", str(SERVER_THREADS)),
        *("--timeout", "60", "--graceful-timeout", "5"),
        *("--access-logfile", "-", "--error-logfile", "-"),
        *control_socket_off(),
    ]
    running = Server(f"http://127.0.0.1:{port}", argv, env=env, log=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not running.alive():
                pytest.fail(f"gunicorn exited {running.process.returncode}:\n{running.output()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{running.base}/admin/login/", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer in {START_TIMEOUT} s:\n{running.output()}")
            time.sleep(0.2)
        yield running
    finally:
        running.stop()


# -- clients ------------------------------------------------------------------------


def session_cookie(user: Any) -> str:
    """A committed session for ``user``, as the session cookie's value."""
    client = Client()
    client.force_login(user)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def logged_in(base: str, cookie: str) -> requests.Session:
    """A client holding the session and a CSRF cookie, as a browser would."""
    http = requests.Session()
    http.cookies.set(settings.SESSION_COOKIE_NAME, cookie)
    # Not kept alive: the upload comes after the other clients are ready, by when
    # the server may have closed an idle connection (gunicorn's keepalive is 2 s).
    page = http.get(f"{base}/upload-image/", headers={"Connection": "close"}, timeout=HTTP_TIMEOUT)
    assert page.status_code == 200, page.text[:2000]
    assert settings.CSRF_COOKIE_NAME in http.cookies
    return http


@dataclass
class Answer:
    user: str
    status: int
    body: Any


# -- the test -----------------------------------------------------------------------------


def test_parallel_uploads_of_the_same_bytes_store_one_original_and_one_row_per_owner(
    server: Server, celery_worker: Any, django_user_model: Any, clear_cache: None
) -> None:
    users = {
        name: django_user_model.objects.create_user(name, password="pw")
        for name in ("alice", "bob")
    }
    cookies = {name: session_cookie(user) for name, user in users.items()}
    # A photo of about 2.4 MB: under FILE_UPLOAD_MAX_MEMORY_SIZE, so each request holds
    # it in memory and the storage writes it in many chunks while others race for it.
    data = jpeg_bytes((4800, 3600), seed=41, quality=98)
    assert 32 * 64 * 1024 < len(data) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    sha256 = hashlib.sha256(data).hexdigest()
    stored = original_name(sha256, "jpg")

    jobs = [(name, i) for i in range(UPLOADS_PER_USER) for name in users]
    clients = {job: logged_in(server.base, cookies[job[0]]) for job in jobs}
    start = threading.Barrier(len(jobs))
    answers: list[Answer] = []
    failures: list[str] = []
    lock = threading.Lock()

    def upload(job: tuple[str, int]) -> None:
        name, index = job
        http = clients[job]
        try:
            start.wait(THREAD_WAIT)
            response = http.post(
                f"{server.base}/api/images/",
                files={"images": (f"{name}-{index}.jpg", data, "image/jpeg")},
                headers={"X-CSRFToken": http.cookies[settings.CSRF_COOKIE_NAME]},
                timeout=HTTP_TIMEOUT,
            )
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text[:2000]
            with lock:
                answers.append(Answer(name, response.status_code, body))
        except Exception as exc:
            with lock:
                failures.append(f"{job}: {exc!r}")

    threads = [threading.Thread(target=upload, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_WAIT + HTTP_TIMEOUT)
    for http in clients.values():
        http.close()

    log = server.output()
    assert failures == []
    assert len(answers) == len(jobs)
    statuses = sorted(a.status for a in answers)
    assert set(statuses) <= {200, 201}, (statuses, [a.body for a in answers if a.status > 201])

    rows = {row.owner.username: row for row in UploadedImage.objects.select_related("owner")}
    assert sorted(rows) == sorted(users)
    for name, user in users.items():
        row = rows[name]
        assert row.scope == f"user:{user.pk}"
        assert row.sha256 == sha256
        assert row.original.name == stored
        mine = [a for a in answers if a.user == name]
        assert len(mine) == UPLOADS_PER_USER
        # Exactly one request stored the image; every other one was told it is a duplicate.
        assert sorted(a.status for a in mine) == [200] * (UPLOADS_PER_USER - 1) + [201]
        items = [item for a in mine for item in a.body["images"]]
        assert len(items) == UPLOADS_PER_USER
        assert {item["id"] for item in items} == {row.pk}
        created = [a.body["images"][0] for a in mine if a.status == 201]
        assert [item["duplicate"] for item in created] == [False]
        assert row.original_name == created[0]["name"]
        duplicates = [a.body["images"][0] for a in mine if a.status == 200]
        assert all(item["duplicate"] is True for item in duplicates)
        assert {item["original_url"] for item in items} == {stored_url(stored)}
    assert UploadedImage.objects.count() == len(users)

    # The worker resizes both rows; the resize of identical content is shared too.
    done = [wait_for_status(row.pk, {Status.DONE, Status.FAILED}) for row in rows.values()]
    assert [image.status for image in done] == [Status.DONE] * len(users), [
        image.error for image in done
    ]
    resized = {image.resized.name for image in done}
    assert len(resized) == 1

    # One original and one set of outputs, all in use: nothing orphaned, no copies.
    outputs = {name for image in done for name in image.output_names()}
    assert len(outputs) == len(done[0].renditions)
    assert stored_files() == sorted([stored, *outputs])
    assert read_stored(stored) == data

    assert " 500 " not in log, log[-6000:]
    assert "Traceback" not in log, log[-6000:]
    assert server.process.poll() is None, log[-6000:]
