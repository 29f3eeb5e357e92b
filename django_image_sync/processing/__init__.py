"""The image pipeline: plain Python on bytes and file objects (Pillow, optionally libvips).

Nothing in this package imports Django, Celery or the rest of the app, so the
upload form, the Celery task, the benchmark and management commands all call
the same functions. The rest of the app uses the names below:

- ``types``: what validation learns and what a resize is asked for;
- ``hashing``: MD5 + SHA-256 in one pass;
- ``structure``: JPEG marker and PNG chunk walks;
- ``rules``: orientation, fitting, colour modes, the reduced JPEG decode size;
- ``costs``: what resizing a file will cost a worker;
- ``placeholder``: the tiny blurred preview's rule;
- ``rendering``: the order both backends make a plan's outputs in, and Pillow's encoder options;
- ``validation``: ``inspect_image`` and the byte-size check;
- ``backends``: the registry (``resizer_for``) and the Pillow and libvips backends.
"""

from __future__ import annotations

from .backends import BACKENDS, backend_name, renderer_for, resizer_for
from .hashing import HASH_CHUNK_SIZE, file_size, hash_file
from .rules import EXIF_ORIENTATION, fit_within, keeps_icc_profile, with_jpeg_decode_size
from .structure import check_jpeg_structure
from .types import (
    FORMAT_EXTENSIONS,
    FORMAT_MIME_TYPES,
    PIPELINE_VERSION,
    SPEC_KEY_LENGTH,
    Encoding,
    ImageInfo,
    ImageProblem,
    JpegLayout,
    Output,
    PlannedOutput,
    Rendered,
    RenditionPlan,
    ResizeResult,
    ResizeSpec,
)
from .validation import check_byte_size, check_cost, inspect_image, sniff_format, source_layout

#: The Pillow backend's resize, kept at this path for code written against
#: earlier versions (the worker picks the backend with :func:`resizer_for`).
resize_image = resizer_for("pillow")


__all__ = [
    "BACKENDS",
    "EXIF_ORIENTATION",
    "FORMAT_EXTENSIONS",
    "FORMAT_MIME_TYPES",
    "HASH_CHUNK_SIZE",
    "PIPELINE_VERSION",
    "SPEC_KEY_LENGTH",
    "Encoding",
    "ImageInfo",
    "ImageProblem",
    "JpegLayout",
    "Output",
    "PlannedOutput",
    "Rendered",
    "RenditionPlan",
    "ResizeResult",
    "ResizeSpec",
    "backend_name",
    "check_byte_size",
    "check_cost",
    "check_jpeg_structure",
    "file_size",
    "fit_within",
    "hash_file",
    "inspect_image",
    "keeps_icc_profile",
    "renderer_for",
    "resize_image",
    "resizer_for",
    "sniff_format",
    "source_layout",
    "with_jpeg_decode_size",
]
