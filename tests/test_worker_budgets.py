"""What one accepted image may cost a worker (issue 8), checked in real workers.

Upload-time refusals are in ``test_bad_input.py``. Here: the worker's own
second line (the budgets checked again before decoding, and the per-image
time limit that ends a task as ``failed`` instead of having it redelivered),
and the largest file of each kind the defaults accept, processed by a real
worker whose pool process is measured: the memory it added must stay within
the estimate the upload was accepted on. Times are reported, not asserted.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import transaction
from PIL import Image

from django_image_sync import conf, processing, queue, services, tasks, worker
from django_image_sync.models import Status, UploadedImage
from django_image_sync.processing import costs
from django_image_sync.processing.backends import pillow as pillow_backend
from tests.conftest import WorkerProcess, redis_reachable, service_unavailable, wait_for_status
from tests.images import encode, jpeg_bytes, plain_png, progressive_jpeg, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def upload_one(data: bytes, name: str) -> UploadedImage:
    with transaction.atomic():
        [outcome] = services.upload_images([upload(data, name)])
    return outcome.image


# -- the worker's second line -----------------------------------------------------------


def test_worker_refuses_before_decoding_a_file_over_its_budget(celery_worker, settings):
    """A file the web side accepted (its budget was off) is failed by the worker,
    whose budget is the default, without being decoded."""
    settings.IMAGE_SYNC = {"MAX_DECODE_MEMORY": None}
    image = upload_one(plain_png(7070, 7070), "big.png")

    failed = wait_for_status(image.pk, {Status.DONE, Status.FAILED})

    assert failed.status == Status.FAILED
    assert failed.error == (
        "big.png: the image needs about 485 MB of memory to resize (7070x7070 PNG); "
        "the limit is 256 MB"
    )
    assert failed.attempts == 1
    assert not failed.resized


def test_budget_lowered_after_upload_fails_the_image_without_decoding(settings, monkeypatch):
    # Not queued: the worker path runs here, and no worker of the session may take it first.
    monkeypatch.setattr(queue, "enqueue_resize", lambda *args, **kwargs: True)
    image = upload_one(progressive_jpeg((1200, 900), 40), "scans.jpg")

    def no_decode(*args: object) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(pillow_backend, "resize_image", no_decode)
    settings.IMAGE_SYNC = {"MAX_JPEG_SCANS": 20}

    assert services.process_image(image.pk) == Status.FAILED
    failed = UploadedImage.objects.get(pk=image.pk)
    assert failed.error == (
        "scans.jpg: the image is a progressive JPEG with 40 scans; at most 20 are accepted"
    )


def queued_budgets(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """What each upload's resize task is queued with as ``budgets`` (not queued)."""
    sent: list[str] = []
    monkeypatch.setattr(
        queue, "enqueue_resize", lambda image_id, **kwargs: sent.append(kwargs["budgets"])
    )
    return sent


def test_an_upload_queues_its_resize_with_the_budgets_it_was_checked_against(settings, monkeypatch):
    sent = queued_budgets(monkeypatch)
    upload_one(jpeg_bytes((120, 90), seed=31), "a.jpg")
    settings.IMAGE_SYNC = {"MAX_JPEG_SCANS": 20}
    upload_one(jpeg_bytes((120, 90), seed=32), "b.jpg")
    settings.IMAGE_SYNC = {"MAX_DECODE_MEMORY": 300 * costs.MiB}
    upload_one(jpeg_bytes((120, 90), seed=33), "c.jpg")

    assert sent[2] == conf.budgets_key(conf.resize_spec())
    settings.IMAGE_SYNC = {}
    assert sent[0] == conf.budgets_key(conf.resize_spec())
    # Each budget is part of the key: a worker with other budgets checks again.
    assert len(set(sent)) == 3


