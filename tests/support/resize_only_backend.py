"""A processing backend of a site's own with only ``resize_image`` (no ``render``):
the Pillow backend's main output under another name (``IMAGE_SYNC["BACKEND"] =
"tests.support.resize_only_backend"``)."""

from __future__ import annotations

from typing import IO

from django_image_sync.processing import ResizeResult, ResizeSpec, resizer_for


def resize_image(fileobj: IO[bytes], spec: ResizeSpec) -> ResizeResult:
    return resizer_for("pillow")(fileobj, spec)
