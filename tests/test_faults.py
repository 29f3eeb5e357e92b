"""Faults: no upload lost (issue 3).

Every fault is real: a broker port that refuses or never answers, a worker
pool process killed with SIGKILL, a storage that raises, a database that
refuses the INSERT, a cache that is down. The broker and the workers' cache
are a private ``redis-server`` this module starts (``private_redis``), so the
shared services are never stopped, slowed or filled; the workers are real
``celery worker`` subprocesses on it (``tests.faults.worker``) with the fault
hooks of ``tests.faults.worker_hooks`` installed.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from celery.app.defaults import DEFAULTS as CELERY_DEFAULTS
from django.conf import settings
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.test import Client
from PIL import Image

from django_image_sync import conf, processing, queue, results, services, tasks
from django_image_sync.models import Status, UploadedImage, resized_name
from django_image_sync.processing.backends import pillow as pillow_backend
from django_image_sync.signals import image_processed
from tests.celery_app import app as celery_app
from tests.conftest import wait_for_status
from tests.faults import arm, disarm_all, events, fault_dir
from tests.faults.servers import RedisServer, SilentServer, free_port
from tests.faults.worker import FaultWorker
from tests.images import jpeg_bytes, upload
from tests.support import clients, s3
from tests.support.media import is_stored, media_root, read_stored, stored_files

API_LIST = "/api/images/"
GALLERY = "/images/"
# Hang guards, not speed claims: a request or a worker-side outcome that takes
# longer than this is stuck.
REQUEST_BOUND = 15
WORKER_WAIT = 60
THREAD_WAIT = 60
# Kombu's Redis transport keeps each priority band of a queue in its own list.
QUEUE_KEYS = [settings.CELERY_TASK_DEFAULT_QUEUE] + [
    f"{settings.CELERY_TASK_DEFAULT_QUEUE}\x06\x16{p}" for p in (3, 6, 9)
]
FINAL = {Status.DONE, Status.FAILED}


# -- helpers -------------------------------------------------------------------------


def fresh(pk: int) -> UploadedImage:
    return UploadedImage.objects.get(pk=pk)


def upload_one(data: bytes, name: str = "photo.jpg", owner=None) -> UploadedImage:
    """Upload in autocommit mode: the task is dispatched as soon as the row commits."""
    [outcome] = services.upload_images([upload(data, name)], owner=owner)
    assert outcome.duplicate is False
    return outcome.image


def expected_resize(data: bytes) -> bytes:
    """The exact bytes a complete resize of ``data`` stores (the encoder is deterministic)."""
    return processing.resize_image(io.BytesIO(data), services.current_spec()).data


def logged_in(user) -> Client:
    return clients.logged_in(user, raise_request_exception=False)


def queue_length(broker: redis.Redis) -> int:
    return sum(broker.llen(key) for key in QUEUE_KEYS)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def task_results(worker: FaultWorker) -> list[str]:
    """What each finished ``resize_image`` run returned, from the worker's log."""
    return re.findall(
        r"Task django_image_sync\.resize_image\[[^\]]+\] succeeded in [\d.e-]+s: '(\w+)'",
        worker.output(),
    )


def finished_runs(worker: FaultWorker, count: int) -> list[str]:
    """Wait until ``count`` task runs finished (their signals sent); what they returned."""
    wait_until(lambda: len(task_results(worker)) >= count, WORKER_WAIT, f"{count} task runs")
    return task_results(worker)


def retry_countdowns(worker: FaultWorker) -> list[float]:
    """The countdown of every retry the worker scheduled, from Celery's own log line."""
    return [
        float(seconds)
        for seconds in re.findall(
            r"Task django_image_sync\.resize_image\[[^\]]+\] retry: Retry in ([\d.]+)s",
            worker.output(),
        )
    ]


def claims(pk: int) -> list[tuple[int, int, float]]:
    """``(attempt, pool pid, time)`` of every claim of image ``pk`` by a worker."""
    found = []
    for line in events():
        m = re.fullmatch(rf"claimed {pk} attempt=(\d+) pid=(\d+) at=([\d.]+)", line)
        if m:
            found.append((int(m[1]), int(m[2]), float(m[3])))
    return found


