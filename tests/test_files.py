"""``django_image_sync.files``: stored files written once, atomically on local storage,
and deleted only when no row refers to them (real database and file storage)."""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from django_image_sync import files
from django_image_sync.models import UploadedImage
from tests.support import rows as support_rows
from tests.support.media import media_root, stored_files

NAME = "image_sync/originals/ab/cd/abcd.jpg"


def test_a_file_is_written_once_and_in_one_piece():
    assert files.write_once(NAME, ContentFile(b"x" * 1000), 1000) is True
    assert (media_root() / NAME).read_bytes() == b"x" * 1000
    before = os.stat(media_root() / NAME).st_mtime_ns

    assert files.write_once(NAME, ContentFile(b"x" * 1000), 1000) is False
    assert os.stat(media_root() / NAME).st_mtime_ns == before
    # Written under a temporary name and renamed into place: nothing else is left.
    assert stored_files() == [NAME]


def test_the_remains_of_a_cut_off_write_are_replaced():
    (media_root() / NAME).parent.mkdir(parents=True)
    (media_root() / NAME).write_bytes(b"x" * 10)  # a write killed after 10 bytes
    assert files.write_once(NAME, io.BytesIO(b"y" * 1000), 1000) is True
    assert (media_root() / NAME).read_bytes() == b"y" * 1000


def test_leftovers_of_a_killed_write_of_one_name_are_removed():
    folder = media_root() / "image_sync/resized/ab/cd"
    folder.mkdir(parents=True)
    mine = folder / f"{files.INCOMING_PREFIX}0123abcd-abcd-k.jpg"
    other = folder / f"{files.INCOMING_PREFIX}0123abcd-other-k.jpg"
    mine.write_bytes(b"partial")
    other.write_bytes(b"partial")
    files.remove_incoming("image_sync/resized/ab/cd/abcd-k.jpg")
    assert not mine.exists()
    assert other.exists()


@pytest.mark.django_db(transaction=True)
def test_only_files_no_row_refers_to_are_deleted(alice, clear_cache):
    [row] = support_rows.make_rows(alice, 1, statuses=("done",), label="files")
    used = [str(row.original.name), str(row.resized.name)]
    unused = "image_sync/originals/ee/ff/eeff.jpg"
    for name in [*used, unused]:
        files.write_once(name, ContentFile(b"z"), 1)

    files.delete_unreferenced([*used, unused, ""])
    assert stored_files() == sorted(used)

    UploadedImage.objects.filter(pk=row.pk).delete()  # the receiver deletes after commit
    assert stored_files() == []


# -- URLs of stored files ---------------------------------------------------------------


class SignedStorage(FileSystemStorage):
    """URLs that differ per file beyond the name (as S3's signed URLs do)."""

    def url(self, name):  # type: ignore[no-untyped-def]
        return super().url(name) + f"?signature={len(name)}"


@pytest.mark.parametrize(
    "name",
    [
        "image_sync/resized/ab/cd/" + "ab" * 32 + "-0123456789ab.avif",
        "image_sync/originals/ab/cd/" + "cd" * 32 + ".jpg",
        "uploads with space/résumé #1.jpg",  # needs escaping: the storage's own url()
    ],
)
def test_file_url_is_the_storages_url(settings, name):
    from django_image_sync.storage import file_url, image_storage

    assert file_url(name) == image_storage.url(name)
    settings.MEDIA_URL = "https://cdn.example.com/m/"
    assert file_url(name) == image_storage.url(name)
    assert file_url(name).startswith("https://cdn.example.com/m/")


def test_file_url_leaves_signed_urls_to_the_storage(settings):
    from django_image_sync.storage import file_url

    settings.STORAGES = {
        **settings.STORAGES,
        "signed": {"BACKEND": "tests.test_files.SignedStorage"},
    }
    settings.IMAGE_SYNC = {"STORAGE": "signed"}
    for name in ("a/" + "ab" * 32 + "-k.jpg", "b/" + "cd" * 32 + "-kk.webp"):
        assert file_url(name).endswith(f"?signature={len(name)}")
