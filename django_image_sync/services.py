"""The names earlier versions kept here, for sites' own code: ``upload_images`` and
``UploadRejected`` above all. New code imports them from where they live now:
``uploads`` (the upload path), ``worker`` (the worker path), ``files``, ``results``
and ``queue``.
"""

from __future__ import annotations

from .conf import resize_spec as current_spec
from .files import INCOMING_PREFIX, TransientError, delete_unreferenced
from .queue import DEFAULT_SWEEP_AGE, reprocess, sweep
from .results import result_cache_key
from .uploads import (
    CheckedFile,
    FileError,
    UploadOutcome,
    UploadRejected,
    check_files,
    display_name,
    find_duplicate,
    store_files,
    upload_images,
    visible_images,
)
from .worker import claim, fail_image, process_image

__all__ = [
    "DEFAULT_SWEEP_AGE",
    "INCOMING_PREFIX",
    "CheckedFile",
    "FileError",
    "TransientError",
    "UploadOutcome",
    "UploadRejected",
    "check_files",
    "claim",
    "current_spec",
    "delete_unreferenced",
    "display_name",
    "fail_image",
    "find_duplicate",
    "process_image",
    "reprocess",
    "result_cache_key",
    "store_files",
    "sweep",
    "upload_images",
    "visible_images",
]