def signalled(kind: str, pk: int) -> int:
    """How many times a worker sent ``image_processed`` / ``image_failed`` for ``pk``."""
    return sum(1 for line in events() if line.startswith(f"{kind} {pk} "))


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def broker(private_redis, settings) -> Iterator[redis.Redis]:
    """This module's broker and cache: the private redis-server, emptied around each test.

    The Celery app of the test process is pointed at it (and restored after),
    the publish memo of ``queue.enqueue_resize`` is reset, and no fault is armed.
    """
    saved = {
        "broker_url": celery_app.conf.broker_url,
        "broker_transport_options": celery_app.conf.broker_transport_options,
        "broker_connection_timeout": celery_app.conf.broker_connection_timeout,
    }
    celery_app.conf.update(broker_url=private_redis.url)
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": private_redis.url},
    }
    client = redis.Redis.from_url(private_redis.url)
    client.flushall()
    queue._broker_down_until = 0.0
    disarm_all()
    (fault_dir() / "events.log").unlink(missing_ok=True)
    (fault_dir() / "stalled").unlink(missing_ok=True)
    try:
        yield client
    finally:
        celery_app.conf.update(saved)
        queue._broker_down_until = 0.0
        disarm_all()
        client.flushall()
        client.close()


@pytest.fixture
def start_worker(private_redis, tmp_path) -> Iterator:
    """Start real Celery workers on the private broker; all stopped (and killed) after."""
    workers: list[FaultWorker] = []

    def start(*, beat: bool = False, **env: str) -> FaultWorker:
        log = tmp_path / f"worker-{len(workers) + 1}.log"
        worker = FaultWorker(log, private_redis.url, env, beat=beat)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()
        # Shown with the test's output when it fails.
        print(f"----- {worker.log_path.name} -----\n{worker.output()}")


@pytest.fixture
def processed_here() -> Iterator[list[int]]:
    """Every ``image_processed`` sent in this process, as image pks."""
    sent: list[int] = []

    def receiver(sender, image, **kwargs):
        sent.append(image.pk)

    image_processed.connect(receiver, sender=UploadedImage, weak=False)
    yield sent
    image_processed.disconnect(receiver, sender=UploadedImage)


@pytest.fixture
def flaky_storage(settings) -> None:
    """The app's files go through ``FlakyStorage`` (MEDIA_ROOT, or ``FlakyS3Storage``
    on an S3 run) in this process."""
    settings.STORAGES = {**settings.STORAGES, "flaky": settings.FLAKY_STORAGE}
    settings.IMAGE_SYNC = {"STORAGE": "flaky"}


@dataclass
class DeadPort:
    kind: str
    url: str
    server: SilentServer | None = None

    def was_talked_to(self) -> bool:
        return self.server is None or self.server.accepted > 0


@pytest.fixture(params=["refused", "silent"])
def dead_port(request) -> Iterator[DeadPort]:
    """A Redis URL that refuses connections, or accepts them and never answers."""
    if request.param == "refused":
        yield DeadPort("refused", f"redis://127.0.0.1:{free_port()}/0")
        return
    server = SilentServer().start()
    try:
        yield DeadPort("silent", server.url, server)
    finally:
        server.stop()


# -- publishing connections ---------------------------------------------------------------


@pytest.mark.storage_independent
def test_publishing_reuses_one_connection_and_survives_a_broker_restart():
    server = RedisServer().start()
    try:
        celery_app.conf.update(broker_url=server.url)  # restored by the broker fixture
        probe = redis.Redis.from_url(server.url, socket_timeout=5)
        before = probe.info("stats")["total_connections_received"]

        assert all(queue.enqueue_resize(pk) for pk in range(1, 9))

        assert queue_length(probe) == 8
        opened = probe.info("stats")["total_connections_received"] - before
        assert opened <= 2, f"{opened} connections opened for 8 publishes"

        # The pooled connection is now stale: the next publish reconnects.
        server.stop()
        server.start()
        probe = redis.Redis.from_url(server.url, socket_timeout=5)
        assert queue.enqueue_resize(9)
        assert queue_length(probe) == 1
    finally:
        server.stop()


