"""The upload path (``django_image_sync.uploads``, also reached through the old
``services`` names): validation, content-addressed storage, deduplication
(decided by the database), rollback, signals and queueing after commit.

Everything here runs against the real database, storage, Redis and broker. No
worker is needed: only the dispatch test queues tasks, and it pauses this run's
worker if an earlier module started it, so that the queue keeps what was published.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test import override_settings
from PIL import Image

from django_image_sync import conf, services
from django_image_sync.models import Status, UploadedImage, original_name
from django_image_sync.receivers import dispatch_new_image
from django_image_sync.signals import image_uploaded
from tests.images import encode, jpeg_bytes, photo_like, png_bytes, upload
from tests.support.media import is_stored, media_root, read_stored, stored_files

# Kombu's Redis transport keeps each priority band of a queue in its own list.
PRIORITY_SEPARATOR = "\x06\x16"
QUEUE_KEYS = [settings.CELERY_TASK_DEFAULT_QUEUE] + [
    f"{settings.CELERY_TASK_DEFAULT_QUEUE}{PRIORITY_SEPARATOR}{p}" for p in (3, 6, 9)
]
# Generous bound for threads meeting each other; never reached when things work.
THREAD_WAIT = 60


# -- helpers -------------------------------------------------------------------


def named(data: bytes, name: str | None) -> io.BytesIO:
    """A plain file object with any ``name`` (Django's UploadedFile would tidy it first)."""
    fileobj = io.BytesIO(data)
    if name is not None:
        fileobj.name = name
    return fileobj


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest()


@pytest.fixture
def broker() -> redis.Redis:
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def purge_queue() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete(*QUEUE_KEYS)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _no_resize_tasks(request):
    """Queue no resize for rows these tests commit (the dispatch test excepted).

    Nothing here waits for a resize, and a worker an earlier module started would
    otherwise write files while the test's clean-up empties MEDIA_ROOT. This
    unhooks the app's own post_save receiver; the dispatch test keeps it.
    """
    if "no_worker" in request.fixturenames:
        yield
        return
    uid = "image_sync_dispatch_new"
    assert post_save.disconnect(sender=UploadedImage, dispatch_uid=uid)
    yield
    post_save.connect(dispatch_new_image, sender=UploadedImage, dispatch_uid=uid)


@pytest.fixture
def uploaded_signals():
    """Every ``image_uploaded`` sent, as ``(image pk, duplicate)``."""
    sent: list[tuple[int, bool]] = []

    def receiver(sender, image, duplicate, **kwargs):
        assert sender is UploadedImage
        sent.append((image.pk, duplicate))

    image_uploaded.connect(receiver, sender=UploadedImage, weak=False)
    yield sent
    image_uploaded.disconnect(receiver, sender=UploadedImage)


@pytest.fixture
def failing_insert():
    """Make saving a row fail for uploads whose client file name is registered here.

    A real ``pre_save`` receiver: the failure happens inside ``image.save()``,
    after the original was written, as a database error would.
    """
    failures: dict[str, type[Exception]] = {}

    def receiver(sender, instance, **kwargs):
        error = failures.get(instance.original_name)
        if error is not None:
            raise error(f"forced failure saving {instance.original_name}")

    pre_save.connect(receiver, sender=UploadedImage, weak=False, dispatch_uid="test-failing")
    yield failures
    pre_save.disconnect(sender=UploadedImage, dispatch_uid="test-failing")


# -- check_files ---------------------------------------------------------------


def bad_files() -> list[tuple[str, bytes, str]]:
    """``(client name, content, expected error code)`` of files the rules refuse."""
    whole = jpeg_bytes(seed=7)
    return [
        ("empty.jpg", b"", "empty"),
        ("text.jpg", b"just some text, not an image", "format"),
        ("anim.jpg", encode(photo_like((16, 16)), "GIF"), "format"),
        ("truncated.jpg", whole[: len(whole) // 2], "corrupt"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("position", [0, 1, 2], ids=["bad-first", "bad-middle", "bad-last"])
def test_one_bad_file_refuses_the_whole_submission(position):
    files = [upload(jpeg_bytes(seed=i), f"good{i}.jpg") for i in range(3)]
    files[position] = upload(b"<html>not an image</html>", "evil.jpg")

    with override_settings(IMAGE_SYNC={"MAX_FILES": 3}):
        with pytest.raises(services.UploadRejected) as caught:
            services.check_files(files)
        with pytest.raises(services.UploadRejected):
            services.upload_images(files)

    [error] = caught.value.errors
    assert error.file == "evil.jpg"
    assert error.code == "format"
    assert "evil.jpg" in error.message
    assert "HTML" in error.message
    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
def test_every_bad_file_is_named_with_its_code():
    bad = bad_files()
    files = [upload(jpeg_bytes(seed=1), "fine.jpg")] + [upload(data, name) for name, data, _ in bad]
    expected = [(name, code) for name, _, code in bad]

    with (
        override_settings(IMAGE_SYNC={"MAX_FILES": 5}),
        pytest.raises(services.UploadRejected) as caught,
    ):
        services.upload_images(files)

    assert [(e.file, e.code) for e in caught.value.errors] == expected
    for error in caught.value.errors:
        assert error.message.startswith(f"{error.file}: ")
    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
def test_size_and_pixel_limits_are_reported_per_file():
    big = jpeg_bytes((400, 300), seed=3)
    flat = encode(Image.new("RGB", (200, 100)), "PNG")  # few bytes, many pixels
    assert len(flat) < len(big)
    limits = {"MAX_FILE_SIZE": len(big) - 1, "MAX_PIXELS": 10_000}
    with (
        override_settings(IMAGE_SYNC=limits),
        pytest.raises(services.UploadRejected) as caught,
    ):
        services.upload_images([upload(big, "big.jpg"), upload(flat, "p.png")])
    assert [(e.file, e.code) for e in caught.value.errors] == [
        ("big.jpg", "max_file_size"),
        ("p.png", "max_pixels"),
    ]
    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
@pytest.mark.parametrize("max_files", [None, 3])
def test_one_file_too_many_is_refused(max_files):
    limit = max_files or 2  # the default
    files = [upload(jpeg_bytes(seed=i), f"{i}.jpg") for i in range(limit + 1)]
    overrides = {"IMAGE_SYNC": {"MAX_FILES": max_files}} if max_files else {}
    with override_settings(**overrides):
        services.check_files(files[:limit])  # at the limit: accepted
        with pytest.raises(services.UploadRejected) as caught:
            services.upload_images(files)
    [error] = caught.value.errors
    assert (error.file, error.code) == (None, "max_files")
    assert str(limit) in error.message
    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
def test_no_file_is_refused():
    with pytest.raises(services.UploadRejected) as caught:
        services.upload_images([])
    assert [(e.file, e.code) for e in caught.value.errors] == [(None, "required")]
    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


# -- storing -------------------------------------------------------------------

LONG_NAME = "ü" * 296 + ".jpg"  # 300 characters, none of them ASCII but the extension

CLIENT_NAMES = [
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd.jpg", "passwd.jpg"),
    ("C:\\x.jpg", "x.jpg"),
    ("evil\u202egpj.jpg", "evilgpj.jpg"),  # a control character (RLO) is dropped
    (LONG_NAME, "ü" * 251 + ".jpg"),
]
# Django's own upload handling drops a part with no file name, and its
# UploadedFile refuses one; a site's script may still pass a nameless file.
NAMELESS = [("", "file 1"), (None, "file 1"), ("../", "file 1")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("client_name", "shown", "wrapper"),
    [(*names, "django-upload") for names in CLIENT_NAMES]
    + [(*names, "plain-file") for names in CLIENT_NAMES + NAMELESS],
)
def test_new_image_is_stored_under_its_content_hash(alice, client_name, shown, wrapper):
    data = jpeg_bytes((40, 30), seed=11)
    md5, sha256 = digests(data)
    fileobj = upload(data, client_name) if wrapper == "django-upload" else named(data, client_name)

    [outcome] = services.upload_images([fileobj], owner=alice)

    assert outcome.duplicate is False
    image = UploadedImage.objects.get(pk=outcome.image.pk)
    assert image.status == Status.PENDING
    assert (image.md5, image.sha256) == (md5, sha256)
    assert (image.width, image.height, image.format, image.size) == (40, 30, "JPEG", len(data))
    assert image.owner == alice
    assert image.scope == f"user:{alice.pk}"
    assert image.original_name == shown
    assert len(image.original_name) <= 255

    name = image.original.name
    assert name == f"image_sync/originals/{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"
    assert name == original_name(sha256, "jpg")
    assert Path(shown).stem not in name
    assert ".." not in name
    assert "\\" not in name
    assert stored_files() == [name]
    assert (media_root() / name).read_bytes() == data


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "client_name", "extension", "detected"),
    [
        pytest.param(jpeg_bytes(seed=12), "picture.png", "jpg", "JPEG", id="jpeg-named-png"),
        pytest.param(png_bytes(seed=13), "picture.jpg", "png", "PNG", id="png-named-jpg"),
    ],
)
def test_stored_extension_follows_the_detected_format(data, client_name, extension, detected):
    [outcome] = services.upload_images([upload(data, client_name)])
    sha256 = digests(data)[1]
    assert outcome.image.format == detected
    assert outcome.image.original.name == original_name(sha256, extension)
    assert outcome.image.original.name.endswith(f"/{sha256}.{extension}")
    assert outcome.image.original_name == client_name
    assert stored_files() == [outcome.image.original.name]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_a_valid_png_is_accepted(mode):
    data = png_bytes((30, 20), mode=mode, seed=14)
    [checked] = services.check_files([upload(data, "p.png")])
    assert (checked.info.format, checked.info.width, checked.info.height) == ("PNG", 30, 20)


@pytest.mark.django_db
def test_same_bytes_by_the_same_owner_are_a_duplicate(alice):
    data = jpeg_bytes(seed=21)
    [first] = services.upload_images([upload(data, "a.jpg")], owner=alice)
    files = stored_files()
    written = (media_root() / first.image.original.name).stat().st_mtime_ns

    [again] = services.upload_images([upload(data, "renamed.jpg")], owner=alice)

    assert first.duplicate is False
    assert again.duplicate is True
    assert again.image.pk == first.image.pk
    assert again.image.original_name == "a.jpg"
    assert UploadedImage.objects.count() == 1
    assert stored_files() == files
    assert (media_root() / first.image.original.name).stat().st_mtime_ns == written


@pytest.mark.django_db
def test_another_owner_gets_a_row_but_shares_the_stored_original(alice, bob):
    data = jpeg_bytes(seed=22)
    [mine] = services.upload_images([upload(data)], owner=alice)
    written = (media_root() / mine.image.original.name).stat().st_mtime_ns

    [theirs] = services.upload_images([upload(data)], owner=bob)

    assert theirs.duplicate is False
    assert theirs.image.pk != mine.image.pk
    assert theirs.image.owner == bob
    assert theirs.image.scope == f"user:{bob.pk}"
    assert theirs.image.original.name == mine.image.original.name
    assert UploadedImage.objects.count() == 2
    assert stored_files() == [mine.image.original.name]
    assert (media_root() / mine.image.original.name).stat().st_mtime_ns == written


@pytest.mark.django_db
@override_settings(IMAGE_SYNC={"DEDUP_SCOPE": "global"})
def test_global_scope_shares_one_row_between_owners(alice, bob):
    data = jpeg_bytes(seed=23)
    [mine] = services.upload_images([upload(data)], owner=alice)
    [theirs] = services.upload_images([upload(data)], owner=bob)
    [anonymous] = services.upload_images([upload(data)], owner=None)

    assert mine.duplicate is False
    assert mine.image.scope == "global"
    assert theirs.duplicate is True
    assert anonymous.duplicate is True
    assert theirs.image.pk == anonymous.image.pk == mine.image.pk
    assert UploadedImage.objects.count() == 1
    assert len(stored_files()) == 1


@pytest.mark.django_db
def test_anonymous_uploads_have_their_own_scope(alice):
    data = jpeg_bytes(seed=24)
    [mine] = services.upload_images([upload(data)], owner=alice)
    [anonymous] = services.upload_images([upload(data)], owner=None)
    [again] = services.upload_images([upload(data)], owner=AnonymousUser())

    assert anonymous.duplicate is False
    assert anonymous.image.pk != mine.image.pk
    assert anonymous.image.owner is None
    assert anonymous.image.scope == "anonymous"
    assert again.duplicate is True
    assert again.image.pk == anonymous.image.pk
    assert UploadedImage.objects.count() == 2
    assert len(stored_files()) == 1


@pytest.mark.django_db
def test_identical_files_in_one_submission(alice):
    data = jpeg_bytes(seed=25)
    first, second = services.upload_images([upload(data, "1.jpg"), upload(data, "2.jpg")], alice)

    assert first.duplicate is False
    assert second.duplicate is True
    assert second.image.pk == first.image.pk
    assert UploadedImage.objects.count() == 1
    assert len(stored_files()) == 1


@pytest.mark.django_db
def test_md5_match_is_confirmed_by_sha256(alice):
    data = jpeg_bytes(seed=26)
    md5, sha256 = digests(data)
    # Another content with the same MD5 (a collision) already stored in this scope.
    impostor = UploadedImage.objects.create(
        original="image_sync/originals/00/00/impostor.jpg",
        original_name="impostor.jpg",
        md5=md5,
        sha256="0" * 64,
        scope=f"user:{alice.pk}",
        width=1,
        height=1,
        format="JPEG",
        size=1,
        owner=alice,
    )

    [outcome] = services.upload_images([upload(data, "real.jpg")], owner=alice)

    assert outcome.duplicate is False
    assert outcome.image.pk != impostor.pk
    assert outcome.image.sha256 == sha256
    assert outcome.image.original.name == original_name(sha256, "jpg")
    assert (media_root() / outcome.image.original.name).read_bytes() == data
    assert UploadedImage.objects.filter(md5=md5).count() == 2
    assert services.find_duplicate(f"user:{alice.pk}", md5, sha256).pk == outcome.image.pk
    assert services.find_duplicate(f"user:{alice.pk}", md5, "0" * 64).pk == impostor.pk


# -- concurrency ----------------------------------------------------------------


@pytest.fixture
def concurrent_writers(monkeypatch):
    """Let SQLite take concurrent writers the way a deployment must configure it.

    With SQLite's default deferred transactions, two transactions that read and
    then write fail at once with "database is locked" instead of waiting;
    Django's documented remedy (and example_project's setting) is
    ``transaction_mode: IMMEDIATE``. It applies to connections opened from now
    on, such as the threads' own. Other databases are left as they are.
    """
    if connection.vendor == "sqlite":
        options = connection.settings_dict.setdefault("OPTIONS", {})
        if not options.get("transaction_mode"):
            monkeypatch.setitem(options, "transaction_mode", "IMMEDIATE")


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_uploads_end_as_one_row(alice, bob, concurrent_writers):
    threads_count = 8
    data = jpeg_bytes((200, 150), seed=31)
    # The original is already stored for Bob, so the threads only race for the
    # row: the write race on the file is test_concurrent_write_of_one_original.
    [bobs] = services.upload_images([upload(data, "bob.jpg")], owner=bob)
    path = media_root() / bobs.image.original.name
    written = path.stat()
    # SQLite serialises writers at BEGIN IMMEDIATE; elsewhere every thread first
    # gets past find_duplicate (nothing found), then all insert at once, so the
    # unique constraint has to turn all but one away.
    serialised = connection.vendor == "sqlite"
    start = threading.Barrier(threads_count)
    all_checked = threading.Barrier(threads_count)
    results: list[tuple[int, bool] | None] = [None] * threads_count
    errors: list[BaseException] = []
    inserts: list[str] = []

    def before_insert(sender, instance, **kwargs):
        if instance.owner_id != alice.pk:
            return
        inserts.append(instance.original_name)
        if not serialised:
            all_checked.wait(THREAD_WAIT)

    def run(index: int) -> None:
        try:
            checked = services.check_files([upload(data, f"racer{index}.jpg")])
            start.wait(THREAD_WAIT)
            [outcome] = services.store_files(checked, owner=alice)
            results[index] = (outcome.image.pk, outcome.duplicate)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    pre_save.connect(before_insert, sender=UploadedImage, weak=False, dispatch_uid="test-race")
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(THREAD_WAIT * 2)
    finally:
        pre_save.disconnect(sender=UploadedImage, dispatch_uid="test-race")

    assert errors == []
    assert None not in results
    image = UploadedImage.objects.get(owner=alice)
    assert {pk for pk, _ in results} == {image.pk}
    assert sorted(duplicate for _, duplicate in results) == [False] + [True] * (threads_count - 1)
    assert image.original_name in inserts
    if not serialised:
        # Every thread tried its INSERT: the database, not find_duplicate, decided.
        assert len(inserts) == threads_count
    assert UploadedImage.objects.count() == 2
    assert image.original.name == bobs.image.original.name
    assert stored_files() == [image.original.name]
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert path.read_bytes() == data


class HeldFile(io.BytesIO):
    """Upload content a test can hold still at one moment of storing it.

    ``hold_on`` is "read" (mid-way through the storage writing it) or "seek"
    (while the content-addressed file is absent, just before writing it).
    """

    def __init__(self, data: bytes, path: Path, hold_on: str) -> None:
        super().__init__(data)
        self.path = path
        self.hold_on = hold_on
        self.held = threading.Event()
        self.release = threading.Event()

    def _hold(self) -> None:
        if not self.held.is_set():
            self.held.set()
            self.release.wait(THREAD_WAIT)

    def read(self, size: int | None = -1) -> bytes:
        if self.hold_on == "read" and self.tell() > 0:
            self._hold()
        return super().read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.hold_on == "seek" and not self.path.exists():
            self._hold()
        return super().seek(offset, whence)


@pytest.mark.django_db(transaction=True)
def test_concurrent_write_of_one_original(alice):
    # The same photo sent twice at once (a double submit), large enough that
    # the storage writes it in several chunks.
    data = jpeg_bytes((1600, 1200), seed=32, quality=95)
    assert len(data) > 3 * 64 * 1024
    [info] = [c.info for c in services.check_files([upload(data)])]
    path = media_root() / original_name(digests(data)[1], "jpg")
    first = HeldFile(data, path, hold_on="read")
    second = HeldFile(data, path, hold_on="seek")
    outcomes: dict[str, object] = {}
    finished = {"first": threading.Event(), "second": threading.Event()}

    def run(label: str, fileobj: HeldFile) -> None:
        try:
            checked = services.CheckedFile(file=fileobj, name=f"{label}.jpg", info=info)
            [outcomes[label]] = services.store_files([checked], owner=alice)
        except BaseException as exc:
            outcomes[label] = exc
        finally:
            finished[label].set()
            fileobj.held.set()  # never held: let the test go on
            connection.close()

    writer = threading.Thread(target=run, args=("first", first))
    writer.start()
    # The first upload has written part of the original and waits for more bytes.
    first.held.wait(THREAD_WAIT)
    other = threading.Thread(target=run, args=("second", second))
    other.start()
    # The second upload found that partial file (and, as it is, removed it).
    second.held.wait(THREAD_WAIT)
    first.release.set()
    writer.join(THREAD_WAIT)
    second.release.set()
    other.join(THREAD_WAIT)

    errors = {k: v for k, v in outcomes.items() if isinstance(v, BaseException)}
    assert errors == {}
    image = UploadedImage.objects.get()
    assert {outcomes["first"].image.pk, outcomes["second"].image.pk} == {image.pk}
    assert sorted([outcomes["first"].duplicate, outcomes["second"].duplicate]) == [False, True]
    assert path.read_bytes() == data


# -- rollback --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("error", [IntegrityError, DatabaseError])
def test_failed_insert_removes_the_original_it_wrote(alice, failing_insert, error):
    failing_insert["boom.jpg"] = error
    with pytest.raises(error, match="forced failure"):
        services.upload_images([upload(jpeg_bytes(seed=41), "boom.jpg")], owner=alice)

    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
def test_failed_insert_undoes_the_whole_submission(alice, failing_insert):
    failing_insert["second.jpg"] = DatabaseError
    files = [upload(jpeg_bytes(seed=42), "first.jpg"), upload(jpeg_bytes(seed=43), "second.jpg")]
    with pytest.raises(DatabaseError):
        services.upload_images(files, owner=alice)

    assert UploadedImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.django_db
def test_failed_insert_keeps_an_original_another_row_uses(alice, bob, failing_insert):
    data = jpeg_bytes(seed=44)
    [kept] = services.upload_images([upload(data, "kept.jpg")], owner=alice)
    failing_insert["boom.jpg"] = DatabaseError

    with pytest.raises(DatabaseError):
        services.upload_images([upload(data, "boom.jpg")], owner=bob)

    assert list(UploadedImage.objects.values_list("pk", flat=True)) == [kept.image.pk]
    assert stored_files() == [kept.image.original.name]
    assert (media_root() / kept.image.original.name).read_bytes() == data


@pytest.mark.django_db(transaction=True)
def test_failed_insert_keeps_an_original_a_concurrent_upload_relies_on(alice, bob):
    data = jpeg_bytes(seed=45)
    alice_inserting = threading.Event()
    bob_inserting = threading.Event()
    alice_finished = threading.Event()
    outcomes: dict[str, object] = {}

    def choreography(sender, instance, **kwargs):
        if instance.original_name == "alice.jpg":
            # Alice wrote the original; let Bob find it there, then fail.
            alice_inserting.set()
            bob_inserting.wait(THREAD_WAIT)
            raise DatabaseError("forced failure saving alice.jpg")
        if instance.original_name == "bob.jpg":
            # Bob found the original already stored; insert once Alice gave up.
            bob_inserting.set()
            alice_finished.wait(THREAD_WAIT)

    def run(who: str, owner) -> None:
        try:
            [outcome] = services.upload_images([upload(data, f"{who}.jpg")], owner=owner)
            outcomes[who] = outcome
        except BaseException as exc:
            outcomes[who] = exc
        finally:
            if who == "alice":
                alice_finished.set()
            connection.close()

    pre_save.connect(choreography, sender=UploadedImage, weak=False, dispatch_uid="test-race")
    try:
        alice_thread = threading.Thread(target=run, args=("alice", alice))
        alice_thread.start()
        assert alice_inserting.wait(THREAD_WAIT)
        bob_thread = threading.Thread(target=run, args=("bob", bob))
        bob_thread.start()
        alice_thread.join(THREAD_WAIT)
        bob_thread.join(THREAD_WAIT)
    finally:
        pre_save.disconnect(sender=UploadedImage, dispatch_uid="test-race")

    assert isinstance(outcomes["alice"], DatabaseError)
    image = UploadedImage.objects.get()
    assert image.owner == bob
    assert outcomes["bob"].image.pk == image.pk
    assert is_stored(image.original.name)
    assert read_stored(image.original.name) == data


@pytest.mark.django_db(transaction=True)
def test_deleting_a_row_keeps_an_original_a_concurrent_upload_relies_on(alice, bob):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite: the open upload transaction blocks the deletion's commit")
    data = jpeg_bytes(seed=46)
    [mine] = services.upload_images([upload(data, "alice.jpg")], owner=alice)
    bob_inserting = threading.Event()
    alice_deleted = threading.Event()
    outcomes: dict[str, object] = {}

    def choreography(sender, instance, **kwargs):
        if instance.original_name == "bob.jpg":
            # Bob found Alice's original already stored and wrote nothing.
            bob_inserting.set()
            alice_deleted.wait(THREAD_WAIT)

    def run() -> None:
        try:
            [outcomes["bob"]] = services.upload_images([upload(data, "bob.jpg")], owner=bob)
        except BaseException as exc:
            outcomes["bob"] = exc
        finally:
            bob_inserting.set()
            connection.close()

    pre_save.connect(choreography, sender=UploadedImage, weak=False, dispatch_uid="test-race")
    try:
        thread = threading.Thread(target=run)
        thread.start()
        bob_inserting.wait(THREAD_WAIT)
        UploadedImage.objects.get(pk=mine.image.pk).delete()  # autocommit: files go now
        alice_deleted.set()
        thread.join(THREAD_WAIT)
    finally:
        pre_save.disconnect(sender=UploadedImage, dispatch_uid="test-race")

    image = UploadedImage.objects.get()
    assert image.owner == bob
    assert outcomes["bob"].image.pk == image.pk
    assert is_stored(image.original.name)
    assert read_stored(image.original.name) == data


# -- signals and dispatch ------------------------------------------------------------


class CallerChangedItsMind(Exception):
    pass


def upload_then_roll_back(files, owner) -> None:
    """Upload inside the caller's transaction, which then rolls back."""
    with transaction.atomic():
        services.upload_images(files, owner=owner)
        raise CallerChangedItsMind


@pytest.mark.django_db(transaction=True)
def test_image_uploaded_is_sent_once_per_file_after_commit(alice, uploaded_signals):
    data = jpeg_bytes(seed=51)
    with transaction.atomic():
        first, second = services.upload_images([upload(data), upload(data)], owner=alice)
        assert uploaded_signals == []
    assert uploaded_signals == [(first.image.pk, False), (first.image.pk, True)]
    assert second.image.pk == first.image.pk

    # Autocommit: the signal follows at once.
    [third] = services.upload_images([upload(data)], owner=alice)
    assert uploaded_signals[2:] == [(first.image.pk, True)]
    assert third.duplicate is True


@pytest.mark.django_db(transaction=True)
def test_image_uploaded_is_not_sent_for_a_refused_or_rolled_back_upload(alice, uploaded_signals):
    with pytest.raises(services.UploadRejected):
        services.upload_images([upload(jpeg_bytes(seed=52)), upload(b"nope", "bad.jpg")], alice)

    with pytest.raises(CallerChangedItsMind):
        upload_then_roll_back([upload(jpeg_bytes(seed=53))], owner=alice)

    assert uploaded_signals == []
    assert UploadedImage.objects.count() == 0


def our_worker_is_running() -> bool:
    """Whether this run's Celery worker (tests/conftest.py) consumes the queue."""
    from tests.celery_app import app

    replies = app.control.ping(timeout=0.5)
    prefix = f"image-sync-test-{settings.RUN_ID}@"
    return any(name.startswith(prefix) for reply in replies for name in reply)


def observe_dispatch(broker: redis.Redis, owner, seed: int) -> tuple[int, dict, bool]:
    """Upload, upload again, upload and roll back, reading the queue at each step.

    Returns the new image's pk, the readings, and whether Redis was left alone
    meanwhile (another test session's ``clear_cache`` flushes the whole database).
    """
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    sentinel = f"{queue}.undisturbed"
    broker.delete(*QUEUE_KEYS)
    broker.set(sentinel, "1")
    seen: dict[str, object] = {}
    with transaction.atomic():
        [outcome] = services.upload_images([upload(jpeg_bytes(seed=seed))], owner=owner)
        seen["before commit"] = broker.llen(queue)
    seen["after commit"] = broker.llen(queue)
    seen["message"] = broker.lindex(queue, 0)  # LPUSH: the newest is first

    # A duplicate creates no row and queues nothing.
    with transaction.atomic():
        [again] = services.upload_images([upload(jpeg_bytes(seed=seed))], owner=owner)
    seen["duplicate"] = again.duplicate
    seen["after duplicate"] = broker.llen(queue)

    # A rolled-back upload queues nothing.
    with pytest.raises(CallerChangedItsMind):
        upload_then_roll_back([upload(jpeg_bytes(seed=seed + 1))], owner=owner)
    seen["after rollback"] = broker.llen(queue)
    return outcome.image.pk, seen, broker.delete(sentinel) == 1


@pytest.fixture
def no_worker(request):
    """No worker consumes the queue: this run's, if an earlier test started it, is paused."""
    if not our_worker_is_running():
        yield
        purge_queue()
        return
    worker = request.getfixturevalue("celery_worker")
    worker.stop()
    yield
    purge_queue()  # before the worker could run what the test queued
    worker.start()


@pytest.mark.django_db(transaction=True)
def test_task_is_queued_only_after_commit(alice, broker, no_worker):
    for seed in (61, 63, 65):
        pk, seen, undisturbed = observe_dispatch(broker, alice, seed)
        if undisturbed:
            break
    else:
        pytest.fail("Redis was flushed by another process during every attempt")

    assert seen["before commit"] == 0
    assert seen["after commit"] == 1
    message = json.loads(seen["message"])
    assert message["headers"]["task"] == "django_image_sync.resize_image"
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert args == [pk]
    # The budgets the upload checked the file against go with it (the worker
    # does not check the file's cost again when its own are the same).
    assert kwargs == {"budgets": conf.budgets_key(conf.resize_spec())}
    assert seen["duplicate"] is True
    assert seen["after duplicate"] == 1
    assert seen["after rollback"] == 1
    assert UploadedImage.objects.filter(pk=pk, status=Status.PENDING).exists()
    assert not UploadedImage.objects.filter(sha256=digests(jpeg_bytes(seed=seed + 1))[1]).exists()


# -- visibility ----------------------------------------------------------------------


@pytest.mark.django_db
def test_visible_images_by_scope(alice, bob):
    [mine] = services.upload_images([upload(jpeg_bytes(seed=71))], owner=alice)
    [theirs] = services.upload_images([upload(jpeg_bytes(seed=72))], owner=bob)
    [nobodys] = services.upload_images([upload(jpeg_bytes(seed=73))], owner=None)

    def visible(user) -> set[int]:
        return set(services.visible_images(user).values_list("pk", flat=True))

    assert visible(alice) == {mine.image.pk}
    assert visible(bob) == {theirs.image.pk}
    assert visible(None) == {nobodys.image.pk}
    assert visible(AnonymousUser()) == {nobodys.image.pk}
    with override_settings(IMAGE_SYNC={"DEDUP_SCOPE": "global"}):
        everything = {mine.image.pk, theirs.image.pk, nobodys.image.pk}
        assert visible(alice) == everything
        assert visible(None) == everything


# -- duplicates skip the decode -------------------------------------------------


@pytest.mark.django_db
def test_duplicate_in_scope_is_answered_without_decoding(alice, bob, monkeypatch):
    from django_image_sync import processing

    decoded: list[str] = []
    real_inspect = processing.inspect_image

    def counting_inspect(fileobj, **kwargs):  # type: ignore[no-untyped-def]
        decoded.append(getattr(fileobj, "name", ""))
        return real_inspect(fileobj, **kwargs)

    monkeypatch.setattr(processing, "inspect_image", counting_inspect)
    data = jpeg_bytes((400, 300), seed=77)

    [first] = services.upload_images([upload(data, "first.jpg")], owner=alice)
    [again] = services.upload_images([upload(data, "again.jpg")], owner=alice)
    [other] = services.upload_images([upload(data, "other.jpg")], owner=bob)

    # Only content new to the scope is decoded; the duplicate is found by its hash.
    assert decoded == ["first.jpg", "other.jpg"]
    assert again.duplicate
    assert again.image.pk == first.image.pk
    assert not other.duplicate
    assert other.image.pk != first.image.pk


@pytest.mark.django_db
def test_duplicate_still_obeys_the_byte_size_limit(alice, settings):
    data = jpeg_bytes((400, 300), seed=78)
    services.upload_images([upload(data, "first.jpg")], owner=alice)
    settings.IMAGE_SYNC = {"MAX_FILE_SIZE": len(data) - 1}

    with pytest.raises(services.UploadRejected) as rejected:
        services.upload_images([upload(data, "again.jpg")], owner=alice)

    assert [(e.file, e.code) for e in rejected.value.errors] == [("again.jpg", "max_file_size")]
