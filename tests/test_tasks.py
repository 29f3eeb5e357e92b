"""The worker path: ``services.process_image`` in this process, then the real
Celery worker (``celery_worker`` fixture) picking up uploads dispatched after commit.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from PIL import Image, ImageChops, ImageStat

from django_image_sync import conf, processing, results, services
from django_image_sync.models import Status, UploadedImage, resized_name
from django_image_sync.signals import image_failed, image_processed
from tests.conftest import clear_run_cache, wait_for_status
from tests.images import encode, jpeg_bytes, upload
from tests.support.media import media_root, stored_files

# -- helpers -------------------------------------------------------------------------


def snapshot() -> dict[str, tuple[int, int]]:
    """Every stored file with its size and modification time."""
    root = media_root()
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def fresh(pk: int) -> UploadedImage:
    return UploadedImage.objects.get(pk=pk)


def cache_key(image: UploadedImage) -> str:
    return services.result_cache_key(image.sha256, services.current_spec())


def upload_one(data: bytes, owner=None, name: str = "photo.jpg") -> UploadedImage:
    [outcome] = services.upload_images([upload(data, name)], owner=owner)
    assert outcome.duplicate is False
    return outcome.image


def fits(size: tuple[int, int], box: tuple[int, int]) -> bool:
    return size[0] <= box[0] and size[1] <= box[1] and (size[0] == box[0] or size[1] == box[1])


@pytest.fixture(autouse=True)
def _run_cache():
    """Forget this run's cached resize results around each test.

    Only the keys under this run's cache prefix: ``clear_cache`` would flush the
    whole Redis database, broker queue and other runs included. A result cached
    by an earlier test names a file that test's clean-up already removed.
    """
    clear_run_cache()
    yield
    clear_run_cache()


@pytest.fixture
def worker_signals():
    """``image_processed`` and ``image_failed`` as sent in this process."""
    sent: list[tuple] = []

    def processed(sender, image, **kwargs):
        sent.append(("processed", image.pk, image.status, image.resized.name))

    def failed(sender, image, error, **kwargs):
        sent.append(("failed", image.pk, image.status, error))

    image_processed.connect(processed, sender=UploadedImage, weak=False)
    image_failed.connect(failed, sender=UploadedImage, weak=False)
    yield sent
    image_processed.disconnect(processed, sender=UploadedImage)
    image_failed.disconnect(failed, sender=UploadedImage)


# -- the worker path in this process ---------------------------------------------------


@pytest.mark.django_db
def test_pending_image_is_resized_to_fit(worker_signals, resize_calls):
    image = upload_one(jpeg_bytes((2400, 1600), seed=101))

    assert services.process_image(image.pk) == Status.DONE

    done = fresh(image.pk)
    spec = services.current_spec()
    assert (done.status, done.error, done.attempts) == (Status.DONE, "", 1)
    assert done.resized.name == resized_name(done.sha256, spec.key, "jpg")
    assert done.sha256 in done.resized.name
    assert (done.resized_width, done.resized_height) == (1620, 1080)
    assert fits((done.resized_width, done.resized_height), (1920, 1080))
    with Image.open(media_root() / done.resized.name) as im:
        assert im.format == "JPEG"
        assert im.size == (1620, 1080)
    assert done.is_done
    assert done.resized_url == settings.MEDIA_URL + done.resized.name
    assert worker_signals == [("processed", image.pk, Status.DONE, done.resized.name)]
    assert len(resize_calls) == 1
    cached = caches["default"].get(cache_key(done))
    assert cached == results.result_of(done, conf.output_plan())
    assert (cached["name"], cached["width"], cached["height"]) == (done.resized.name, 1620, 1080)
    # Every output of the default plan, the main one first, each stored once.
    assert [(e["format"], e["width"]) for e in done.renditions] == [
        ("JPEG", 1620),
        ("AVIF", 1620),
        ("WEBP", 1620),
        ("JPEG", 1440),
        ("AVIF", 1440),
        ("WEBP", 1440),
        ("JPEG", 960),
        ("AVIF", 960),
        ("WEBP", 960),
        ("JPEG", 480),
        ("AVIF", 480),
        ("WEBP", 480),
    ]
    for entry in done.renditions:
        assert (media_root() / entry["name"]).stat().st_size == entry["size"]
    assert done.placeholder.startswith("data:image/webp;base64,")


@pytest.mark.django_db
def test_small_image_is_not_upscaled():
    image = upload_one(jpeg_bytes((64, 48), seed=102))
    assert services.process_image(image.pk) == Status.DONE
    done = fresh(image.pk)
    assert (done.resized_width, done.resized_height) == (64, 48)


@pytest.mark.django_db
def test_processing_twice_changes_nothing(worker_signals, resize_calls):
    image = upload_one(jpeg_bytes((800, 600), seed=103))
    assert services.process_image(image.pk) == Status.DONE
    before = fresh(image.pk)
    files = snapshot()

    assert services.process_image(image.pk) == "skipped"
    assert services.process_image(image.pk, force=True) == "skipped"

    after = fresh(image.pk)
    assert after.updated == before.updated
    assert after.attempts == before.attempts == 1
    assert (after.status, after.resized.name) == (Status.DONE, before.resized.name)
    assert (after.resized_width, after.resized_height) == (800, 600)
    assert snapshot() == files
    assert len(worker_signals) == 1
    assert len(resize_calls) == 1


@pytest.mark.django_db
def test_undecodable_original_fails_for_good(worker_signals):
    image = upload_one(jpeg_bytes((300, 200), seed=104))
    (media_root() / image.original.name).write_bytes(b"\xff\xd8\xff garbage, not a JPEG" * 50)

    assert services.process_image(image.pk) == Status.FAILED  # no TransientError

    failed = fresh(image.pk)
    assert failed.status == Status.FAILED
    assert failed.error.startswith("the image cannot be processed: ")
    assert len(failed.error) > len("the image cannot be processed: ")
    assert not failed.resized
    assert failed.resized_url is None
    assert stored_files("resized") == []
    assert worker_signals == [("failed", image.pk, Status.FAILED, failed.error)]
    # A failed image stays failed.
    assert services.process_image(image.pk) == "skipped"
    assert fresh(image.pk).status == Status.FAILED


@pytest.mark.django_db
def test_missing_original_is_a_transient_error(worker_signals):
    image = upload_one(jpeg_bytes((300, 200), seed=105))
    (media_root() / image.original.name).unlink()

    with pytest.raises(services.TransientError, match="cannot read the original"):
        services.process_image(image.pk)

    left = fresh(image.pk)
    # Left for a retry: claimed, not failed.
    assert (left.status, left.attempts, left.error) == (Status.PROCESSING, 1, "")
    assert worker_signals == []


@pytest.mark.django_db
@override_settings(IMAGE_SYNC={"MAX_ATTEMPTS": 3})
def test_too_many_attempts_give_up(worker_signals):
    image = upload_one(jpeg_bytes((300, 200), seed=106))
    (media_root() / image.original.name).unlink()

    for attempt in range(1, 4):
        with pytest.raises(services.TransientError):
            services.process_image(image.pk)
        assert fresh(image.pk).attempts == attempt

    assert services.process_image(image.pk) == Status.FAILED

    failed = fresh(image.pk)
    assert failed.status == Status.FAILED
    assert failed.error == "gave up after 3 attempts"
    assert worker_signals == [("failed", image.pk, Status.FAILED, "gave up after 3 attempts")]


@pytest.mark.django_db
def test_same_content_of_another_owner_comes_from_the_cache(alice, bob, resize_calls):
    data = jpeg_bytes((2000, 1000), seed=107)
    mine = upload_one(data, alice)
    theirs = upload_one(data, bob)
    assert services.process_image(mine.pk) == Status.DONE
    assert len(resize_calls) == 1
    assert caches["default"].get(cache_key(mine)) is not None

    assert services.process_image(theirs.pk) == Status.DONE

    assert len(resize_calls) == 1
    mine, theirs = fresh(mine.pk), fresh(theirs.pk)
    assert theirs.status == Status.DONE
    assert theirs.resized.name == mine.resized.name
    assert (theirs.resized_width, theirs.resized_height) == (1920, 960)
    assert stored_files("resized") == sorted(e["name"] for e in mine.renditions)


@pytest.mark.django_db
def test_without_the_cache_a_done_twin_still_saves_the_resize(alice, bob, resize_calls):
    data = jpeg_bytes((2000, 1000), seed=108)
    mine = upload_one(data, alice)
    theirs = upload_one(data, bob)
    assert services.process_image(mine.pk) == Status.DONE
    caches["default"].delete(cache_key(mine))
    assert caches["default"].get(cache_key(mine)) is None

    assert services.process_image(theirs.pk) == Status.DONE

    assert len(resize_calls) == 1
    mine, theirs = fresh(mine.pk), fresh(theirs.pk)
    assert theirs.resized.name == mine.resized.name
    assert (theirs.resized_width, theirs.resized_height) == (1920, 960)


@pytest.mark.django_db
def test_content_no_other_row_holds_is_processed_without_looking_for_twins(
    resize_calls, monkeypatch
):
    looked: list[str] = []
    cached = results.cached
    monkeypatch.setattr(results, "cached", lambda key: looked.append(key) or cached(key))
    image = upload_one(jpeg_bytes((800, 600), seed=110))

    with CaptureQueriesContext(connection) as queries:
        assert services.process_image(image.pk) == Status.DONE

    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("SELECT")]
    # The row itself, read with whether another row holds its content; no
    # second read for a twin's result (there is none to find), and on this
    # first attempt no look in the cache either (nothing can have made one).
    assert len(reads) == 1, reads
    assert looked == []
    assert len(resize_calls) == 1


@pytest.mark.django_db
def test_a_later_attempt_reuses_the_result_an_earlier_one_cached(resize_calls):
    image = upload_one(jpeg_bytes((800, 600), seed=111))
    assert services.process_image(image.pk) == Status.DONE
    done = fresh(image.pk)
    # As if the first attempt had stored and cached its outputs, then failed to
    # record them (the database went away): the row is processing again.
    UploadedImage.objects.filter(pk=image.pk).update(
        status=Status.PROCESSING, resized="", renditions=[], placeholder=""
    )

    assert services.process_image(image.pk) == Status.DONE

    assert len(resize_calls) == 1  # the second attempt rendered nothing
    again = fresh(image.pk)
    assert (again.attempts, again.resized.name) == (2, done.resized.name)
    assert again.renditions == done.renditions


@pytest.mark.django_db
def test_reprocess_with_force_resizes_again(resize_calls):
    image = upload_one(jpeg_bytes((1200, 900), seed=109))
    assert services.process_image(image.pk) == Status.DONE
    name = fresh(image.pk).resized.name
    (media_root() / name).unlink()  # the cached result now names a missing file

    with transaction.atomic():
        assert services.reprocess([fresh(image.pk)]) == 1
    again = fresh(image.pk)
    assert (again.status, again.attempts, again.error) == (Status.PENDING, 0, "")

    assert services.process_image(image.pk, force=True) == Status.DONE

    assert len(resize_calls) == 2
    done = fresh(image.pk)
    assert (done.status, done.resized.name, done.attempts) == (Status.DONE, name, 1)
    with Image.open(media_root() / name) as im:
        assert im.size == (1200, 900)


@pytest.mark.django_db
def test_other_target_size_gives_another_resized_file(resize_calls):
    image = upload_one(jpeg_bytes((2000, 1000), seed=110))
    assert services.process_image(image.pk) == Status.DONE
    first = fresh(image.pk).resized.name

    with override_settings(IMAGE_SYNC={"TARGET_SIZE": (320, 320)}):
        with transaction.atomic():
            services.reprocess([fresh(image.pk)])
        assert services.process_image(image.pk) == Status.DONE

    done = fresh(image.pk)
    assert done.resized.name != first
    assert done.sha256 in done.resized.name
    assert (done.resized_width, done.resized_height) == (320, 160)
    assert len(resize_calls) == 2
    # The first size's files went with the last row that referred to them.
    assert first not in stored_files("resized")
    assert stored_files("resized") == sorted(e["name"] for e in done.renditions)
    with Image.open(media_root() / done.resized.name) as im:
        assert im.size == (320, 160)


# -- the real worker ------------------------------------------------------------------


def marked_photo(size: tuple[int, int], orientation: int) -> bytes:
    """A grey JPEG whose stored top band is red, with the given EXIF orientation."""
    im = Image.new("RGB", size, (128, 128, 128))
    im.paste((220, 20, 20), (0, 0, size[0], size[1] // 5))
    exif = Image.Exif()
    exif[processing.EXIF_ORIENTATION] = orientation
    return encode(im, "JPEG", quality=90, exif=exif.tobytes())


def is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 180 and g < 80 and b < 80


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_worker_resizes_upright(celery_worker):
    # Orientation 6: shown turned 90 degrees clockwise, so the stored top is on the right.
    with transaction.atomic():
        image = upload_one(marked_photo((3000, 2000), orientation=6))
        assert (image.width, image.height) == (2000, 3000)

    done = wait_for_status(image.pk, {Status.DONE, Status.FAILED})

    assert done.status == Status.DONE, done.error
    assert (done.resized_width, done.resized_height) == (720, 1080)
    assert done.attempts == 1
    with Image.open(media_root() / done.resized.name) as im:
        assert im.size == (720, 1080)
        assert processing.EXIF_ORIENTATION not in im.getexif()
        rgb = im.convert("RGB")
        assert is_red(rgb.getpixel((700, 540)))
        assert not is_red(rgb.getpixel((20, 540)))
        assert not is_red(rgb.getpixel((360, 20)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_worker_processes_every_file_of_a_submission(celery_worker, alice):
    files = [upload(jpeg_bytes((2400, 1200), seed=201), "a.jpg"), upload(jpeg_bytes(seed=202))]
    with transaction.atomic():
        outcomes = services.upload_images(files, owner=alice)

    done = [wait_for_status(o.image.pk, {Status.DONE, Status.FAILED}) for o in outcomes]

    assert [d.status for d in done] == [Status.DONE, Status.DONE], [d.error for d in done]
    assert [(d.resized_width, d.resized_height) for d in done] == [(1920, 960), (64, 48)]
    for image in done:
        assert (media_root() / image.resized.name).is_file()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_worker_fails_an_undecodable_original(celery_worker):
    with transaction.atomic():
        image = upload_one(jpeg_bytes((300, 200), seed=203))
        # Damaged in storage before the task could run (it runs only after commit).
        (media_root() / image.original.name).write_bytes(b"\xff\xd8\xff not a picture" * 40)

    failed = wait_for_status(image.pk, {Status.DONE, Status.FAILED})

    assert failed.status == Status.FAILED
    assert failed.error.startswith("the image cannot be processed: ")
    assert not failed.resized
    assert stored_files("resized") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_worker_reprocesses_a_done_image(celery_worker):
    with transaction.atomic():
        image = upload_one(jpeg_bytes((1600, 1200), seed=204))
    done = wait_for_status(image.pk, {Status.DONE, Status.FAILED})
    assert done.status == Status.DONE, done.error
    # Without force the worker would trust the cache and never rewrite this file.
    (media_root() / done.resized.name).unlink()

    with transaction.atomic():
        assert services.reprocess([done]) == 1
        assert fresh(image.pk).status == Status.PENDING

    again = wait_for_status(image.pk, {Status.DONE, Status.FAILED})
    assert again.status == Status.DONE, again.error
    assert (again.attempts, again.error) == (1, "")
    assert again.updated > done.updated
    assert again.resized.name == done.resized.name
    with Image.open(media_root() / again.resized.name) as im:
        assert im.size == (1440, 1080)


def process_with_worker(paths: list[Path]) -> list[UploadedImage]:
    """Upload files two at a time (the default MAX_FILES), each pair once the
    worker finished the one before.

    Not while the worker writes: tests/settings.py leaves SQLite in its default
    deferred transaction mode, where an upload transaction that must wait for
    the worker's write fails with "database is locked" instead of waiting.
    """
    images = []
    for start in range(0, len(paths), 2):
        batch = [upload(p.read_bytes(), p.name) for p in paths[start : start + 2]]
        with transaction.atomic():
            outcomes = services.upload_images(batch)
        images += [wait_for_status(o.image.pk, {Status.DONE, Status.FAILED}) for o in outcomes]
    return images


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_worker_output_carries_no_camera_metadata(celery_worker, corpus):
    paths = sorted(corpus.glob("gps/*.jpg")) + sorted(corpus.glob("*.jpg"))
    paths += [corpus / "mobile" / "jolla.jpg", corpus / "hdr" / "iphone_hdr_YES.jpg"]
    assert len(paths) >= 3
    with Image.open(paths[0]) as original:
        assert 0x8825 in original.getexif()  # the sample really has GPS

    for image in process_with_worker(paths):
        assert image.status == Status.DONE, (image.original_name, image.error)
        with Image.open(media_root() / image.resized.name) as im:
            assert fits(im.size, (1920, 1080)) or im.size == (image.width, image.height)
            assert dict(im.getexif()) == {}, image.original_name
            assert "exif" not in im.info
            assert "xmp" not in im.info


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.parametrize("shape", ["landscape", "portrait"])
def test_worker_turns_every_orientation_upright(celery_worker, corpus, shape):
    paths = [corpus / "orientation" / f"{shape}_{n}.jpg" for n in range(1, 9)]
    images = process_with_worker(paths)
    assert [i.status for i in images] == [Status.DONE] * 8, [i.error for i in images]

    def pixels(image: UploadedImage) -> Image.Image:
        with Image.open(media_root() / image.resized.name) as im:
            return im.convert("L")

    reference = pixels(images[0])

    def distance(a: Image.Image, b: Image.Image) -> float:
        return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]

    for image in images[1:]:
        candidate = pixels(image)
        assert candidate.size == reference.size, image.original_name
        # Of the eight ways to turn the reference, "not at all" must match best.
        others = [reference.transpose(t) for t in Image.Transpose]
        wrong = min(distance(candidate, o) for o in others if o.size == candidate.size)
        assert distance(candidate, reference) < wrong / 2, image.original_name


def test_marked_photo_is_what_it_claims():
    # The upright check above relies on this stored layout.
    with Image.open(io.BytesIO(marked_photo((300, 200), orientation=6))) as im:
        assert im.getexif()[processing.EXIF_ORIENTATION] == 6
        assert is_red(im.convert("RGB").getpixel((150, 10)))
        assert not is_red(im.convert("RGB").getpixel((150, 190)))


@pytest.mark.django_db
def test_a_backend_without_render_makes_the_main_output_only(settings, clear_cache):
    settings.IMAGE_SYNC = {"BACKEND": "tests.support.resize_only_backend"}
    image = upload_one(jpeg_bytes((2400, 1600), seed=131))
    assert services.process_image(image.pk) == Status.DONE
    done = fresh(image.pk)
    assert [(e["format"], e["width"]) for e in done.renditions] == [("JPEG", 1620)]
    assert done.placeholder == ""
    assert done.is_current(conf.output_plan())  # so the backfill leaves it alone
    assert stored_files("resized") == [done.resized.name]
