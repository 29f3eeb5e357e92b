"""A worker keeps its database connection from image to image.

Celery's Django fixup closes the connection before and after every task
unless ``CELERY_DB_REUSE_MAX`` is set, so each image paid a new connection
(3 ms on PostgreSQL over loopback). ``celery_config.RECOMMENDED`` sets it, and
the app's tasks close connections as Django closes a request's (broken, or
older than ``CONN_MAX_AGE``). Counted on the database server itself; SQLite
has no server and no connection cost, so these run on PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.db import connection, transaction

from django_image_sync import queue, services
from django_image_sync.celery_config import RECOMMENDED
from django_image_sync.models import Status, UploadedImage
from tests.conftest import WorkerProcess, redis_reachable, service_unavailable, wait_for_status
from tests.images import jpeg_bytes, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture(autouse=True)
def _server_database() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server connections to count")


@pytest.fixture
def keeping_worker(tmp_path) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    """A worker on its own queue with RECOMMENDED's db_reuse_max and CONN_MAX_AGE 60."""
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")
    worker = WorkerProcess(
        tmp_path / "worker.log",
        env={"IMAGE_SYNC_TEST_KEEP_CONNECTIONS": "1"},
        name=f"image-sync-connections-{settings.RUN_ID}",
        queue=f"{settings.CELERY_TASK_DEFAULT_QUEUE}-connections",
    )
    worker.start()
    yield worker
    worker.stop()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(worker.queue)
    client.close()


def connections_opened() -> int:
    """How many connections the database server has accepted so far."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        else:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
            return int(cursor.fetchone()[1])
        return int(cursor.fetchone()[0])


def process(worker: WorkerProcess, seeds: range) -> list[UploadedImage]:
    """Upload one new photo per seed and have ``worker`` process them in turn."""
    with pytest.MonkeyPatch.context() as patch:
        # Not queued by the upload (the session's worker may be consuming the
        # default queue): each goes to ``worker``'s own queue below.
        patch.setattr(queue, "enqueue_resize", lambda *args, **kwargs: True)
        rows = _upload(seeds)
    done = []
    for outcome in rows:
        current_app.send_task(
            "django_image_sync.resize_image", (outcome.image.pk,), queue=worker.queue
        )
        done.append(wait_for_status(outcome.image.pk, {Status.DONE}))
    return done


def _upload(seeds: range) -> list[services.UploadOutcome]:
    with transaction.atomic():
        return [
            services.upload_images([upload(jpeg_bytes((96, 64), seed=seed), f"c{seed}.jpg")])[0]
            for seed in seeds
        ]


def test_recommended_settings_keep_a_worker_database_connection(keeping_worker):
    assert RECOMMENDED["db_reuse_max"] >= 100
    process(keeping_worker, range(1, 3))  # the worker's first connection is made
    before = connections_opened()
    images = process(keeping_worker, range(3, 9))
    opened = connections_opened() - before
    assert all(image.status == Status.DONE for image in images)
    # Six images, one after the other: the worker opened no new connection
    # (one for the fixup's own recycling at most); a connection per task was 6.
    assert opened <= 1, f"{opened} connections for 6 images"


def test_a_broken_worker_connection_is_replaced_before_the_next_image(keeping_worker):
    if connection.vendor != "postgresql":
        pytest.skip("ends the worker's session with pg_terminate_backend")
    process(keeping_worker, range(11, 12))
    with connection.cursor() as cursor:
        # Every other session on this test database: the worker's.
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    [image] = process(keeping_worker, range(12, 13))
    assert image.status == Status.DONE
    assert image.attempts == 1, "the image waited for a retry instead of a new connection"
