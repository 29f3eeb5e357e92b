"""OUTPUT_STORAGE: resized files in a storage of their own (say public, behind a
CDN) while originals stay in STORAGE (say private), with a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from django_image_sync.models import Status, UploadedImage
from django_image_sync.storage import file_url, image_storage, output_storage, storage_for
from tests.celery_app import app as celery_app
from tests.conftest import WorkerProcess, wait_for_status
from tests.images import jpeg_bytes, upload
from tests.support.clients import logged_in
from tests.support.media import stored_files

OUTPUTS = {"OUTPUT_STORAGE": "outputs"}


def outputs_root() -> Path:
    return Path(settings.STORAGES["outputs"]["OPTIONS"]["location"])


def stored_outputs() -> list[str]:
    root = outputs_root()
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def outputs_worker(settings: Any, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker with OUTPUT_STORAGE set, on a queue of its own: the resize task is
    routed there by ``task_routes`` (CELERY_TASK_ROUTES in a site's settings)."""
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, **OUTPUTS}
    queue = f"outputs-{settings.RUN_ID}"
    saved = celery_app.conf.task_routes
    # conf.update (not assignment): Celery builds its router again on an update.
    celery_app.conf.update(task_routes={"django_image_sync.resize_image": {"queue": queue}})
    worker = WorkerProcess(
        tmp_path / "outputs-worker.log",
        queue=queue,
        name=f"outputs-{settings.RUN_ID}",
        env={"IMAGE_SYNC_TEST_OVERRIDES": json.dumps(OUTPUTS)},
    ).start()
    try:
        yield worker
    finally:
        celery_app.conf.update(task_routes=saved)
        worker.stop()
        for path in sorted(outputs_root().rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()


def test_names_go_to_their_storage(settings: Any) -> None:
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, **OUTPUTS}
    assert storage_for("image_sync/originals/ab/cd/x.jpg") is image_storage
    assert storage_for("image_sync/resized/ab/cd/x-k.jpg") is output_storage
    assert storage_for("image_sync/resized/ab/cd/.incoming-u-x-k.jpg") is output_storage
    assert output_storage.backend is not image_storage.backend
    settings.IMAGE_SYNC = {}
    assert output_storage.backend is image_storage.backend  # None: STORAGE's


@pytest.mark.db_independent  # storage, broker and worker behaviour: once, not per database
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_outputs_are_written_served_and_deleted_in_their_own_storage(
    outputs_worker: WorkerProcess, alice: Any
) -> None:
    client = logged_in(alice)
    response = client.post("/api/images/", {"images": [upload(jpeg_bytes((1600, 1000), seed=71))]})
    assert response.status_code == 201, response.content
    pk = response.json()["images"][0]["id"]

    image = wait_for_status(pk, {Status.DONE, Status.FAILED}, 60)

    assert image.status == Status.DONE, image.error + outputs_worker.output()
    # The original stayed in STORAGE; every output went to OUTPUT_STORAGE only.
    assert stored_files() == [str(image.original.name)]
    assert stored_outputs() == sorted(image.output_names())
    # Pages and the API link the outputs under the outputs storage's URL.
    data = client.get(f"/api/images/{pk}/").json()
    assert data["resized_url"].startswith("/outputs/image_sync/resized/")
    assert len(data["renditions"]) == len(image.output_names())
    assert all(o["url"].startswith("/outputs/") for o in data["renditions"])
    assert data["original_url"].startswith("/media/image_sync/originals/")
    page = client.get(f"/images/{pk}/").content.decode()
    for name in image.output_names():
        assert file_url(name) == f"/outputs/{name}"
        assert file_url(name) in page
    assert "/media/image_sync/resized/" not in page

    # Deleting the image deletes from both storages.
    assert client.delete(f"/api/images/{pk}/").status_code == 204
    assert not UploadedImage.objects.filter(pk=pk).exists()
    assert stored_files() == []
    assert stored_outputs() == []
