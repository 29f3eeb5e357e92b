"""``manage.py image_sync_backfill`` and the rule that no stored file is ever an orphan.

The backfill runs against a real Celery worker started with the new settings on
a queue of its own (``--queue``), the way a site would run it beside its
ordinary workers.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from django_image_sync import conf, files, queue, services, worker
from django_image_sync.models import Status, UploadedImage
from tests.conftest import WorkerProcess
from tests.images import jpeg_bytes, upload
from tests.support.media import media_root, stored_files

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

NEW_WIDTHS = (320, 960, 1440)  # 480 goes, 320 comes (made from the 960)


@pytest.fixture(autouse=True)
def processed_here(monkeypatch):  # type: ignore[no-untyped-def]
    """Uploads are processed in this process, never by a session worker picking
    up their resize task meanwhile (the refresh tasks still go to a worker)."""
    monkeypatch.setattr(queue, "enqueue_resize", lambda *args, **kwargs: True)


def upload_done(data: bytes, name: str) -> UploadedImage:
    [outcome] = services.upload_images([upload(data, name)])
    assert services.process_image(outcome.image.pk) == Status.DONE
    return UploadedImage.objects.get(pk=outcome.image.pk)


def backfill(*args: str) -> str:
    out = io.StringIO()
    call_command("image_sync_backfill", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, tuple[int, int]]:
    """Every stored file with its size and modification time."""
    return {
        name: ((media_root() / name).stat().st_size, (media_root() / name).stat().st_mtime_ns)
        for name in stored_files()
    }


def rows() -> list[tuple]:
    return list(
        UploadedImage.objects.order_by("pk").values_list(
            "pk", "status", "resized", "renditions", "placeholder", "updated"
        )
    )


def test_changed_widths_plan_then_apply_with_a_real_worker(settings, tmp_path: Path, clear_cache):
    first = upload_done(jpeg_bytes((2400, 1600), seed=901), "wide.jpg")
    second = upload_done(jpeg_bytes((1600, 2400), seed=902), "tall.jpg")
    before_files, before_rows = snapshot(), rows()
    old_480 = {e["name"] for img in (first, second) for e in img.renditions if e["width"] == 480}
    assert len(old_480) == 6

    settings.IMAGE_SYNC = {"RENDITION_WIDTHS": NEW_WIDTHS}
    plan = backfill("--sample", "1")
    assert "2 of 2 done images are out of date." in plan
    for fmt in ("JPEG", "AVIF", "WEBP"):  # only 320 is new; the rest keep their names
        assert f"{fmt} 320 px wide: 2 images" in plan
    assert " 960 px wide" not in plan
    assert "Files no row would refer to any more, deleted once replaced: 6." in plan
    assert "Estimated worker time:" in plan
    assert "measured here on 1 of them" in plan
    assert "Nothing was changed." in plan
    assert snapshot() == before_files
    assert rows() == before_rows

    queue = f"backfill-{settings.RUN_ID}"
    worker_process = WorkerProcess(
        tmp_path / "backfill-worker.log",
        queue=queue,
        name=f"backfill-{settings.RUN_ID}",
        env={"IMAGE_SYNC_TEST_OVERRIDES": json.dumps({"RENDITION_WIDTHS": NEW_WIDTHS})},
    ).start()
    try:
        applied = backfill("--apply", "--queue", queue, "--batch-timeout", "120")
    finally:
        worker_process.stop()
    assert "2 images brought up to date." in applied, applied + worker_process.output()

    plan_now = conf.output_plan()
    after_files = snapshot()
    for image in UploadedImage.objects.all():
        assert image.is_current(plan_now)
        widths = sorted({e["width"] for e in image.renditions})
        assert 320 in widths
        assert 480 not in widths
    # The 480 files are gone; every file that stayed is untouched (same bytes, same time).
    assert not old_480 & set(after_files)
    for name, stat in before_files.items():
        if name not in old_480:
            assert after_files[name] == stat, name
    assert sorted(after_files) == sorted(
        name for image in UploadedImage.objects.all() for name in image.stored_names()
    )
    # Running it again repeats nothing.
    assert "0 of 2 done images are out of date." in backfill("--apply", "--queue", queue)


def test_no_stored_file_is_ever_unreferenced(settings, monkeypatch, clear_cache):
    kept = upload_done(jpeg_bytes((2000, 1500), seed=911), "kept.jpg")
    gone = upload_done(jpeg_bytes((1800, 1200), seed=912), "gone.jpg")
    failing = upload_done(jpeg_bytes((1200, 1600), seed=913), "failing.jpg")
    with transaction.atomic():
        gone.delete()

    settings.IMAGE_SYNC = {"RENDITION_WIDTHS": (600,), "RENDITION_FORMATS": ("WEBP",)}
    assert worker.refresh_outputs(kept.pk) == Status.DONE
    # A failed backfill: storage refuses the second write of this image's refresh
    # (the main JPEG and WebP keep their names and are not written again).
    real_write = files.write_once
    writes: list[str] = []

    def refusing(name, content, size, **kwargs):  # type: ignore[no-untyped-def]
        writes.append(name)
        if len(writes) == 2:
            raise OSError("storage refused the write")
        return real_write(name, content, size, **kwargs)

    monkeypatch.setattr(files, "write_once", refusing)
    with pytest.raises(files.TransientError, match="storage refused"):
        worker.refresh_outputs(failing.pk)
    monkeypatch.setattr(files, "write_once", real_write)
    settings.IMAGE_SYNC = {"RENDITION_WIDTHS": (600,), "RENDITION_FORMATS": ("WEBP",)}
    still_old = UploadedImage.objects.get(pk=failing.pk)
    assert still_old.renditions == failing.renditions  # the old outputs are still served
    assert len(writes) == 2
    assert writes[0] not in stored_files()  # the one written before the failure

    stored = stored_files()
    assert stored
    for name in stored:
        assert files.is_referenced(name), f"{name} is stored but no row refers to it"
    for image in UploadedImage.objects.all():
        for name in image.stored_names():
            assert name in stored


def test_an_image_that_fails_for_good_leaves_only_its_original(monkeypatch, clear_cache):
    [outcome] = services.upload_images([upload(jpeg_bytes((2400, 1600), seed=921), "a.jpg")])
    real_write = files.write_once
    writes: list[str] = []

    def refusing(name, content, size, **kwargs):  # type: ignore[no-untyped-def]
        writes.append(name)
        if len(writes) == 4:
            raise OSError("storage refused the write")
        return real_write(name, content, size, **kwargs)

    monkeypatch.setattr(files, "write_once", refusing)
    with pytest.raises(files.TransientError):
        services.process_image(outcome.image.pk)
    # Kept for the retry (which writes the same names, or another run may use them).
    assert len(stored_files("resized")) == 3
    # The task gives up: the image fails for good and its outputs go with it.
    assert worker.fail_image(outcome.image.pk, "gave up after 4 tries") == Status.FAILED
    assert stored_files("resized") == []
    assert stored_files() == [UploadedImage.objects.get().original.name]


def test_one_refresh_of_an_image_at_a_time(settings, clear_cache):
    from django.core.cache import caches

    image = upload_done(jpeg_bytes((1600, 1200), seed=931), "one.jpg")
    settings.IMAGE_SYNC = {"RENDITION_WIDTHS": (800,)}
    key = f"image_sync:lock:refresh:{image.pk}"
    assert caches["default"].add(key, "another worker", 30)  # a refresh running elsewhere
    try:
        assert worker.refresh_outputs(image.pk) == "skipped"
    finally:
        caches["default"].delete(key)
    assert worker.refresh_outputs(image.pk) == Status.DONE
    assert worker.refresh_outputs(image.pk) == "current"


def test_a_twin_failing_for_good_does_not_delete_what_another_run_is_recording(
    monkeypatch, alice, bob, clear_cache
):
    """X writes the shared outputs and is about to record them when its twin Y (same
    content, another owner) fails for good: Y's clean-up waits for X's lock, then
    finds the files referenced, and deletes nothing."""
    import threading

    from django.db import connection

    data = jpeg_bytes((2000, 1500), seed=941)
    [x] = services.upload_images([upload(data, "x.jpg")], owner=alice)
    [y] = services.upload_images([upload(data, "y.jpg")], owner=bob)
    storing = threading.Event()
    real_finish = worker._finish

    def slow_finish(image, result):  # type: ignore[no-untyped-def]
        storing.set()
        time.sleep(1.0)  # Y's fail_image runs now, and must wait
        return real_finish(image, result)

    monkeypatch.setattr(worker, "_finish", slow_finish)
    outcome: dict[str, object] = {}

    def run_x() -> None:
        try:
            outcome["x"] = worker.process_image(x.image.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=run_x)
    thread.start()
    assert storing.wait(30)
    assert worker.claim(y.image.pk) is not None
    assert worker.fail_image(y.image.pk, "resizing took longer than 120 s") == Status.FAILED
    thread.join(30)
    assert outcome["x"] == Status.DONE
    done = UploadedImage.objects.get(pk=x.image.pk)
    missing = [n for n in done.stored_names() if not (media_root() / n).is_file()]
    assert missing == []


def test_apply_does_not_wait_for_a_refresh_that_reported_why_not(
    settings, monkeypatch, clear_cache
):
    from django_image_sync import backfill as backfill_module

    image = upload_done(jpeg_bytes((1600, 1200), seed=951), "big.jpg")
    # Now the budget refuses it: its refresh is skipped, the row stays as it was.
    settings.IMAGE_SYNC = {"RENDITION_WIDTHS": (800,), "MAX_DECODE_MEMORY": 1024 * 1024}
    monkeypatch.setattr(
        backfill_module, "enqueue_refresh", lambda pk, queue=None: bool(worker.refresh_outputs(pk))
    )
    started = time.monotonic()
    applied = backfill_module.apply(
        [image.pk],
        conf.output_plan(),
        batch_size=10,
        rate=0,
        batch_timeout=60,
        queue=None,
        progress=lambda text: None,
    )
    assert applied.behind == {image.pk: "skipped"}
    assert applied.current == 0
    assert time.monotonic() - started < 10  # not the 60 s batch timeout
    assert UploadedImage.objects.get(pk=image.pk).renditions == image.renditions


def test_reordering_the_formats_leaves_every_image_current(settings, clear_cache):
    image = upload_done(jpeg_bytes((1600, 1200), seed=961), "order.jpg")
    settings.IMAGE_SYNC = {"RENDITION_FORMATS": ("WEBP", "AVIF", "webp")}
    assert UploadedImage.objects.get(pk=image.pk).is_current(conf.output_plan())
    assert "0 of 1 done images are out of date." in backfill("--sample", "0")
