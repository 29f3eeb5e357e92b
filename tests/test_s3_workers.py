"""Two worker hosts on one queue of their own, one broker, one database and S3.

The resize task is routed to a queue of its own by Celery's ``task_routes``
(``CELERY_TASK_ROUTES`` in a site's settings); the app publishes by task name,
so the route applies. Two ``celery worker`` processes consume only that queue,
each as if on a host of its own: no memory shared, and a local disk each
(``MEDIA_ROOT``) that must stay empty, the files being on S3 (moto). They
drain a backlog queued before they started, with duplicates among it: the
same content uploaded by two users (twin rows share one set of outputs) and
every task published twice. Every image ends done and is reported processed
once across both processes, every output is stored, nothing else is.

Exactly once across hosts (each decode once, each output PUT once, counted in
the S3 server's own request log) is held by two tests that make a duplicate
meet its original on the other host on purpose: a duplicate delivery of the
task (the image's lock), and twin rows of one content (its render lock).

Runs on the session's database: PostgreSQL when ``TEST_DB=postgres``, else the
SQLite file, which both processes open.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from django_image_sync import queue, services
from django_image_sync.models import Status
from tests.celery_app import app as celery_app
from tests.conftest import WorkerProcess, redis_reachable, service_unavailable, wait_for_status
from tests.faults import disarm_all, events, fault_dir
from tests.images import jpeg_bytes, upload
from tests.support import s3
from tests.support.processes import Service

pytest.importorskip("storages", reason="django-storages is in the test extra")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.worker,
    pytest.mark.db_independent,
]

DISTINCT = 6
TWINS = 3  # of the distinct contents, uploaded by Bob too
WORKERS = 2
WORKER_WAIT = 120
RESIZE_QUEUE = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-resize"
PUT = re.compile(rf'"PUT /{s3.BUCKET}/(image_sync/resized/\S+) HTTP/[\d.]+" 200 ')


def queue_keys(name: str) -> list[str]:
    """Kombu's Redis transport keeps each priority band of a queue in its own list."""
    return [name] + [f"{name}\x06\x16{p}" for p in (3, 6, 9)]


def queued(broker: redis.Redis, name: str) -> int:
    return sum(broker.llen(key) for key in queue_keys(name))


def puts(moto: Service, offset: int) -> Counter[str]:
    """The outputs the S3 server stored since ``offset`` of its log, by key."""
    text = moto.log_path.read_bytes()[offset:].decode(errors="replace")
    return Counter(PUT.findall(text))


def counted(kind: str) -> Counter[str]:
    """How many times each image (pk, as text) had event ``kind`` in a worker."""
    return Counter(line.split()[1] for line in events() if line.startswith(f"{kind} "))


@pytest.fixture
def resize_route() -> Iterator[None]:
    """This process publishes resizes as a site setting CELERY_TASK_ROUTES would."""
    saved = celery_app.conf.task_routes
    celery_app.conf.update(
        task_routes={queue.RESIZE_TASK: {"queue": RESIZE_QUEUE}},
        broker_url=settings.REDIS_URL,
    )
    yield
    celery_app.conf.update(task_routes=saved)


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    client.delete(*queue_keys(RESIZE_QUEUE))
    yield client
    client.delete(*queue_keys(RESIZE_QUEUE))
    client.close()


@pytest.fixture
def on_s3(settings: Any, moto_url: str, clear_cache: None) -> None:
    """This process stores on the hosts' bucket too (it already does on an S3 run);
    the bucket, the events log and the run's cache start empty."""
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(moto_url)}
    s3.empty_bucket(moto_url)
    disarm_all()
    (fault_dir() / "events.log").unlink(missing_ok=True)


@dataclass
class Host:
    worker: WorkerProcess
    media: Path  # its own local disk


@pytest.fixture
def hosts(moto_url: str, tmp_path: Path) -> Iterator[Callable[..., list[Host]]]:
    """Start worker hosts on the resize queue; all stopped after (their logs printed)."""
    started: list[Host] = []

    def start(count: int = WORKERS, **env: str) -> list[Host]:
        for n in range(len(started) + 1, len(started) + count + 1):
            media = tmp_path / f"host-{n}-media"
            media.mkdir()
            worker = WorkerProcess(
                tmp_path / f"host-{n}.log",
                env={
                    "IMAGE_SYNC_TEST_S3": "1",
                    "IMAGE_SYNC_TEST_S3_URL": moto_url,
                    "IMAGE_SYNC_TEST_RESIZE_QUEUE": RESIZE_QUEUE,
                    "IMAGE_SYNC_TEST_MEDIA_ROOT": str(media),
                    # Claims, decodes and signals go to the events log.
                    "IMAGE_SYNC_TEST_FAULT_HOOKS": "1",
                    **env,
                },
                name=f"image-sync-host-{n}-{settings.RUN_ID}",
                queue=RESIZE_QUEUE,
            )
            started.append(Host(worker, media))
            worker.start()
        return started

    yield start
    for host in started:
        host.worker.stop()
        print(f"----- {host.worker.log_path.name}\n{host.worker.output()}")
    (fault_dir() / "events.log").unlink(missing_ok=True)


def runs(started: list[Host]) -> int:
    """How many resize tasks the hosts ran to their end, from Celery's log lines."""
    done = r"Task django_image_sync\.resize_image\[\S+\] succeeded in"
    return sum(len(re.findall(done, host.worker.output())) for host in started)


def wait_for_runs(started: list[Host], count: int) -> None:
    deadline = time.monotonic() + WORKER_WAIT
    while runs(started) < count:
        assert time.monotonic() < deadline, f"{runs(started)} of {count} task runs finished"
        time.sleep(0.1)


