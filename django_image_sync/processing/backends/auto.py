"""The "auto" backend (``IMAGE_SYNC["BACKEND"] = "auto"``): each library where it is
the faster one.

Pillow's JPEG decoder asks libjpeg-turbo for 1/2, 3/8, 1/4 or 1/8 of the
stored size; libvips' shrink-on-load has no 3/8, so for a 12 or 24 MP photo
into 1920x1080 it decodes a third more pixels. libvips resamples with
vectorised code, in a third to a half of the time of Pillow's. So a JPEG
whose reduced decode covers the output is decoded by Pillow, reduced, and
handed to libvips for the rest (resampled with lanczos3 to the output's size,
turned upright, every output encoded: the libvips backend's own steps); every
other file (a JPEG decoded whole, such as a 1600x1200 or a 2560x1600 photo
into 1920x1080, every PNG, a CMYK JPEG) goes to the libvips backend as it is.
``docs/performance.md`` ("The auto backend") has the figures.

The outputs have the size, orientation, colour mode, ICC rule and (lack of)
metadata of the other two backends, not their bytes; the spec key names
"auto", so its files are its own. Needs pyvips, as the libvips backend does
(``pip install django-image-sync[vips]``).
"""

from __future__ import annotations

from typing import IO, Any

import pyvips

from ..costs import AUTO_HANDED_OVER_MODES
from ..rules import decodes_reduced, header_orientation, open_image, stored_target
from ..types import Rendered, RenditionPlan, ResizeResult, ResizeSpec
from . import vips
from .pillow import _reduced_jpeg_decode

# libvips' bands and interpretation for each Pillow mode handed over (the modes
# the memory estimate counts on: costs.AUTO_HANDED_OVER_MODES).
_VIPS_FORMAT = {"RGB": (3, "srgb"), "L": (1, "b-w")}
assert set(_VIPS_FORMAT) == set(AUTO_HANDED_OVER_MODES)


def reduced_by_pillow(
    fileobj: IO[bytes], box: tuple[int, int]
) -> tuple[Any, str, bytes | None] | None:
    """Where Pillow decodes this file reduced: the upright pixels at the output's
    size as a libvips image, with the source's Pillow mode and ICC profile
    (what the libvips backend's render takes); else None, and nothing decoded.
    Leaves the file at its start."""
    fileobj.seek(0)
    try:
        with open_image(fileobj, None) as source:
            if source.format not in ("JPEG", "MPO") or source.mode not in AUTO_HANDED_OVER_MODES:
                return None
            orientation = header_orientation(source)
            target = stored_target(source.size, orientation, box)
            if not decodes_reduced(source.size, target):
                return None
            source_mode = source.mode
            icc_profile = source.info.get("icc_profile")
            _reduced_jpeg_decode(source, target)
            pixels = source.tobytes()  # decodes, at the reduced size
            width, height = source.size
    finally:
        fileobj.seek(0)
    bands, interpretation = _VIPS_FORMAT[source_mode]
    image = pyvips.Image.new_from_memory(pixels, width, height, bands, "uchar")
    image = image.copy(interpretation=interpretation)
    # Resized as stored, to exactly the size fit_within() chose, then turned.
    image = vips.upright(vips.resized(image, target, "lanczos3"), orientation)
    return image, source_mode, icc_profile


def render(fileobj: IO[bytes], plan: RenditionPlan, skip: frozenset[str] = frozenset()) -> Rendered:
    """Every output of ``plan`` from one decode: by Pillow, reduced, where it can,
    then by libvips; else by the libvips backend alone."""
    decoded = reduced_by_pillow(fileobj, plan.main.box)
    if decoded is None:
        return vips.render(fileobj, plan, skip)
    level, source_mode, icc_profile = decoded
    del decoded
    # Rebound, so the pipeline and the decoded bytes are freed once in memory.
    level = vips.kept(level, plan, skip)
    return vips.render_pixels(level, source_mode, icc_profile, plan, skip)


def resize_image(fileobj: IO[bytes], spec: ResizeSpec) -> ResizeResult:
    """The main output alone, as :func:`render` makes it."""
    main = render(fileobj, RenditionPlan(spec)).main
    assert main.data is not None  # nothing skipped
    return ResizeResult(
        data=main.data, width=main.planned.width, height=main.planned.height, format=spec.format
    )


__all__ = ["reduced_by_pillow", "render", "resize_image"]