# -- 1, 2: the broker is down or silent during an upload --------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.storage_independent
def test_upload_while_the_broker_is_unreachable_is_swept_later(
    dead_port, private_redis, broker, start_worker, alice, caplog
):
    # A site that set no broker transport options (nor a connection timeout):
    # only the app's own publishing bounds stand between the request and a hang.
    celery_app.conf.update(
        broker_url=dead_port.url,
        broker_transport_options={},
        broker_connection_timeout=CELERY_DEFAULTS["broker_connection_timeout"],
    )
    client = logged_in(alice)
    files = [
        upload(jpeg_bytes((2400, 1200), seed=301), "first.jpg"),
        upload(jpeg_bytes((64, 48), seed=302), "second.jpg"),
    ]

    started = time.monotonic()
    response = client.post(API_LIST, {"images": files})
    elapsed = time.monotonic() - started

    print(f"upload with the broker {dead_port.kind}: {elapsed:.2f} s")
    assert elapsed < REQUEST_BOUND
    assert response.status_code == 201, response.content
    answered = response.json()["images"]
    ids = [item["id"] for item in answered]
    assert [item["status"] for item in answered] == [Status.PENDING] * 2
    rows = [fresh(pk) for pk in ids]
    assert [(r.status, r.attempts) for r in rows] == [(Status.PENDING, 0)] * 2
    assert stored_files("originals") == sorted(r.original.name for r in rows)
    assert dead_port.was_talked_to()
    assert queue_length(broker) == 0
    # The first file tried the broker; the second did not wait for it again.
    assert f"could not queue image {ids[0]}; it stays pending" in caplog.text
    assert f"broker was unreachable moments ago; image {ids[1]} stays pending" in caplog.text

    # The broker is back. The sweeper runs in a process of its own (cron,
    # Celery beat), without this process's memory of the failed publish.
    celery_app.conf.update(broker_url=private_redis.url)
    queue._broker_down_until = 0.0
    start_worker()
    out = io.StringIO()
    call_command("image_sync_sweep", "--older-than", "0", stdout=out)
    assert out.getvalue().strip() == "Queued 2 images again."

    done = [wait_for_status(pk, FINAL, WORKER_WAIT) for pk in ids]
    assert [d.status for d in done] == [Status.DONE] * 2, [d.error for d in done]
    assert [(d.resized_width, d.resized_height) for d in done] == [(1920, 960), (64, 48)]
    for image in done:
        assert is_stored(image.resized.name)
        assert image.attempts == 1


# -- 3: a worker killed in the middle of a resize --------------------------------------


def kill_mid_write(worker: FaultWorker, data: bytes, name: str) -> tuple[UploadedImage, int]:
    """Upload ``data``; SIGKILL the worker's pool process half-way through writing
    the resized file. Returns the image and the size of the partial file left."""
    arm("stall", 1)  # the first write of a resized file stops half-way
    complete = expected_resize(data)
    image = upload_one(data, name)

    stalled = fault_dir() / "stalled"
    wait_until(stalled.exists, WORKER_WAIT, "the worker to stall in the middle of the write")
    child = int(stalled.read_text())
    assert worker.pool_children() == [child]
    row = fresh(image.pk)
    assert (row.status, row.attempts) == (Status.PROCESSING, 1)

    if s3.enabled():
        # The PUT of the first output is held back before it is sent: nothing of
        # it is stored (an object is stored whole or not at all).
        assert stored_files("resized") == []
        partial = 0
    else:

        def partial_file() -> int:
            files = [media_root() / f for f in stored_files("resized")]
            return len(files) == 1 and files[0].stat().st_size

        # Wherever the app writes (in place, or a temporary name): half a file is there.
        partial = wait_until(partial_file, 10, "half a resized file on disk")
        assert 0 < partial < len(complete)

    os.kill(child, signal.SIGKILL)
    wait_until(lambda: child not in worker.pool_children(), 10, "the pool process to die")
    return image, partial


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_write_is_redelivered_and_ends_done(start_worker):
    worker = start_worker(IMAGE_SYNC_TEST_STORAGE="flaky")
    data = jpeg_bytes((2400, 1600), seed=311)
    image, _ = kill_mid_write(worker, data, "big.jpg")

    done = wait_for_status(image.pk, FINAL, WORKER_WAIT)
    assert done.status == Status.DONE, done.error
    assert (done.attempts, done.error) == (2, "")
    assert (done.resized_width, done.resized_height) == (1620, 1080)
    assert done.resized.name == resized_name(done.sha256, services.current_spec().key, "jpg")
    stored = read_stored(done.resized.name)
    assert stored == expected_resize(data)
    with Image.open(io.BytesIO(stored)) as im:
        im.load()  # complete: a cut-off JPEG would raise here
        assert im.size == (1620, 1080)
    # Redelivered (acks_late + reject_on_worker_lost) to a new pool process.
    [(first, first_pid, _), (second, second_pid, _)] = claims(image.pk)
    assert (first, second) == (1, 2)
    assert first_pid != second_pid
    assert finished_runs(worker, 1) == [Status.DONE]  # the killed run never finished
    assert signalled("processed", image.pk) == 1
    assert "WorkerLostError" in worker.output()


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_write_leaves_no_stray_partial_file(start_worker):
    if s3.enabled():
        pytest.skip(
            "local files only: on S3 an object is stored whole or not at all, so there is "
            "no partial file to leave (the redelivery after the kill is tested on S3 too)"
        )
    worker = start_worker(IMAGE_SYNC_TEST_STORAGE="flaky")
    image, partial = kill_mid_write(worker, jpeg_bytes((2400, 1600), seed=312), "big.jpg")

    done = wait_for_status(image.pk, FINAL, WORKER_WAIT)
    assert done.status == Status.DONE, done.error
    finished_runs(worker, 1)

    # Exactly the files the row names; the half-written one is gone.
    assert stored_files() == sorted(done.stored_names())
    assert len(read_stored(done.resized.name)) != partial


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.storage_independent
def test_image_that_kills_the_worker_every_time_gives_up_after_max_attempts(start_worker):
    worker = start_worker()
    max_attempts = conf.get("MAX_ATTEMPTS")
    image = upload_one(jpeg_bytes((800, 600), seed=321), "crash.jpg")

    failed = wait_for_status(image.pk, FINAL, 120)

    assert failed.status == Status.FAILED
    assert failed.error == f"gave up after {max_attempts} attempts"
    assert failed.attempts == max_attempts + 1
    assert not failed.resized
    assert finished_runs(worker, 1) == [Status.FAILED]  # only the last run finished
    crashes = [line for line in events() if line.startswith(f"crashing {image.pk} ")]
    assert len(crashes) == max_attempts
    assert len({line.rsplit("pid=", 1)[1] for line in crashes}) == max_attempts
    assert signalled("failed", image.pk) == 1
    assert stored_files("resized") == []
    assert worker.output().count("WorkerLostError") >= max_attempts

    # The worker survived all that and serves the next upload.
    other = upload_one(jpeg_bytes((800, 600), seed=322), "fine.jpg")
    done = wait_for_status(other.pk, FINAL, WORKER_WAIT)
    assert (done.status, done.attempts) == (Status.DONE, 1)
    assert finished_runs(worker, 2) == [Status.FAILED, Status.DONE]


