"""What resizing a file will cost a worker, estimated from its header and structure.

Plain arithmetic, no decoding and no Django: validation calls it at upload
time, and the worker calls it again before it decodes. Each figure below was
measured (peak resident memory a worker process adds while resizing, read
from ``/proc/self/status``; ``docs/reliability.md`` has the table), and each
estimate is meant to be at or above what was measured, never below.

Pillow decodes a PNG whole, at full size, in the mode it stores that PNG in,
and its resize step may hold one or two more full-size copies (a premultiplied
copy for alpha, a converted copy for 16-bit grey or palette images). It
decodes a JPEG at a reduced size (see ``processing``), but libjpeg keeps the
whole image's DCT coefficients (2 bytes per sample) for a progressive or
multi-scan JPEG. libvips streams a non-interlaced PNG a few thousand rows at
a time, decodes an interlaced one whole, and holds the same JPEG coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MiB = 1024 * 1024

# Encoder buffers, the output image, zlib and libjpeg state: measured 2-38 MB
# beyond the pixel buffers on 50 MP files; this covers the largest seen.
WORKING_OVERHEAD = 32 * MiB

# See pillow_memory().
PILLOW_SLACK = 0.5

# libvips' sequential PNG reader keeps about this many full-width rows while
# it shrinks (measured 1,500-2,300 on 2,000-25,000 px wide RGBA files).
VIPS_PNG_ROWS = 2560

# Bytes per pixel Pillow stores each mode in ("RGB" is padded to 4).
_PILLOW_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}

# Modes the Pillow backend brings to 8-bit grey ("L") without an alpha channel.
_GREY_MODES = frozenset({"1", "L", "I;16", "I;16B", "I;16L", "I", "F"})

# Extra full-size bytes per pixel the Pillow backend's mode conversion holds at
# its peak (``processing.to_workable_mode``): 16-bit grey goes through 32-bit
# integers twice before becoming 8-bit grey.
_PILLOW_CONVERSION_BYTES = {
    "I;16": 9,
    "I;16B": 9,
    "I;16L": 9,
    "I": 5,
    "F": 1,
    "1": 1,
    "P": 4,
    "PA": 4,
    "CMYK": 4,
    "L": 0,
    "LA": 0,
    "RGB": 0,
    "RGBA": 0,
}


@dataclass(frozen=True)
class SourceLayout:
    """What the header and the structure walk tell about a file's decode.

    ``size`` is the stored size (before EXIF orientation). ``mode`` is the
    mode Pillow opens the file in. ``channels`` and ``sample_bytes`` are the
    PNG's own samples (palette expanded), which libvips decodes to.
    """

    format: str
    size: tuple[int, int]
    mode: str
    transparency: bool = False
    oriented: bool = False  # an EXIF orientation other than 1 may have to be applied
    channels: int = 3
    sample_bytes: int = 1
    interlaced: bool = False
    # JPEG only: bytes of the whole-image coefficient buffer libjpeg keeps for
    # a progressive or multi-scan file (0 for a single-scan baseline JPEG).
    coefficient_bytes: int = 0
    # JPEG only: the size the Pillow backend decodes at (reduced decode).
    decoded_size: tuple[int, int] | None = None

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]


def coefficient_bytes(size: tuple[int, int], sampling: tuple[tuple[int, int], ...]) -> int:
    """Bytes of libjpeg's coefficient buffer: 64 two-byte coefficients per 8x8 block
    of every component, each component at its own sampling."""
    width, height = size
    max_h = max(h for h, _ in sampling)
    max_v = max(v for _, v in sampling)
    total = 0
    for h, v in sampling:
        component_w = math.ceil(width * h / max_h)
        component_h = math.ceil(height * v / max_v)
        total += math.ceil(component_w / 8) * math.ceil(component_h / 8) * 128
    return total


def _has_alpha(layout: SourceLayout) -> bool:
    return layout.mode in ("LA", "RGBA", "PA", "La", "RGBa") or layout.transparency


def pillow_memory(layout: SourceLayout) -> int:
    """Peak bytes the Pillow backend adds while resizing this file.

    The output is small next to the full-size copies, so its size does not
    count beyond :data:`WORKING_OVERHEAD`; the reduced JPEG decode's size
    does (``layout.decoded_size``).
    """
    mode = layout.mode
    source = _PILLOW_MODE_BYTES.get(mode, 4)
    if layout.format == "JPEG":
        width, height = layout.decoded_size or layout.size
        pixels = width * height
        # The decoded image, a converted copy (CMYK), and at most half as much
        # again while it is resampled: one full-size plane and the first
        # pass's rows (YCbCr), or the reduce() step's intermediate. The picture
        # is turned upright at the output's size, which WORKING_OVERHEAD covers.
        per_pixel = source * (1 + (mode == "CMYK") + 0.5)
        return int(layout.coefficient_bytes + pixels * per_pixel + WORKING_OVERHEAD)
    conversion = _PILLOW_CONVERSION_BYTES.get(mode, 4)
    if mode in ("L", "RGB") and layout.transparency:
        conversion = 4  # a tRNS colour becomes an alpha channel
    elif layout.transparency and mode in ("1", "I", "I;16", "I;16B", "I;16L"):
        # A grey tRNS key at 1 or 16 bits: an alpha mask made beside the grey
        # copy (to_workable_mode), from 32-bit integers for 16-bit samples.
        conversion += 13 if mode != "1" else 6
    alpha = _has_alpha(layout)
    # What resize() works on: 8-bit grey (1 B/px) or RGB(A)/LA (4 B/px).
    workable = 4 if alpha or mode not in _GREY_MODES else 1
    per_pixel = (
        source
        + conversion
        + (4 if alpha else 0)  # resize premultiplies alpha in a copy
        + workable / 4  # reduce() intermediate
        # The resampler's first pass and allocator slack: measured up to 0.5
        # bytes a pixel beyond the copies above (8-bit RGB).
        + PILLOW_SLACK
    )
    return int(layout.pixels * per_pixel + WORKING_OVERHEAD)


def vips_memory(layout: SourceLayout, target: tuple[int, int]) -> int:
    """Peak bytes the libvips backend adds while resizing this file to ``target``."""
    # The thumbnail, a copy turned upright, and its flattened or encoded form.
    output = target[0] * target[1] * 4 * 3
    if layout.format == "JPEG":
        return layout.coefficient_bytes + output + WORKING_OVERHEAD
    bytes_per_pixel = layout.channels * layout.sample_bytes
    width, height = layout.size
    if layout.interlaced:
        # Decoded whole, plus about a quarter more while it is shrunk
        # (measured 5.1 bytes a pixel for 8-bit RGBA).
        return int(width * height * bytes_per_pixel * 1.25) + output + WORKING_OVERHEAD
    return width * min(height, VIPS_PNG_ROWS) * bytes_per_pixel + output + WORKING_OVERHEAD


# Peak bytes per pixel of the main output an encoder holds while it encodes
# (the levels of the output as they are made count apart). Measured on a 1920x1080
# photo, both backends: AVIF (libaom) about 17, WebP and JPEG within the noise.
ENCODER_BYTES_PER_PIXEL = {"AVIF": 20, "WEBP": 4, "JPEG": 2, "PNG": 2}
# Bytes an encoder's library adds once, whatever the size, the first time a worker
# process uses it (code and tables): a 24 MP photo measured 77 MB in a new libvips
# process against 56 MB in a Pillow one, both with AVIF and WebP (AVIF through
# Pillow on one thread on both; libvips' own heifsave varied from 62 to 93 MB).
ENCODER_FIXED_BYTES = {"AVIF": 32 * MiB}


def outputs_memory(target: tuple[int, int], formats: tuple[str, ...]) -> int:
    """Peak bytes while every output is encoded from a main output of ``target``.

    The decode's full-size buffers are freed by then: the peak of a render is
    the larger of this and the decode's (:func:`memory_needed`). Two levels of
    the output at 4 bytes a pixel, and the hungriest encoder: 63 MB measured
    for AVIF and WebP at 1920x1080 on the Pillow backend, 61 MB on libvips.
    """
    pixels = target[0] * target[1]
    encoder = max((ENCODER_BYTES_PER_PIXEL.get(f, 4) for f in formats), default=0)
    fixed = max((ENCODER_FIXED_BYTES.get(f, 0) for f in formats), default=0)
    return int(pixels * (8 + encoder) + WORKING_OVERHEAD + fixed)


def memory_needed(
    layout: SourceLayout, target: tuple[int, int], backend: str, formats: tuple[str, ...] = ()
) -> int:
    """Peak bytes ``backend`` ("pillow", "vips" or "auto") adds while resizing to
    ``target`` and encoding ``formats`` (the extra formats of the renditions)."""
    if backend == "auto":
        decode = auto_memory(layout, target)
    elif backend == "vips":
        decode = vips_memory(layout, target)
    else:
        decode = pillow_memory(layout)
    return max(decode, outputs_memory(target, formats)) if formats else decode


# The Pillow modes of the JPEGs the auto backend decodes with Pillow and hands to
# libvips (``backends/auto.py``); other JPEGs (CMYK) go to the libvips backend.
AUTO_HANDED_OVER_MODES = ("RGB", "L")


def auto_memory(layout: SourceLayout, target: tuple[int, int]) -> int:
    """Peak bytes the auto backend adds while resizing this file to ``target``.

    A colour or grey JPEG that Pillow decodes reduced (``decoded_size`` smaller
    than ``size``, ``rules.decodes_reduced``): libjpeg's coefficients, Pillow's
    decoded image (RGB at 4 bytes a pixel), the packed copy handed to libvips
    (3), and libvips' output as in :func:`vips_memory`. Any other file: what
    the libvips backend needs, since it goes there (``backends/auto.py``).
    """
    reduced = layout.decoded_size is not None and layout.decoded_size != layout.size
    if layout.format != "JPEG" or layout.mode not in AUTO_HANDED_OVER_MODES or not reduced:
        return vips_memory(layout, target)
    assert layout.decoded_size is not None
    width, height = layout.decoded_size
    per_pixel = 4 + 3 if layout.mode == "RGB" else 1 + 1
    return int(
        layout.coefficient_bytes
        + width * height * per_pixel
        + target[0] * target[1] * 4 * 3
        + WORKING_OVERHEAD
    )


def megabytes(amount: int) -> str:
    """Bytes as whole megabytes (1 MB = 1,048,576 bytes, as Django's filesizeformat)."""
    return f"{max(1, round(amount / MiB)):,} MB"


__all__ = [
    "ENCODER_BYTES_PER_PIXEL",
    "ENCODER_FIXED_BYTES",
    "VIPS_PNG_ROWS",
    "WORKING_OVERHEAD",
    "SourceLayout",
    "coefficient_bytes",
    "megabytes",
    "memory_needed",
    "outputs_memory",
    "pillow_memory",
    "vips_memory",
]
