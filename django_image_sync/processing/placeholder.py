"""The placeholder: a tiny blurred copy of an image, small enough to sit in the row.

Both backends make it from the smallest pixels they already have; this module
holds the rule they share: the size, the encoder settings to try, and the
1,000-byte bound on the ``data:`` URI.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from .rules import fit_within

#: The longest a placeholder's ``data:`` URI may be, in bytes.
MAX_BYTES = 1000
#: Gaussian blur radius (sigma) applied at the placeholder's own size.
BLUR_RADIUS = 1.0
#: (box side, WebP quality) tried in turn until the URI fits in MAX_BYTES: a
#: photo gives 250-450 bytes at the first step; only noise needs the later ones.
STEPS = ((32, 50), (24, 35), (16, 25), (8, 20))
MIME_TYPE = "image/webp"


def placeholder_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The placeholder's size for an image of ``size``: same aspect ratio, within ``side``."""
    return fit_within(size[0], size[1], (side, side))


def make_placeholder(size: tuple[int, int], encode: Callable[[tuple[int, int], int], bytes]) -> str:
    """A ``data:`` URI of at most :data:`MAX_BYTES`, or "" if none fits.

    ``encode(size, quality)`` returns the WebP bytes of the blurred image at
    that size; it is called once per step of :data:`STEPS` until one fits.
    """
    for side, quality in STEPS:
        data = encode(placeholder_size(size, side), quality)
        uri = f"data:{MIME_TYPE};base64,{base64.b64encode(data).decode('ascii')}"
        if len(uri) <= MAX_BYTES:
            return uri
    return ""