# -- 4: the same task run twice -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_runs_of_one_task_finish_it_once(monkeypatch, processed_here):
    """The second delivery (visibility timeout passed, or the sweeper) comes while
    the first run is still resizing: it waits for that run (the content's render
    lock), then finds the image done, without claiming or decoding it."""
    data = jpeg_bytes((1600, 1200), seed=331)
    complete = expected_resize(data)
    image = upload_one(data)
    first_resizing = threading.Event()
    let_first_go = threading.Event()
    real = pillow_backend.render
    resizes: list[str] = []

    def resize(fileobj, plan, skip=frozenset()):
        resizes.append(threading.current_thread().name)
        if threading.current_thread().name == "first":
            first_resizing.set()
            let_first_go.wait(THREAD_WAIT)
        return real(fileobj, plan, skip)

    monkeypatch.setattr(pillow_backend, "render", resize)
    results: dict[str, object] = {}

    def run() -> None:
        try:
            results[threading.current_thread().name] = services.process_image(image.pk)
        except BaseException as exc:
            results[threading.current_thread().name] = exc
        finally:
            connection.close()

    first = threading.Thread(target=run, name="first")
    second = threading.Thread(target=run, name="second")
    first.start()
    assert first_resizing.wait(THREAD_WAIT)
    second.start()
    second.join(1.0)
    assert second.is_alive()  # waiting for the first run
    assert fresh(image.pk).attempts == 1  # and it has not claimed the row
    let_first_go.set()
    first.join(THREAD_WAIT)
    second.join(THREAD_WAIT)

    assert resizes == ["first"]
    assert results == {"first": Status.DONE, "second": "skipped"}
    done = fresh(image.pk)
    assert (done.status, done.attempts, done.error) == (Status.DONE, 1, "")
    assert processed_here == [image.pk]
    assert stored_files("resized") == sorted(done.output_names())
    assert read_stored(done.resized.name) == complete

    # A third delivery after the row is done changes nothing at all.
    assert services.process_image(image.pk) == "skipped"
    again = fresh(image.pk)
    assert (again.updated, again.attempts, again.resized.name) == (
        done.updated,
        done.attempts,
        done.resized.name,
    )
    assert processed_here == [image.pk]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_delivered_three_times_to_the_worker_runs_once(start_worker):
    worker = start_worker(IMAGE_SYNC_TEST_SLOW_SECONDS="2")
    data = jpeg_bytes((1600, 1200), seed=341)
    image = upload_one(data, "slow.jpg")  # delivery 1, after commit
    assert queue.enqueue_resize(image.pk)  # delivery 2: the same task again
    wait_for_status(image.pk, {Status.PROCESSING}, WORKER_WAIT)
    # Delivery 3: the sweeper, its age threshold passed, races the live worker.
    out = io.StringIO()
    call_command("image_sync_sweep", "--older-than", "0", stdout=out)
    assert out.getvalue().strip() == "Queued 1 image again."

    done = wait_for_status(image.pk, FINAL, WORKER_WAIT)
    assert done.status == Status.DONE, done.error

    assert sorted(finished_runs(worker, 3)) == [Status.DONE, "skipped", "skipped"]
    again = fresh(image.pk)
    assert (again.updated, again.attempts, again.resized.name) == (
        done.updated,
        1,
        done.resized.name,
    )
    assert signalled("processed", image.pk) == 1
    assert len(claims(image.pk)) == 1
    assert stored_files("resized") == sorted(done.output_names())
    assert read_stored(done.resized.name) == expected_resize(data)


