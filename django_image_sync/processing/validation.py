"""Validation of an upload by content: byte size, format, pixels x frames, structure, and
what its decode will cost a worker. No pixel is decoded."""

from __future__ import annotations

import mmap
import re
from collections.abc import Sequence
from typing import IO

from PIL import Image, UnidentifiedImageError

from . import costs
from .hashing import file_size, mapped_contents, read_all
from .rules import (
    TRANSPOSING_ORIENTATIONS,
    fit_within,
    header_orientation,
    open_image,
    with_jpeg_decode_size,
)
from .structure import check_jpeg_structure, png_exif_chunks
from .types import ImageInfo, ImageProblem, JpegLayout

# Only used to name a refused format in the error message: these bytes are never
# handed to a decoder other than the allowed ones.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
)


# Pillow's words for a decompression bomb: "Image size (N pixels) exceeds limit of ...".
_POSSIBLE_BOMB = re.compile(r"\((\d+) pixels\)")


def _pixel_limit(max_pixels: int) -> int:
    """The pixel limit that applies: ``max_pixels``, or Pillow's own if lower.

    Pillow would only warn between 1x and 2x its own limit; here that is an error.
    """
    if Image.MAX_IMAGE_PIXELS is not None:
        return min(max_pixels, int(Image.MAX_IMAGE_PIXELS))
    return max_pixels


def check_byte_size(fileobj: IO[bytes], max_bytes: int | None) -> int:
    """The file's size in bytes; :class:`ImageProblem` if empty or over ``max_bytes``."""
    size = file_size(fileobj)
    if size == 0:
        raise ImageProblem("empty", "the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise ImageProblem(
            "max_file_size",
            f"the file is {size} bytes; the limit is {max_bytes} bytes",
            size=size,
            limit=max_bytes,
        )
    return size