def test_a_worker_with_the_uploads_budgets_does_not_check_the_file_again(settings, monkeypatch):
    sent = queued_budgets(monkeypatch)
    looks: list[bytes] = []
    second_look = worker._over_budget

    def counted(data: bytes, spec: processing.ResizeSpec) -> processing.ImageProblem | None:
        looks.append(data)
        return second_look(data, spec)

    monkeypatch.setattr(worker, "_over_budget", counted)
    checked = upload_one(progressive_jpeg((300, 200), 40), "checked.jpg")
    assert services.process_image(checked.pk, budgets=sent[0]) == Status.DONE
    assert looks == []

    # Queued by the sweeper or "reprocess": no budgets, the file is looked at.
    unknown = upload_one(progressive_jpeg((300, 210), 40), "unknown.jpg")
    assert services.process_image(unknown.pk) == Status.DONE
    assert len(looks) == 1

    # Budgets lowered since the upload: the key no longer matches, and the
    # worker refuses the file before decoding it.
    lowered = upload_one(progressive_jpeg((300, 220), 40), "lowered.jpg")
    settings.IMAGE_SYNC = {"MAX_JPEG_SCANS": 20}
    assert services.process_image(lowered.pk, budgets=sent[2]) == Status.FAILED
    assert len(looks) == 2
    assert UploadedImage.objects.get(pk=lowered.pk).error_code == "max_jpeg_scans"


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
def test_image_past_the_time_limit_ends_failed_and_is_not_redelivered(celery_worker, settings):
    # 50 MP, 100 scans: inside every budget, about 2.7 s of decoding here.
    settings.IMAGE_SYNC = {"PROCESSING_TIME_LIMIT": 1}
    image = upload_one(progressive_jpeg((7070, 7070), 100), "slow.jpg")

    failed = wait_for_status(image.pk, {Status.DONE, Status.FAILED})

    assert failed.status == Status.FAILED
    assert failed.error.startswith(
        "resizing took longer than 1 s, the limit for one image (PROCESSING_TIME_LIMIT); "
    )
    assert failed.attempts == 1
    # Past the hard limit's grace a redelivery would have claimed it again.
    time.sleep(3)
    again = UploadedImage.objects.get(pk=image.pk)
    assert (again.status, again.attempts) == (Status.FAILED, 1)
    assert "Hard time limit" not in celery_worker.output()


def test_each_resize_task_carries_the_per_image_time_limits(settings, monkeypatch):
    """Read back from the broker: the message's own limits, not the site's defaults."""
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")
    settings.IMAGE_SYNC = {"PROCESSING_TIME_LIMIT": 45}
    monkeypatch.setattr(queue, "_broker_down_until", 0.0)
    client = redis.Redis.from_url(settings.REDIS_URL)
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    # No worker of this test consumes the queue: publish to a queue of its own.
    monkeypatch.setitem(queue.current_app.conf, "task_default_queue", f"{name}-limits")
    try:
        assert queue.enqueue_resize(987654, budgets="0123abcd") is True
        raw = client.lpop(f"{name}-limits")
    finally:
        client.delete(f"{name}-limits")
        client.close()
    message = json.loads(raw)
    assert message["headers"]["task"] == "django_image_sync.resize_image"
    assert message["headers"]["timelimit"] == [45 + queue.HARD_TIME_LIMIT_GRACE, 45]
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([987654], {"budgets": "0123abcd"})


# -- the largest accepted file of each kind, measured in a real worker ----------------


def flat_jpeg(size: tuple[int, int]) -> bytes:
    return encode(Image.new("RGB", size, (90, 140, 200)), "JPEG", quality=85)


# The largest file of each kind the defaults accept on each backend.
LARGEST: dict[str, list[tuple[str, Callable[[], bytes]]]] = {
    "pillow": [
        # A photo with real detail: its AVIF and WebP renditions cost more than its decode.
        ("photo-like JPEG 24 MP", lambda: jpeg_bytes((6000, 4000), seed=8)),
        ("progressive JPEG 50 MP, 100 scans", lambda: progressive_jpeg((7070, 7070), 100)),
        ("baseline JPEG 50 MP", lambda: flat_jpeg((7070, 7070))),
        ("RGB PNG 42 MP", lambda: plain_png(6500, 6500, mode="RGB")),
        ("RGBA PNG 24.5 MP", lambda: plain_png(4950, 4950)),
        ("RGBA PNG 24.5 MP, interlaced", lambda: plain_png(4950, 4950, interlace=True)),
        ("RGBA APNG 2 x 24 MP", lambda: plain_png(4900, 4900, frames=2)),
        ("palette PNG 36 MP", lambda: plain_png(6000, 6000, mode="P")),
        ("16-bit grey PNG 19.8 MP", lambda: plain_png(4450, 4450, mode="L", depth=16)),
    ],
    # Decoded by Pillow at 3/8 and handed to libvips (JPEG), or by libvips (PNG).
    "auto": [
        ("photo-like JPEG 24 MP", lambda: jpeg_bytes((6000, 4000), seed=8)),
        ("progressive JPEG 50 MP, 100 scans", lambda: progressive_jpeg((7070, 7070), 100)),
        ("baseline JPEG 50 MP", lambda: flat_jpeg((7070, 7070))),
        ("RGBA PNG 50 MP", lambda: plain_png(7070, 7070)),
    ],
    "vips": [
        ("photo-like JPEG 24 MP", lambda: jpeg_bytes((6000, 4000), seed=8)),
        ("progressive JPEG 50 MP", lambda: progressive_jpeg((7070, 7070), 10)),
        ("RGBA PNG 50 MP", lambda: plain_png(7070, 7070)),
        ("RGBA PNG 43 MP, interlaced", lambda: plain_png(6600, 6600, interlace=True)),
        ("16-bit grey PNG 50 MP", lambda: plain_png(7070, 7070, mode="L", depth=16)),
    ],
}