# -- 5: storage raising ---------------------------------------------------------------


@pytest.mark.django_db
def test_storage_refusing_to_save_is_a_transient_error(flaky_storage, processed_here):
    image = upload_one(jpeg_bytes((1200, 900), seed=351))
    arm("save", "always")

    with pytest.raises(
        services.TransientError,
        match=r"cannot store the resized file image_sync/resized/.*flaky storage: injected",
    ):
        services.process_image(image.pk)

    left = fresh(image.pk)
    # Claimed, left for a retry: neither failed nor done, nothing stored or cached.
    assert (left.status, left.attempts, left.error) == (Status.PROCESSING, 1, "")
    assert stored_files("resized") == []
    assert results.cached(services.result_cache_key(left.sha256, services.current_spec())) is None
    assert processed_here == []

    # The retry after the storage recovered finishes the job.
    disarm_all()
    assert services.process_image(image.pk) == Status.DONE
    done = fresh(image.pk)
    assert (done.attempts, done.error) == (2, "")
    assert stored_files("resized") == sorted(done.output_names())
    assert processed_here == [image.pk]


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_retries_a_storage_failure_after_a_backoff(start_worker):
    # The task's own retry delays (RETRY_BASE_DELAY 5 s): one failure, then success.
    worker = start_worker(IMAGE_SYNC_TEST_STORAGE="flaky")
    arm("save", 1)
    image = upload_one(jpeg_bytes((1200, 900), seed=352))

    done = wait_for_status(image.pk, FINAL, WORKER_WAIT)

    assert done.status == Status.DONE, done.error
    assert (done.attempts, done.error) == (2, "")
    assert stored_files("resized") == sorted(done.output_names())
    [countdown] = retry_countdowns(worker)
    assert tasks.RETRY_BASE_DELAY / 2 <= countdown <= tasks.RETRY_BASE_DELAY
    [(first, _, tried), (second, _, retried)] = claims(image.pk)
    assert (first, second) == (1, 2)
    assert retried - tried >= countdown - 0.1
    assert finished_runs(worker, 1) == [Status.DONE]
    assert signalled("processed", image.pk) == 1


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_after_its_retries_an_image_waits_for_the_sweeper_with_its_error(start_worker):
    # Shorter delays (the worker's RETRY_BASE_DELAY is set from the environment)
    # so that the whole chain, MAX_RETRIES retries, fits in a test.
    base = 0.4
    worker = start_worker(
        IMAGE_SYNC_TEST_STORAGE="flaky", IMAGE_SYNC_TEST_RETRY_BASE_DELAY=str(base)
    )
    arm("save", "always")
    image = upload_one(jpeg_bytes((1200, 900), seed=353))

    tries = tasks.MAX_RETRIES + 1
    wait_until(lambda: finished_runs(worker, 1), WORKER_WAIT, "the retry chain to end")
    waiting = fresh(image.pk)

    # Not failed: pending again, with the last error visible and its next try set.
    assert waiting.status == Status.PENDING
    assert waiting.error_code == "retrying"
    assert waiting.error.startswith(
        "trying again automatically after a temporary failure: "
        "cannot store the resized file image_sync/resized/"
    ), waiting.error
    assert "flaky storage: injected save failure" in waiting.error_text
    assert waiting.attempts == 0  # MAX_ATTEMPTS bounds crashes, not outages
    assert waiting.retrying_since is not None
    assert waiting.retry_at is not None
    wait = (waiting.retry_at - waiting.retrying_since).total_seconds()
    assert wait == pytest.approx(queue.RETRY_LATER_MIN, abs=1)
    assert not waiting.resized
    assert stored_files("resized") == []
    # Backoff: retry n waits between half and all of base * 2**n (the rest is jitter).
    countdowns = retry_countdowns(worker)
    assert len(countdowns) == tasks.MAX_RETRIES
    for n, countdown in enumerate(countdowns):
        assert base * 2**n / 2 <= countdown <= base * 2**n, countdowns
    times = [at for _, _, at in claims(image.pk)]
    assert len(times) == tries
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= countdown - 0.05 for gap, countdown in zip(gaps, countdowns, strict=True))
    assert finished_runs(worker, 1) == [Status.PENDING]
    assert signalled("failed", image.pk) == 0
    # Not queued again before its time: the sweeper skips it (and a row this
    # fresh is not "left behind" either).
    assert queue.sweep(older_than=queue.DEFAULT_SWEEP_AGE) == []