def sniff_format(head: bytes) -> str | None:
    """Name the format of a file from its first bytes, for error messages only."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    text = head.lstrip().lower()
    if text.startswith((b"<svg", b"<?xml")):
        return "SVG"
    if text.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    return None


def inspect_image(
    fileobj: IO[bytes],
    *,
    allowed_formats: Sequence[str],
    max_pixels: int,
    max_bytes: int | None = None,
    box: tuple[int, int] | None = None,
    backend: str = "pillow",
    max_decode_memory: int | None = None,
    max_jpeg_scans: int | None = None,
    formats: tuple[str, ...] = (),
) -> ImageInfo:
    """Check that ``fileobj`` is an acceptable image, cheaply, and describe it.

    The format is decided by decoding with Pillow restricted to
    ``allowed_formats``; byte size and pixel count (all frames together) are
    checked before any pixel is decoded. No pixel is decoded at all: a walk
    over the JPEG's segments and scans (:func:`check_jpeg_structure`) or over
    the PNG's chunks with their CRCs catches files that are cut off or whose
    structure is damaged. Pixel data damaged inside an intact structure is
    left to the worker, which marks the image failed with the decoder's message.

    What resizing the file would cost a worker is estimated from the same
    header and walk (:mod:`django_image_sync.costs`): the peak memory
    ``backend`` needs to resize it into ``box`` (the full image where ``box``
    is None) must stay within ``max_decode_memory`` bytes, and a JPEG may
    have at most ``max_jpeg_scans`` scans (each is a pass over the whole
    image). None means no limit. ``formats`` are the extra formats the worker
    encodes too (their encoders' memory counts once the decode is done).
    Raises :class:`ImageProblem` with a ``code`` naming the broken rule.
    """
    size = check_byte_size(fileobj, max_bytes)
    allowed = [f.upper() for f in allowed_formats]
    head = fileobj.read(64)
    fileobj.seek(0)
    try:
        im = open_image(fileobj, allowed)
    except UnidentifiedImageError:
        found = sniff_format(head)
        if found in allowed:
            # The signature of an allowed format, but Pillow cannot parse the header.
            raise ImageProblem(
                "corrupt",
                f"the {found} header is damaged or cut off",
                reason="header",
                format=found,
            ) from None
        detail = f"it looks like {found}" if found else "its content is not an image"
        raise ImageProblem(
            "format",
            f"{detail}; allowed formats are {', '.join(allowed)}",
            found=found,
            allowed=allowed,
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives as an exception where warnings are errors.
        # Pillow names the pixel count in its message only ("Image size (N pixels)").
        counted = _POSSIBLE_BOMB.search(str(exc))
        raise ImageProblem(
            "max_pixels",
            f"the image is too large: {exc}",
            pixels=int(counted.group(1)) if counted else None,
            limit=_pixel_limit(max_pixels),
            detail=str(exc),
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(
            "corrupt", f"the image cannot be read ({exc})", reason="damaged", detail=str(exc)
        ) from None

    with im:
        fmt = im.format or ""
        if fmt == "MPO":  # multi-picture JPEG from some cameras: decoded as JPEG
            fmt = "JPEG"
        if fmt not in allowed:
            raise ImageProblem(
                "format",
                f"{fmt} is not allowed; allowed: {', '.join(allowed)}",
                found=fmt,
                allowed=allowed,
            )
        width, height = im.size
        frames = getattr(im, "n_frames", 1) or 1
        pixels = width * height * frames
        limit = _pixel_limit(max_pixels)
        if width <= 0 or height <= 0:
            raise ImageProblem(
                "corrupt", "the image has no pixels", reason="no_image_data", format=fmt
            )
        if pixels > limit:
            described = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
            raise ImageProblem(
                "max_pixels",
                f"the image has {pixels} pixels ({described}); the limit is {limit}",
                pixels=pixels,
                limit=limit,
                width=width,
                height=height,
                frames=frames,
            )
        orientation = header_orientation(im)
        mode, transparency = im.mode, "transparency" in im.info
        jpeg: JpegLayout | None = None
        try:
            with mapped_contents(fileobj) as mapped:
                contents = mapped if mapped is not None else read_all(fileobj)
                if fmt == "JPEG":
                    jpeg = check_jpeg_structure(contents)
                else:
                    im.verify()
                layout = source_layout(
                    fmt, (width, height), mode, transparency, orientation, jpeg, contents
                )
        except ImageProblem:
            raise
        except Exception as exc:
            raise ImageProblem(
                "corrupt",
                f"the image data is damaged ({exc})",
                reason="damaged",
                format=fmt,
                detail=str(exc),
            ) from None
    turned = orientation in TRANSPOSING_ORIENTATIONS
    upright = (height, width) if turned else (width, height)
    target = fit_within(upright[0], upright[1], box) if box else upright
    if jpeg is not None:
        stored_target = (target[1], target[0]) if turned else target
        layout = with_jpeg_decode_size(layout, stored_target)
    memory = costs.memory_needed(layout, target, backend, formats)
    scans = jpeg.scans if jpeg is not None else 1
    check_cost(layout, memory, scans, max_decode_memory, max_jpeg_scans)
    fileobj.seek(0)
    return ImageInfo(
        format=fmt,
        width=upright[0],
        height=upright[1],
        frames=frames,
        size=size,
        decode_memory=memory,
        scans=scans,
    )


def source_layout(
    fmt: str,
    size: tuple[int, int],
    mode: str,
    transparency: bool,
    orientation: int,
    jpeg: JpegLayout | None,
    contents: bytes | memoryview | mmap.mmap,
) -> costs.SourceLayout:
    """Describe a file's decode for :mod:`django_image_sync.costs`, from its header."""
    if jpeg is not None:
        return costs.SourceLayout(
            format="JPEG",
            size=size,
            mode=mode,
            oriented=orientation != 1,
            channels=len(jpeg.sampling),
            coefficient_bytes=costs.coefficient_bytes(size, jpeg.sampling) if jpeg.buffered else 0,
        )
    # PNG: the header fields Pillow does not keep, read from IHDR itself.
    depth, colour_type, interlace = contents[24], contents[25], contents[28]
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour_type, 4)
    if transparency and colour_type in (0, 2, 3):
        channels += 1
    return costs.SourceLayout(
        format="PNG",
        size=size,
        mode=mode,
        transparency=transparency,
        # An eXIf chunk may stand after the image data, where only the decode
        # reads it; any eXIf chunk counts as a turn to make.
        oriented=orientation != 1 or any(png_exif_chunks(contents)),
        channels=channels,
        sample_bytes=2 if depth == 16 else 1,
        interlaced=bool(interlace),
    )


def check_cost(
    layout: costs.SourceLayout,
    memory: int,
    scans: int,
    max_decode_memory: int | None,
    max_jpeg_scans: int | None,
) -> None:
    """Refuse a file whose decode would cost more than the budgets allow."""
    if max_jpeg_scans is not None and scans > max_jpeg_scans:
        kind = "progressive JPEG" if layout.coefficient_bytes else "JPEG"
        raise ImageProblem(
            "max_jpeg_scans",
            f"the image is a {kind} with {scans:,} scans; at most {max_jpeg_scans:,} are accepted",
            scans=scans,
            limit=max_jpeg_scans,
            progressive=bool(layout.coefficient_bytes),
        )
    if max_decode_memory is not None and memory > max_decode_memory:
        width, height = layout.size
        raise ImageProblem(
            "max_decode_memory",
            f"the image needs about {costs.megabytes(memory)} of memory to resize "
            f"({width}x{height} {layout.format}); the limit is "
            f"{costs.megabytes(max_decode_memory)}",
            memory=memory,
            limit=max_decode_memory,
            width=width,
            height=height,
            format=layout.format,
        )
