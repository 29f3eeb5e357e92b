"""Signal receivers of the app itself, connected in ``ImageSyncConfig.ready``."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from . import files, queue
from .models import Status, UploadedImage


def dispatch_new_image(
    sender: type[UploadedImage], instance: UploadedImage, created: bool, **kwargs: Any
) -> None:
    """Queue the resize of a new row once its transaction commits.

    After commit, because a worker that picks the task up earlier would not
    find the row; a rolled-back upload queues nothing. A row made by the
    upload service carries the budgets its file was checked against, which
    go with the task.
    """
    if created and instance.status == Status.PENDING and not kwargs.get("raw"):
        budgets = getattr(instance, "_image_sync_budgets", "")
        transaction.on_commit(
            partial(queue.enqueue_resize, instance.pk, budgets=budgets), robust=True
        )


def delete_files(sender: type[UploadedImage], instance: UploadedImage, **kwargs: Any) -> None:
    """Remove a deleted row's files once the deletion commits, unless still shared."""
    names = instance.stored_names()
    transaction.on_commit(partial(files.delete_unreferenced, names), robust=True)