def chains(pk: int) -> list[list[float]]:
    """Claim times of image ``pk``, one list per run of the task with its retries
    (the count of attempts starts over when the image waits for the sweeper)."""
    runs: list[list[float]] = []
    for attempt, _, at in claims(pk):
        if attempt == 1 or not runs:
            runs.append([])
        runs[-1].append(at)
    return runs


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_images_outlast_a_long_storage_outage_and_finish_by_themselves(start_worker):
    # The worker runs the sweeper (beat, every 0.5 s); the task's retry window is
    # about 0.3 + 0.6 + 1.2 s, the sweeper's first wait 1 s, then as long as the
    # image has been failing. Storage stays down until every image was queued
    # again by the sweeper twice, many times the task's retry window.
    worker = start_worker(
        beat=True,
        IMAGE_SYNC_TEST_STORAGE="flaky",
        IMAGE_SYNC_TEST_RETRY_BASE_DELAY="0.3",
        IMAGE_SYNC_TEST_RETRY_LATER_MIN="1",
        IMAGE_SYNC_TEST_SWEEP_EVERY="0.5",
    )
    arm("save", "always")
    images = [upload_one(jpeg_bytes((900, 600), seed=360 + i), f"outage-{i}.jpg") for i in range(3)]

    wait_until(
        lambda: all(len(chains(image.pk)) >= 3 for image in images),
        WORKER_WAIT,
        "the sweeper to queue every image again twice",
    )
    during = [fresh(image.pk) for image in images]
    assert all(image.status in (Status.PENDING, Status.PROCESSING) for image in during)
    assert stored_files("resized") == []
    arm("save", 0)  # storage is back

    done = [wait_for_status(image.pk, FINAL, WORKER_WAIT) for image in images]
    # Each image_processed follows its row's move to done.
    wait_until(
        lambda: all(signalled("processed", image.pk) for image in images),
        WORKER_WAIT,
        "image_processed for every image",
    )

    for image in done:
        assert image.status == Status.DONE, image.error
        assert (image.error, image.error_code, image.retry_at, image.retrying_since) == (
            "",
            "",
            None,
            None,
        )
        assert signalled("processed", image.pk) == 1
        assert signalled("failed", image.pk) == 0
        # Growing waits between one run's last try and the next run's first.
        runs = chains(image.pk)
        waits = [later[0] - earlier[-1] for earlier, later in itertools.pairwise(runs)]
        assert waits[1] > waits[0] >= 1 - 0.1, waits
    assert stored_files("resized") == sorted(n for image in done for n in image.output_names())
    assert "Traceback" not in worker.output()


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_image_failing_past_the_retry_horizon_fails_and_leaves_no_output(start_worker):
    start_worker(
        beat=True,
        IMAGE_SYNC_TEST_STORAGE="flaky",
        IMAGE_SYNC_TEST_RETRY_BASE_DELAY="0.2",
        IMAGE_SYNC_TEST_RETRY_LATER_MIN="0.5",
        IMAGE_SYNC_TEST_SWEEP_EVERY="0.5",
        IMAGE_SYNC_TEST_OVERRIDES='{"RETRY_HORIZON": 2}',
    )
    arm("save", "always")
    image = upload_one(jpeg_bytes((900, 600), seed=364))

    failed = wait_for_status(image.pk, FINAL, WORKER_WAIT)

    assert failed.status == Status.FAILED
    assert failed.error_code == "horizon"
    assert failed.error.startswith("gave up after trying for "), failed.error
    assert "(RETRY_HORIZON): cannot store the resized file" in failed.error
    assert failed.error_params["seconds"] >= 2
    assert failed.error_text.startswith("gave up after trying for 0\xa0minutes: cannot store")
    assert len(chains(image.pk)) >= 2  # it did wait for the sweeper first
    assert failed.retry_at is None
    assert stored_files("resized") == []
    # The signal follows the row's move to failed.
    wait_until(lambda: signalled("failed", image.pk) == 1, WORKER_WAIT, "image_failed")


