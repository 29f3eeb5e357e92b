"""``django_image_sync.queue``: the resize task published by name (read back from the
real broker), the sweeper and reprocessing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from django_image_sync import queue, services
from django_image_sync.models import Status, UploadedImage
from tests.conftest import redis_reachable, service_unavailable
from tests.images import jpeg_bytes, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def private_queue(monkeypatch):
    """Publishing goes to a queue no worker of this run consumes; its messages, decoded."""
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")
    name = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-queue-tests"
    monkeypatch.setitem(queue.current_app.conf, "task_default_queue", name)
    monkeypatch.setattr(queue, "_broker_down_until", 0.0)
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(name)

    def messages() -> list[dict]:
        raw = client.lrange(name, 0, -1)
        client.delete(name)
        # Kombu's Redis transport pushes to the left: the oldest is last.
        return [json.loads(item) for item in reversed(raw)]

    yield messages
    client.delete(name)
    client.close()


def body(message: dict) -> list:
    """The task's ``[args, kwargs, embed]``, as Celery's JSON protocol encodes them."""
    return json.loads(base64.b64decode(message["body"]))


def test_a_resize_is_published_by_task_name_with_its_arguments(private_queue):
    assert queue.enqueue_resize(41) is True
    assert queue.enqueue_resize(42, force=True) is True

    first, second = private_queue()
    assert first["headers"]["task"] == second["headers"]["task"] == queue.RESIZE_TASK
    assert (first["headers"]["argsrepr"], first["headers"]["kwargsrepr"]) == ("(41,)", "{}")
    assert body(first)[:2] == [[41], {}]
    assert body(second)[:2] == [[42], {"force": True}]


def test_the_web_side_never_imports_the_tasks_module():
    """Publishing by name: a web process that queues resizes loads no worker code."""
    code = (
        "import sys, django; django.setup();"
        "import django_image_sync.queue, django_image_sync.uploads, django_image_sync.views;"
        "print('django_image_sync.tasks' in sys.modules, 'django_image_sync.worker' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["False", "False"]


def stored_pending(seed: int) -> UploadedImage:
    with transaction.atomic():
        [outcome] = services.upload_images([upload(jpeg_bytes(seed=seed), f"{seed}.jpg")])
    return outcome.image


def test_sweep_queues_again_only_rows_left_behind(private_queue):
    old = stored_pending(71)
    fresh = stored_pending(72)
    private_queue()  # what the uploads themselves published
    long_ago = timezone.now() - timedelta(seconds=3600)
    UploadedImage.objects.filter(pk=old.pk).update(updated=long_ago)

    assert queue.sweep(600) == [old.pk]

    [message] = private_queue()
    assert body(message)[0] == [old.pk]
    # Touched, so the next sweep does not queue it again at once.
    assert UploadedImage.objects.get(pk=old.pk).updated > long_ago
    assert queue.sweep(600) == []
    assert UploadedImage.objects.get(pk=fresh.pk).status == Status.PENDING


def test_sweep_queues_a_waiting_image_when_its_next_try_comes_and_not_before(private_queue):
    waiting = stored_pending(73)
    private_queue()
    now = timezone.now()
    # Waiting since long ago (so "left behind" by age), but its next try is later.
    UploadedImage.objects.filter(pk=waiting.pk).update(
        updated=now - timedelta(hours=2),
        retry_at=now + timedelta(minutes=5),
        retrying_since=now - timedelta(hours=2),
    )
    assert queue.sweep(600) == []
    assert private_queue() == []

    UploadedImage.objects.filter(pk=waiting.pk).update(retry_at=now - timedelta(seconds=1))
    assert queue.sweep(600) == [waiting.pk]
    [message] = private_queue()
    assert body(message)[0] == [waiting.pk]
    row = UploadedImage.objects.get(pk=waiting.pk)
    # Queued once: no longer due, and fresh again for the "left behind" rule;
    # it keeps counting its horizon from when it started failing.
    assert row.retry_at is None
    assert row.retrying_since == now - timedelta(hours=2)
    assert queue.sweep(600) == []


@pytest.mark.parametrize(
    ("failing_for", "horizon", "wait"),
    [
        (0, 86400, queue.RETRY_LATER_MIN),  # the first wait
        (300, 86400, 300),  # as long as it has been failing: the waits double
        (5 * 3600, 86400, queue.RETRY_LATER_MAX),  # at most an hour
        (86000, 86400, 400),  # never past the horizon: the last try is at its end
        (90000, 86400, 0),
    ],
)
def test_the_waits_after_temporary_failures_grow_within_their_bounds(failing_for, horizon, wait):
    assert queue.retry_later_delay(failing_for, horizon) == wait


def test_reprocess_starts_images_over_and_queues_them_after_commit(private_queue):
    image = stored_pending(73)
    private_queue()
    assert UploadedImage.objects.transition(image.pk, Status.PROCESSING, attempts=2)
    assert UploadedImage.objects.transition(image.pk, Status.FAILED, error="boom")

    with transaction.atomic():
        assert queue.reprocess([image]) == 1
        assert private_queue() == []  # not before the commit

    row = UploadedImage.objects.get(pk=image.pk)
    assert (row.status, row.error, row.attempts) == (Status.PENDING, "", 0)
    [message] = private_queue()
    assert body(message)[:2] == [[image.pk], {"force": True}]