@pytest.fixture(params=sorted(LARGEST), scope="module")
def measuring_worker(
    request, django_db_setup, django_db_blocker, tmp_path_factory
) -> Iterator[tuple[str, WorkerProcess, Path]]:
    """A worker on its own queue, one new pool process per task, logging each
    task's added memory (``tests/memory_log.py``)."""
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")
    backend = request.param
    folder = tmp_path_factory.mktemp(f"measure-{backend}")
    log = folder / "memory.jsonl"
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-measure-{backend}"
    worker = WorkerProcess(
        folder / "worker.log",
        env={"IMAGE_SYNC_TEST_MEMORY_LOG": str(log), "IMAGE_SYNC_TEST_BACKEND": backend},
        name=f"image-sync-measure-{settings.RUN_ID}-{backend}",
        queue=queue,
        extra_args=("--max-tasks-per-child=1",),
    )
    worker.start()
    yield backend, worker, log
    worker.stop()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(queue)
    client.close()


def memory_record(log: Path, image_id: int) -> dict | None:
    """The measuring worker's record for ``image_id``, once its task has ended."""
    deadline = time.monotonic() + 10  # the record is written just after the row
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text().splitlines():
                record = json.loads(line)
                if record["image_id"] == image_id:
                    return record
        time.sleep(0.1)
    return None


def wait_for_memory_record(log: Path, image_id: int) -> None:
    assert memory_record(log, image_id) is not None, f"no memory record for image {image_id}"


@pytest.mark.db_independent
def test_largest_accepted_files_stay_within_their_memory_estimate(
    measuring_worker, settings, monkeypatch, capsys
):
    backend, worker, log = measuring_worker
    settings.IMAGE_SYNC = {"BACKEND": backend}
    # Rows are made here without queueing; each task goes to the measuring worker.
    monkeypatch.setattr(queue, "enqueue_resize", lambda *args, **kwargs: True)
    spec = services.current_spec()
    rows = []
    for label, make in LARGEST[backend]:
        data = make()
        info = processing.inspect_image(
            io.BytesIO(data),
            allowed_formats=["JPEG", "PNG"],
            max_pixels=50_000_000,
            box=spec.box,
            backend=backend,
            max_decode_memory=costs.MiB * 256,
            max_jpeg_scans=100,
            formats=("AVIF", "WEBP"),
        )
        image = upload_one(data, f"{label}.{info.extension}")
        tasks.resize_image.apply_async((image.pk,), queue=worker.queue)
        row = wait_for_status(image.pk, {Status.DONE, Status.FAILED}, timeout=120)
        if memory_record(log, image.pk) is None:
            # Row ids are reused after each transactional test, and a task an
            # earlier test left behind (a retry's countdown in the session's
            # worker) can take this row first: measure it again, here.
            queue.reprocess(UploadedImage.objects.filter(pk=image.pk))
            tasks.resize_image.apply_async((image.pk,), {"force": True}, queue=worker.queue)
            row = wait_for_status(image.pk, {Status.DONE, Status.FAILED}, timeout=120)
            wait_for_memory_record(log, image.pk)
        rows.append((label, len(data), info, row))

    records = {r["image_id"]: r for r in map(json.loads, log.read_text().splitlines())}
    lines = [f"\nLargest accepted files, {backend} backend (one new pool process per task):"]
    for label, size, info, row in rows:
        record = records[row.pk]
        added = record["added_kib"] * 1024
        lines.append(
            f"  {label:32} {size / 1024:7.0f} KB  estimate {costs.megabytes(info.decode_memory):>7}"
            f"  measured {costs.megabytes(added):>7}  {record['seconds']:6.2f} s  {row.status}"
        )
        assert row.status == Status.DONE, (label, row.error)
        assert added <= info.decode_memory, (label, added, info.decode_memory)
    with capsys.disabled():
        print("\n".join(lines))
