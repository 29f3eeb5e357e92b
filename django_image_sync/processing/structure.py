"""Walks over a file's structure without decoding it: JPEG markers and scans, PNG chunks."""

from __future__ import annotations

import mmap
import re

from .types import ImageProblem, JpegLayout

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Inside a JPEG scan every 0xFF byte is followed by 0x00 (stuffing) or a restart
# marker; anything else ends the scan. Fill bytes (more 0xFF) may precede a marker.
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8, 0xD9})


# Start-of-frame markers (C4 is DHT, C8 reserved, CC is DAC).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


_JPEG_PROGRESSIVE_FRAMES = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


def check_jpeg_structure(data: bytes | memoryview | mmap.mmap) -> JpegLayout:
    """Walk a JPEG's markers from start to end-of-image without decoding anything.

    Every segment must fit in the file; a frame header (8-bit, as the decoder
    reads them) must come before the first scan; each scan may only name
    components of the frame and tables defined before it; the last scan must
    be followed by an end-of-image marker, so a file cut off anywhere fails.
    Costs one regular-expression scan over the entropy-coded data (about a
    millisecond for a 4 MB photo). Data after the end-of-image marker (a
    multi-picture JPEG's second image, camera trailers) is not looked at.
    Returns what the decode will have to do: how many scans, whether the
    frame is progressive, and each component's sampling.
    Raises :class:`ImageProblem` with code ``corrupt``.
    """
    size = len(data)
    if bytes(data[:2]) != b"\xff\xd8":
        raise _jpeg_damaged(
            "the start-of-image marker is missing", "the JPEG start-of-image marker is missing"
        )
    position = 2
    scans = 0
    progressive = False
    sampling: tuple[tuple[int, int], ...] = ()
    components: dict[int, int] = {}  # frame component id -> quantization table
    quantization: set[int] = set()
    huffman: set[tuple[int, int]] = {(0, 0), (0, 1), (1, 0), (1, 1)}  # libjpeg's defaults
    arithmetic = False
    while True:
        if position >= size:
            raise _jpeg_cut_off("no end-of-image marker")
        if data[position] != 0xFF:
            raise _jpeg_damaged(f"no marker at byte {position}")
        while position < size and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= size:
            raise _jpeg_cut_off("no end-of-image marker")
        marker = data[position]
        position += 1
        if marker == 0xD9:
            if not scans:
                raise ImageProblem(
                    "corrupt", "the JPEG has no image data", reason="no_image_data", format="JPEG"
                )
            return JpegLayout(scans=scans, progressive=progressive, sampling=sampling)
        if marker in _JPEG_STANDALONE:
            continue
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            raise _jpeg_damaged(f"bad segment length at byte {position}")
        segment = bytes(data[position + 2 : position + length])
        position += length
        if position > size:
            raise _jpeg_cut_off("inside a segment", "the JPEG data is cut off inside a segment")
        if marker == 0xDB:
            _read_quantization_tables(segment, quantization)
        elif marker == 0xC4:
            _read_huffman_tables(segment, huffman)
        elif marker in _JPEG_FRAMES:
            components, sampling = _read_frame(segment)
            arithmetic = marker >= 0xC9
            progressive = marker in _JPEG_PROGRESSIVE_FRAMES
        elif marker == 0xDA:
            _check_scan(segment, components, quantization, huffman, arithmetic)
            scans += 1
            found = _JPEG_MARKER_AFTER_SCAN.search(data, position)
            if found is None:
                raise _jpeg_cut_off("no end-of-image marker")
            position = found.start()


def _jpeg_damaged(what: str, message: str | None = None) -> ImageProblem:
    return ImageProblem(
        "corrupt",
        message or f"the JPEG structure is damaged ({what})",
        reason="damaged",
        format="JPEG",
        detail=what,
    )


def _jpeg_cut_off(where: str, message: str | None = None) -> ImageProblem:
    return ImageProblem(
        "corrupt",
        message or f"the JPEG data is cut off ({where})",
        reason="truncated",
        format="JPEG",
        detail=where,
    )