def decodes() -> Counter[str]:
    """How many times the hosts decoded each content (by SHA-256)."""
    found = (re.search(r" sha256=(\w+) ", line) for line in events())
    return Counter(match[1] for match in found if match)


def test_two_worker_hosts_drain_a_backlog_on_their_own_queue(
    on_s3: None,
    hosts: Callable[..., list[Host]],
    moto: Service,
    moto_url: str,
    resize_route: None,
    broker: redis.Redis,
    django_user_model: Any,
) -> None:
    alice = django_user_model.objects.create_user("alice", password="pw")
    bob = django_user_model.objects.create_user("bob", password="pw")
    contents = [jpeg_bytes((1600, 1200), seed=700 + i) for i in range(DISTINCT)]

    # The backlog, queued before any worker runs: each upload publishes its task
    # (routed to the resize queue), then every task is published once more.
    rows = [
        services.upload_images([upload(data)], owner=owner)[0].image
        for owner, batch in ((alice, contents), (bob, contents[:TWINS]))
        for data in batch
    ]
    assert len({row.pk for row in rows}) == DISTINCT + TWINS
    for row in rows:
        assert queue.enqueue_resize(row.pk)
    assert queued(broker, RESIZE_QUEUE) == 2 * len(rows)
    assert queued(broker, settings.CELERY_TASK_DEFAULT_QUEUE) == 0

    offset = moto.log_path.stat().st_size
    started = hosts(WORKERS)
    done = [wait_for_status(row.pk, {Status.DONE, Status.FAILED}, WORKER_WAIT) for row in rows]
    wait_for_runs(started, 2 * len(rows))  # the duplicates are taken (and skipped) too

    assert [image.status for image in done] == [Status.DONE] * len(rows), [
        image.error for image in done
    ]
    assert queued(broker, RESIZE_QUEUE) == 0
    for host in started:  # both hosts took tasks from the queue
        assert re.search(
            r"Task django_image_sync\.resize_image\[\S+\] received", host.worker.output()
        )
    # Reported processed once each, across both processes; every claim counted.
    pks = sorted(str(row.pk) for row in rows)
    assert sorted(counted("processed").elements()) == pks
    assert counted("claimed") == Counter({str(image.pk): image.attempts for image in done})
    # Each image claimed once (the duplicates were skipped), each content decoded
    # once (twins reuse it), each output stored once; the bucket holds the
    # originals and outputs the rows name, nothing else.
    assert [image.attempts for image in done] == [1] * len(done)
    assert decodes() == Counter({image.sha256: 1 for image in done})
    outputs = {name for image in done for name in image.output_names()}
    assert puts(moto, offset) == Counter(dict.fromkeys(outputs, 1))
    originals = {str(image.original.name) for image in done}
    assert s3.keys(moto_url) == sorted(originals | outputs)
    # Neither host kept a file on its own disk.
    for host in started:
        assert list(host.media.rglob("*")) == []


# Exactly once across two hosts. Each test below makes a duplicate meet its
# original on the other host on purpose (the "slow" hook holds a decode for
# IMAGE_SYNC_TEST_SLOW_SECONDS after the claim); in a backlog like the one
# above it happens by chance.
SLOW = {"IMAGE_SYNC_TEST_SLOW_SECONDS": "3"}


def test_a_duplicate_task_on_the_other_host_does_not_process_the_image_again(
    on_s3: None,
    hosts: Callable[..., list[Host]],
    moto: Service,
    resize_route: None,
    broker: redis.Redis,
    alice: Any,
) -> None:
    started = hosts(WORKERS, **SLOW)
    offset = moto.log_path.stat().st_size
    [outcome] = services.upload_images(
        [upload(jpeg_bytes((1600, 1200), seed=720), "slow.jpg")], owner=alice
    )
    # The same task again, once a host has claimed the image and is decoding it.
    wait_for_status(outcome.image.pk, {Status.PROCESSING}, WORKER_WAIT)
    assert queue.enqueue_resize(outcome.image.pk)
    done = wait_for_status(outcome.image.pk, {Status.DONE, Status.FAILED}, WORKER_WAIT)
    wait_for_runs(started, 2)

    assert done.status == Status.DONE, done.error
    assert counted("processed") == Counter({str(done.pk): 1})
    assert counted("claimed") == Counter({str(done.pk): 1})
    assert done.attempts == 1
    assert list(decodes().values()) == [1]
    assert puts(moto, offset) == Counter(dict.fromkeys(done.output_names(), 1))


def test_twin_rows_resized_at_once_on_two_hosts_write_each_output_once(
    on_s3: None,
    hosts: Callable[..., list[Host]],
    moto: Service,
    resize_route: None,
    broker: redis.Redis,
    alice: Any,
    bob: Any,
) -> None:
    started = hosts(WORKERS, **SLOW)
    offset = moto.log_path.stat().st_size
    data = jpeg_bytes((1600, 1200), seed=721)
    rows = [
        services.upload_images([upload(data, "slow.jpg")], owner=owner)[0].image
        for owner in (alice, bob)
    ]
    done = [wait_for_status(row.pk, {Status.DONE, Status.FAILED}, WORKER_WAIT) for row in rows]
    wait_for_runs(started, 2)

    assert [image.status for image in done] == [Status.DONE] * 2
    assert {image.resized.name for image in done} == {done[0].resized.name}
    assert puts(moto, offset) == Counter(dict.fromkeys(done[0].output_names(), 1))