@pytest.mark.django_db(transaction=True)
def test_storage_refusing_to_delete_is_logged_not_raised(flaky_storage, caplog):
    image = upload_one(jpeg_bytes((800, 600), seed=354))
    assert services.process_image(image.pk) == Status.DONE
    image = fresh(image.pk)
    names = image.stored_names()
    assert len(names) == 1 + 6  # the original; 800 and 480 wide in three formats
    arm("delete", "always")

    image.delete()  # autocommit: the file deletion runs as the deletion commits

    for name in names:
        assert f"could not delete stored file {name}" in caplog.text
        assert is_stored(name)
    caplog.clear()
    services.delete_unreferenced(names)  # called directly: it does not raise either
    assert caplog.text.count("could not delete stored file") == len(names)

    disarm_all()
    services.delete_unreferenced(names)
    assert stored_files() == []


# -- 6: the database refuses the INSERT after the original was written -----------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failing_insert", [1, 2], ids=["first-file", "second-file"])
def test_failed_insert_removes_the_originals_and_queues_nothing(alice, broker, failing_insert):
    client = logged_in(alice)
    # Control: a good upload queues one task on this broker.
    response = client.post(API_LIST, {"images": [upload(jpeg_bytes(seed=360), "kept.jpg")]})
    assert response.status_code == 201
    [kept] = UploadedImage.objects.all()
    assert queue_length(broker) == 1
    inserts: list[str] = []

    def refuse(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT") and UploadedImage._meta.db_table in sql:
            inserts.append(sql)
            if len(inserts) == failing_insert:
                raise OperationalError("injected: the database refused the INSERT")
        return execute(sql, params, many, context)

    files = [upload(jpeg_bytes(seed=361), "a.jpg"), upload(jpeg_bytes(seed=362), "b.jpg")]
    with connection.execute_wrapper(refuse):
        response = client.post(API_LIST, {"images": files})

    assert response.status_code == 500
    assert len(inserts) == failing_insert  # the original of the failing file was written first
    assert list(UploadedImage.objects.values_list("pk", flat=True)) == [kept.pk]
    assert stored_files() == [kept.original.name]
    assert queue_length(broker) == 1


class CallerChangedItsMind(Exception):
    pass


def rolled_back(action) -> None:
    """Run ``action`` in a transaction that the caller then rolls back."""
    with transaction.atomic():
        action()
        raise CallerChangedItsMind


@pytest.mark.django_db(transaction=True)
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="BUG: rows rolled back by the caller's transaction (ATOMIC_REQUESTS, a site's "
    "own atomic block) leave the originals store_files wrote behind",
)
def test_insert_rolled_back_by_the_callers_transaction_leaves_no_file(alice, broker):
    with pytest.raises(CallerChangedItsMind):
        rolled_back(lambda: services.upload_images([upload(jpeg_bytes(seed=363))], owner=alice))

    assert UploadedImage.objects.count() == 0
    assert queue_length(broker) == 0
    assert stored_files() == []


# -- 7: the cache is down ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_everything_works_with_the_cache_down(dead_port, settings, alice, caplog):
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": dead_port.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    client = logged_in(alice)
    started = time.monotonic()

    response = client.post(API_LIST, {"images": [upload(jpeg_bytes((2000, 1000), seed=371))]})
    assert response.status_code == 201, response.content
    [item] = response.json()["images"]
    assert item["status"] == Status.PENDING
    polled = client.get(f"/api/images/{item['id']}/")
    assert (polled.status_code, polled.json()["status"]) == (200, Status.PENDING)
    assert client.get(GALLERY).status_code == 200

    assert services.process_image(item["id"]) == Status.DONE

    polled = client.get(f"/api/images/{item['id']}/").json()
    assert polled["status"] == Status.DONE
    assert (polled["resized_width"], polled["resized_height"]) == (1920, 960)
    page = client.get(GALLERY)
    assert page.status_code == 200
    assert polled["resized_url"] in page.content.decode()
    assert is_stored(fresh(item["id"]).resized.name)
    elapsed = time.monotonic() - started
    print(f"with the cache {dead_port.kind}: {elapsed:.2f} s")
    assert elapsed < REQUEST_BOUND
    assert "cache write failed" in caplog.text

    # A later attempt looks for a result an earlier one cached (a first attempt
    # at new content has nothing to look for): that read fails too, and the
    # image is made again.
    UploadedImage.objects.filter(pk=item["id"]).update(status=Status.PROCESSING)
    assert services.process_image(item["id"]) == Status.DONE
    assert "cache read failed" in caplog.text
    assert fresh(item["id"]).attempts == 2
    assert dead_port.was_talked_to()