def _read_quantization_tables(segment: bytes, defined: set[int]) -> None:
    offset = 0
    while offset < len(segment):
        precision, table = segment[offset] >> 4, segment[offset] & 0x0F
        if precision > 1 or table > 3:
            raise _jpeg_damaged("bad quantization table")
        defined.add(table)
        offset += 1 + 64 * (precision + 1)
    if offset != len(segment):
        raise _jpeg_damaged("bad quantization table length")


def _read_huffman_tables(segment: bytes, defined: set[tuple[int, int]]) -> None:
    offset = 0
    while offset + 17 <= len(segment):
        table_class, table = segment[offset] >> 4, segment[offset] & 0x0F
        if table_class > 1 or table > 3:
            raise _jpeg_damaged("bad Huffman table")
        defined.add((table_class, table))
        offset += 17 + sum(segment[offset + 1 : offset + 17])
    if offset != len(segment):
        raise _jpeg_damaged("bad Huffman table length")


def _read_frame(segment: bytes) -> tuple[dict[int, int], tuple[tuple[int, int], ...]]:
    """The frame's components (id -> quantization table) and their sampling factors."""
    if len(segment) < 6:
        raise _jpeg_damaged("short frame header")
    if segment[0] != 8:
        raise ImageProblem(
            "corrupt",
            f"the JPEG has {segment[0]}-bit samples; only 8-bit JPEGs can be read",
            reason="bit_depth",
            format="JPEG",
            bits=segment[0],
        )
    count = segment[5]
    if count == 0 or len(segment) != 6 + 3 * count:
        raise _jpeg_damaged("bad frame header length")
    components = {segment[6 + 3 * i]: segment[8 + 3 * i] for i in range(count)}
    factors = [segment[7 + 3 * i] for i in range(count)]
    sampling = tuple((max(1, f >> 4), max(1, f & 0x0F)) for f in factors)
    return components, sampling


def _check_scan(
    segment: bytes,
    components: dict[int, int],
    quantization: set[int],
    huffman: set[tuple[int, int]],
    arithmetic: bool,
) -> None:
    if not components:
        raise _jpeg_damaged(
            "a scan before the frame header", "the JPEG has a scan before its frame header"
        )
    count = segment[0] if segment else 0
    if not 1 <= count <= 4 or len(segment) != 4 + 2 * count:
        raise _jpeg_damaged("bad scan header")
    start, end, approximation = segment[1 + 2 * count], segment[2 + 2 * count], segment[-1]
    for index in range(count):
        component, tables = segment[1 + 2 * index], segment[2 + 2 * index]
        if component not in components:
            raise _jpeg_damaged(f"a scan names component {component}, not in the frame")
        if components[component] not in quantization:
            raise _jpeg_damaged(f"quantization table {components[component]} is not defined")
        if arithmetic:
            continue
        if start == 0 and approximation >> 4 == 0 and (0, tables >> 4) not in huffman:
            raise _jpeg_damaged(f"Huffman table {tables >> 4} is not defined")
        if end > 0 and (1, tables & 0x0F) not in huffman:
            raise _jpeg_damaged(f"Huffman table {tables & 0x0F} is not defined")


def png_exif_chunks(data: bytes | memoryview | mmap.mmap) -> tuple[bytes | None, bytes | None]:
    """The EXIF of a PNG's eXIf chunk: ``(before the image data, after it)``.

    A walk over the chunk headers (each names its length), so nothing is
    decompressed. Pillow reads an eXIf chunk after the image data only once
    the pixels are decoded; libvips never does. ``(None, None)`` for a file
    that is not a PNG or has no eXIf chunk.
    """
    if bytes(data[:8]) != PNG_SIGNATURE:
        return None, None
    position = len(PNG_SIGNATURE)
    seen_image_data = False
    early: bytes | None = None
    late: bytes | None = None
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = bytes(data[position + 4 : position + 8])
        if kind == b"IDAT":
            seen_image_data = True
        elif kind == b"eXIf":
            chunk = bytes(data[position + 8 : position + 8 + length])
            if seen_image_data:
                late = chunk
            else:
                early = chunk
        elif kind == b"IEND":
            break
        position += 12 + length
    return early, late
