"""The "auto" backend (``IMAGE_SYNC["BACKEND"] = "auto"``): each file to whichever of
the two backends resizes it faster.

Pillow decodes a JPEG at 1/2, 3/8, 1/4 or 1/8 of its size (libjpeg's scaled
inverse DCT; libvips' shrink-on-load has no 3/8), so on photos that are at
least twice the output's size it is the faster of the two: 10-25 % on camera
photos of 5 to 24 MP. Where no reduced decode covers the output (a 2560x1600
or a 1600x1200 photo into 1920x1080), the whole picture is resampled, which
libvips does with SIMD code in half the time of Pillow's; a PNG is always
decoded whole. So: a JPEG that decodes reduced goes to Pillow, every other
file to libvips (``docs/performance.md``, "The auto backend").

The two backends make the same size, orientation, colours and metadata, not
the same bytes; the spec key names "auto", so its files are its own. Needs
pyvips, as the libvips backend does (``pip install django-image-sync[vips]``).
"""

from __future__ import annotations

from types import ModuleType
from typing import IO

from ..rules import decodes_reduced, header_orientation, open_image, stored_target
from ..types import Rendered, RenditionPlan, ResizeResult, ResizeSpec
from . import pillow, vips


def backend_for(fileobj: IO[bytes], box: tuple[int, int]) -> ModuleType:
    """The backend module that resizes this file into ``box`` faster.

    Reads the header only (format, size, EXIF orientation), as both backends
    do before decoding; leaves the file at its start."""
    fileobj.seek(0)
    try:
        with open_image(fileobj, None) as source:
            if source.format in ("JPEG", "MPO"):
                target = stored_target(source.size, header_orientation(source), box)
                if decodes_reduced(source.size, target):
                    return pillow
    finally:
        fileobj.seek(0)
    return vips


def render(fileobj: IO[bytes], plan: RenditionPlan, skip: frozenset[str] = frozenset()) -> Rendered:
    """Every output of ``plan`` from one decode, by the backend :func:`backend_for` picks."""
    renderer = backend_for(fileobj, plan.main.box).render
    rendered: Rendered = renderer(fileobj, plan, skip)
    return rendered


def resize_image(fileobj: IO[bytes], spec: ResizeSpec) -> ResizeResult:
    """The main output alone, by the backend :func:`backend_for` picks."""
    result: ResizeResult = backend_for(fileobj, spec.box).resize_image(fileobj, spec)
    return result


__all__ = ["backend_for", "render", "resize_image"]