# -- 8: deleting images ------------------------------------------------------------------


def cached_result(image: UploadedImage) -> object:
    return results.cached(services.result_cache_key(image.sha256, services.current_spec()))


@pytest.mark.django_db(transaction=True)
def test_deleted_image_loses_its_files_after_commit_and_keeps_them_on_rollback(alice):
    image = upload_one(jpeg_bytes((1200, 900), seed=381), owner=alice)
    assert services.process_image(image.pk) == Status.DONE
    image = fresh(image.pk)
    names = sorted(image.stored_names())
    assert stored_files() == names

    with pytest.raises(CallerChangedItsMind):
        rolled_back(fresh(image.pk).delete)
    assert fresh(image.pk).status == Status.DONE
    assert stored_files() == names

    with transaction.atomic():
        fresh(image.pk).delete()
        assert stored_files() == names  # not before the deletion commits
    assert not UploadedImage.objects.filter(pk=image.pk).exists()
    assert stored_files() == []
    assert cached_result(image) is None


@pytest.mark.django_db(transaction=True)
def test_shared_content_stays_until_its_last_row_is_deleted(alice, bob, resize_calls):
    data = jpeg_bytes((2000, 1000), seed=382)
    mine = upload_one(data, owner=alice)
    theirs = upload_one(data, owner=bob)
    assert services.process_image(mine.pk) == Status.DONE
    assert services.process_image(theirs.pk) == Status.DONE
    mine, theirs = fresh(mine.pk), fresh(theirs.pk)
    assert len(resize_calls) == 1  # the second came from the cache
    assert (mine.original.name, mine.resized.name) == (theirs.original.name, theirs.resized.name)
    assert mine.renditions == theirs.renditions
    names = sorted(mine.stored_names())

    mine.delete()
    assert stored_files() == names
    assert cached_result(theirs) is not None

    bob.delete()  # the owner goes, and their images with them (CASCADE)
    assert UploadedImage.objects.count() == 0
    assert stored_files() == []
    assert cached_result(theirs) is None

    # The same bytes again: resized again, not pointed at the deleted file.
    again = upload_one(data, owner=alice)
    assert services.process_image(again.pk) == Status.DONE
    again = fresh(again.pk)
    assert len(resize_calls) == 2
    assert again.resized.name == mine.resized.name
    assert read_stored(again.resized.name) == expected_resize(data)


@pytest.mark.django_db(transaction=True)
def test_result_cached_while_the_cache_was_unreachable_at_deletion_is_not_trusted(settings, alice):
    data = jpeg_bytes((1200, 900), seed=383)
    image = upload_one(data, owner=alice)
    assert services.process_image(image.pk) == Status.DONE
    image = fresh(image.pk)
    assert cached_result(image) is not None
    reachable = settings.CACHES

    settings.CACHES = {
        **reachable,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    image.delete()  # the files go; forgetting the cached result fails (logged)
    assert stored_files() == []
    settings.CACHES = reachable  # the cache is back, the stale entry with it

    again = upload_one(data, owner=alice)
    services.process_image(again.pk)
    again = fresh(again.pk)
    assert again.status == Status.DONE
    assert is_stored(again.resized.name)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_reupload_after_deletion_with_a_per_process_cache_gets_its_file(
    settings, start_worker, alice
):
    settings.IMAGE_SYNC = {"CACHE": "local"}
    start_worker(IMAGE_SYNC_TEST_CACHE="local")
    data = jpeg_bytes((1200, 900), seed=384)
    image = upload_one(data, owner=alice)
    done = wait_for_status(image.pk, FINAL, WORKER_WAIT)
    assert done.status == Status.DONE, done.error

    done.delete()  # this process forgets its own cache entry; the worker keeps its own
    assert stored_files() == []

    again = upload_one(data, owner=alice)
    again = wait_for_status(again.pk, FINAL, WORKER_WAIT)
    assert again.status == Status.DONE, again.error
    assert is_stored(again.resized.name)
