"""The image pipeline: plain Python on bytes and file objects, Pillow only.

Nothing here imports Django or Celery, so the upload form, the Celery task, the
benchmark and management commands all call the same functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import mmap
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.ImageFile import ImageFile

from . import costs

# Bumped whenever a change here alters the bytes of a resized image, so cached
# results of the old pipeline are not reused.
PIPELINE_VERSION = 2

HASH_CHUNK_SIZE = 1024 * 1024
SPEC_KEY_LENGTH = 12

FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
FORMAT_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

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

# Inside a JPEG scan every 0xFF byte is followed by 0x00 (stuffing) or a restart
# marker; anything else ends the scan. Fill bytes (more 0xFF) may precede a marker.
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8, 0xD9})
# Start-of-frame markers (C4 is DHT, C8 reserved, CC is DAC).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_PROGRESSIVE_FRAMES = frozenset({0xC2, 0xC6, 0xCA, 0xCE})

# The type of a PNG chunk holding EXIF (searched for anywhere: a false match
# only makes the cost estimate larger).
_PNG_EXIF_CHUNK = re.compile(rb"eXIf")

EXIF_ORIENTATION = 0x0112
# Orientations whose transform swaps width and height.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})


class ImageProblem(Exception):
    """An image broke one of the rules. ``code`` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    """What validation learnt about an accepted image."""

    format: str
    width: int  # as displayed, after the EXIF orientation is applied
    height: int
    frames: int
    size: int  # bytes
    # What resizing it costs a worker (see django_image_sync.costs): the peak
    # memory the backend it was checked for needs, and the JPEG's scans.
    decode_memory: int = 0
    scans: int = 1

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


@dataclass(frozen=True)
class JpegLayout:
    """What a walk over a JPEG's markers learnt (see :func:`check_jpeg_structure`)."""

    scans: int
    progressive: bool
    # (horizontal, vertical) sampling factors of the frame's components.
    sampling: tuple[tuple[int, int], ...]

    @property
    def buffered(self) -> bool:
        """Whether libjpeg keeps the whole image's coefficients to decode it."""
        return self.progressive or self.scans > 1


@dataclass(frozen=True)
class ResizeSpec:
    """Everything that decides the bytes of a resized image."""

    box: tuple[int, int]
    format: str = "JPEG"
    quality: int = 85
    background: tuple[int, int, int] = (255, 255, 255)
    # Which pipeline makes the bytes: "pillow" (resize_image below) or "vips"
    # (django_image_sync.vips); see resizer_for().
    backend: str = "pillow"

    @property
    def key(self) -> str:
        """A short stable fingerprint, part of cache keys and stored names."""
        raw = (
            f"v{PIPELINE_VERSION}:{self.box[0]}x{self.box[1]}:{self.format}:"
            f"q{self.quality}:bg{self.background[0]},{self.background[1]},{self.background[2]}"
        )
        if self.backend != "pillow":
            # Appended only for other backends, so the names stored by the
            # Pillow pipeline before backends existed stay valid.
            raw += f":{self.backend}"
        return hashlib.sha256(raw.encode()).hexdigest()[:SPEC_KEY_LENGTH]

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


@dataclass(frozen=True)
class ResizeResult:
    data: bytes
    width: int
    height: int
    format: str


def hash_file(fileobj: IO[bytes]) -> tuple[str, str]:
    """Return ``(md5, sha256)`` hex digests of the whole file in one pass."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    with _contents(fileobj) as contents:
        if contents is not None:
            # The whole file at once, without copying it into Python.
            md5.update(contents)
            sha256.update(contents)
        else:
            fileobj.seek(0)
            while chunk := fileobj.read(HASH_CHUNK_SIZE):
                md5.update(chunk)
                sha256.update(chunk)
    fileobj.seek(0)
    return md5.hexdigest(), sha256.hexdigest()


@contextlib.contextmanager
def _contents(fileobj: IO[bytes]) -> Iterator[memoryview | mmap.mmap | None]:
    """The file's bytes as a buffer that shares memory with it, or None.

    A file on disk (Django's temporary upload files) is mapped read-only, an
    in-memory one is viewed in place; anything else yields None and is read.
    """
    raw = getattr(fileobj, "file", fileobj)  # Django's File wraps the real file
    if isinstance(raw, io.BytesIO):
        with raw.getbuffer() as view:
            yield view
        return
    try:
        descriptor = raw.fileno()
        mapped = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):  # no descriptor, or empty
        yield None
        return
    with mapped:
        yield mapped


def file_size(fileobj: IO[bytes]) -> int:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


def check_byte_size(fileobj: IO[bytes], max_bytes: int | None) -> int:
    """The file's size in bytes; :class:`ImageProblem` if empty or over ``max_bytes``."""
    size = file_size(fileobj)
    if size == 0:
        raise ImageProblem("empty", "the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise ImageProblem(
            "max_file_size",
            f"the file is {size} bytes; the limit is {max_bytes} bytes",
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


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8) read from the header, without decoding pixels.

    ``getexif()`` would make Pillow decode a whole PNG to look for a late eXIf
    chunk (and break a later ``verify()``), so only the EXIF block found while
    opening is read. Malformed EXIF, common in camera files, counts as upright.
    """
    raw = im.info.get("exif")
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        value = exif.get(EXIF_ORIENTATION, 1)
    except Exception:
        return 1
    return _orientation_value(value)


def _late_orientation(im: Image.Image) -> int:
    """The orientation of a decoded image, wherever its EXIF was; upright if unreadable."""
    try:
        with warnings.catch_warnings():
            # Only in a worker process, once the pixels are decoded.
            warnings.simplefilter("ignore", UserWarning)
            return _orientation_value(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:
        return 1


def _open(fileobj: IO[bytes], formats: list[str] | None) -> ImageFile:
    """``Image.open``, tolerant of Pillow's "Corrupt EXIF data" warning.

    The warning only arrives as an exception where warnings are errors; the
    file is then opened again with Pillow's user warnings silenced, on this
    rare path only (``catch_warnings`` is process-wide).
    """
    start = fileobj.tell()
    try:
        return Image.open(fileobj, formats=formats)
    except UserWarning:
        fileobj.seek(start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return Image.open(fileobj, formats=formats)


def _read_all(fileobj: IO[bytes]) -> bytes:
    fileobj.seek(0)
    return fileobj.read()


def _orientation_value(value: Any) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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
    image). None means no limit.
    Raises :class:`ImageProblem` with a ``code`` naming the broken rule.
    """
    size = check_byte_size(fileobj, max_bytes)
    allowed = [f.upper() for f in allowed_formats]
    head = fileobj.read(64)
    fileobj.seek(0)
    try:
        im = _open(fileobj, allowed)
    except UnidentifiedImageError:
        found = sniff_format(head)
        if found in allowed:
            # The signature of an allowed format, but Pillow cannot parse the header.
            raise ImageProblem("corrupt", f"the {found} header is damaged or cut off") from None
        detail = f"it looks like {found}" if found else "its content is not an image"
        raise ImageProblem(
            "format",
            f"{detail}; allowed formats are {', '.join(allowed)}",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives as an exception where warnings are errors.
        raise ImageProblem("max_pixels", f"the image is too large: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem("corrupt", f"the image cannot be read ({exc})") from None

    with im:
        fmt = im.format or ""
        if fmt == "MPO":  # multi-picture JPEG from some cameras: decoded as JPEG
            fmt = "JPEG"
        if fmt not in allowed:
            raise ImageProblem("format", f"{fmt} is not allowed; allowed: {', '.join(allowed)}")
        width, height = im.size
        frames = getattr(im, "n_frames", 1) or 1
        pixels = width * height * frames
        limit = max_pixels
        if Image.MAX_IMAGE_PIXELS is not None:
            # Pillow would only warn between 1x and 2x its own limit; here that is an error.
            limit = min(limit, Image.MAX_IMAGE_PIXELS)
        if width <= 0 or height <= 0:
            raise ImageProblem("corrupt", "the image has no pixels")
        if pixels > limit:
            described = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
            raise ImageProblem(
                "max_pixels",
                f"the image has {pixels} pixels ({described}); the limit is {limit}",
            )
        orientation = _orientation(im)
        mode, transparency = im.mode, "transparency" in im.info
        jpeg: JpegLayout | None = None
        try:
            with _contents(fileobj) as mapped:
                contents = mapped if mapped is not None else _read_all(fileobj)
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
            raise ImageProblem("corrupt", f"the image data is damaged ({exc})") from None
    turned = orientation in _TRANSPOSING_ORIENTATIONS
    upright = (height, width) if turned else (width, height)
    target = fit_within(upright[0], upright[1], box) if box else upright
    if jpeg is not None:
        stored_target = (target[1], target[0]) if turned else target
        layout = with_jpeg_decode_size(layout, stored_target)
    memory = costs.memory_needed(layout, target, backend)
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
        oriented=orientation != 1 or _PNG_EXIF_CHUNK.search(contents) is not None,
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
        )
    if max_decode_memory is not None and memory > max_decode_memory:
        width, height = layout.size
        raise ImageProblem(
            "max_decode_memory",
            f"the image needs about {costs.megabytes(memory)} of memory to resize "
            f"({width}x{height} {layout.format}); the limit is "
            f"{costs.megabytes(max_decode_memory)}",
        )


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
        raise ImageProblem("corrupt", "the JPEG start-of-image marker is missing")
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
            raise ImageProblem("corrupt", "the JPEG data is cut off (no end-of-image marker)")
        if data[position] != 0xFF:
            raise ImageProblem(
                "corrupt", f"the JPEG structure is damaged (no marker at byte {position})"
            )
        while position < size and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= size:
            raise ImageProblem("corrupt", "the JPEG data is cut off (no end-of-image marker)")
        marker = data[position]
        position += 1
        if marker == 0xD9:
            if not scans:
                raise ImageProblem("corrupt", "the JPEG has no image data")
            return JpegLayout(scans=scans, progressive=progressive, sampling=sampling)
        if marker in _JPEG_STANDALONE:
            continue
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            raise ImageProblem(
                "corrupt", f"the JPEG structure is damaged (bad segment length at byte {position})"
            )
        segment = bytes(data[position + 2 : position + length])
        position += length
        if position > size:
            raise ImageProblem("corrupt", "the JPEG data is cut off inside a segment")
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
                raise ImageProblem("corrupt", "the JPEG data is cut off (no end-of-image marker)")
            position = found.start()


def _jpeg_damaged(what: str) -> ImageProblem:
    return ImageProblem("corrupt", f"the JPEG structure is damaged ({what})")


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
            "corrupt", f"the JPEG has {segment[0]}-bit samples; only 8-bit JPEGs can be read"
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
        raise ImageProblem("corrupt", "the JPEG has a scan before its frame header")
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


def fit_within(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The size that fits ``width x height`` inside ``box``, keeping the aspect ratio.

    Never upscales. Each side is at least one pixel.
    """
    box_w, box_h = box
    if width <= box_w and height <= box_h:
        return width, height
    scale = min(box_w / width, box_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_workable_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB or RGBA without losing transparency."""
    mode = im.mode
    if mode in ("L", "RGB") and "transparency" in im.info:
        # A single transparent colour (PNG tRNS) becomes a real alpha channel.
        return im.convert("RGBA")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit and float greyscale: scale to 8 bits rather than clip.
        if mode != "I":
            im = im.convert("I") if mode.startswith("I;16") else im
        if im.mode == "F":
            return im.convert("L")
        return im.point(lambda value: value * (1 / 256)).convert("L")
    if mode == "1":
        return im.convert("L")
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode in ("PA", "La", "RGBa"):
        return im.convert("RGBA")
    if mode == "CMYK":
        return im.convert("RGB")
    if "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def _flatten(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite an image with alpha onto an opaque background."""
    if im.mode not in ("LA", "RGBA"):
        return im
    base_mode = "L" if im.mode == "LA" else "RGB"
    colour: Any = background
    if base_mode == "L":
        colour = round(0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2])
    canvas = Image.new(base_mode, im.size, colour)
    canvas.paste(im.convert(base_mode), mask=im.getchannel("A"))
    return canvas


def keeps_icc_profile(source_mode: str, output_mode: str) -> bool:
    """Whether an output keeps the source's ICC profile: only where the colour
    space is unchanged (RGB-like in and out, or grey in and out), so colours
    stay right. Both processing backends follow this rule."""
    return (source_mode in ("RGB", "RGBA", "P") and output_mode in ("RGB", "RGBA")) or (
        source_mode in ("L", "LA") and output_mode in ("L", "LA")
    )


def _reduced_jpeg_decode(im: ImageFile, target: tuple[int, int]) -> None:
    """Make the JPEG decoder scale the image down while decoding, staying >= ``target``.

    libjpeg(-turbo) scales by N/8 during the inverse DCT; ``draft()`` offers only
    1/2, 1/4 and 1/8. Where 1/4 would fall below the target but 3/8 covers it
    (a 12 MP or 24 MP photo into 1920x1080), decoding at 3/8 instead of 1/2
    halves the pixels left to resample. That step sets the decoder's scale
    through Pillow's tile and decoder settings; if they are not in the shape
    expected, ``draft()`` is used as is.
    """
    three_eighths = _three_eighths(im.size, target)
    tile = im.tile[0] if len(im.tile) == 1 else None
    if (
        three_eighths is not None
        and tile is not None
        and hasattr(tile, "_replace")
        and not getattr(im, "decoderconfig", None)
    ):
        im.tile = [tile._replace(extents=(0, 0, *three_eighths))]
        im._size = three_eighths
        # The decoder's scale is 1/denominator, rounded by libjpeg up to N/8: 3/8.
        im.decoderconfig = (3, 0)
        return
    im.draft(im.mode, target)


def _scaled(size: tuple[int, int], numerator: int, denominator: int) -> tuple[int, int]:
    return (-(-size[0] * numerator // denominator), -(-size[1] * numerator // denominator))


def _three_eighths(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int] | None:
    """The 3/8 size where it covers ``target`` and 1/4 would not, else None."""

    def covers(scaled: tuple[int, int]) -> bool:
        return scaled[0] >= target[0] and scaled[1] >= target[1]

    three_eighths = _scaled(size, 3, 8)
    return three_eighths if covers(three_eighths) and not covers(_scaled(size, 1, 4)) else None


def with_jpeg_decode_size(
    layout: costs.SourceLayout, target: tuple[int, int]
) -> costs.SourceLayout:
    """``layout`` with the size :func:`_reduced_jpeg_decode` decodes that JPEG at.

    ``target`` is in the stored orientation. Where 3/8 does not apply,
    Pillow's ``draft()`` takes the smallest of 1/8, 1/4, 1/2 that covers it.
    """
    size = layout.size
    decoded = _three_eighths(size, target)
    if decoded is None:
        scale = min(size[0] // target[0], size[1] // target[1])
        decoded = _scaled(size, 1, next(d for d in (8, 4, 2, 1) if scale >= d))
    return dataclasses.replace(layout, decoded_size=decoded)


def resize_image(fileobj: IO[bytes], spec: ResizeSpec) -> ResizeResult:
    """Decode, orient, resize to fit ``spec.box``, convert and encode.

    The output carries no EXIF, XMP or comments (GPS, camera serials, ...); an
    ICC profile is kept only when the colour space is unchanged, so colours
    stay right.
    """
    fileobj.seek(0)
    with _open(fileobj, None) as source:
        source_mode = source.mode
        orientation = _orientation(source)
        width, height = source.size
        upright = (height, width) if orientation in _TRANSPOSING_ORIENTATIONS else (width, height)
        target = fit_within(upright[0], upright[1], spec.box)
        if source.format in ("JPEG", "MPO"):
            stored_target = (
                (target[1], target[0]) if orientation in _TRANSPOSING_ORIENTATIONS else target
            )
            _reduced_jpeg_decode(source, stored_target)
        source.load()
        if source.format not in ("JPEG", "MPO"):
            # A PNG may carry its eXIf chunk after the pixel data; now it is read.
            late = _late_orientation(source)
            if late != orientation:
                orientation = late
                upright = (height, width) if late in _TRANSPOSING_ORIENTATIONS else (width, height)
                target = fit_within(upright[0], upright[1], spec.box)
        icc_profile = source.info.get("icc_profile")
        im: Image.Image = source
        if orientation != 1:
            im = ImageOps.exif_transpose(im)
        im = _to_workable_mode(im)
        if im.size != target:
            # After the reduced decode the factor left is below 8/3; BICUBIC is
            # within 0.1 dB of LANCZOS there at two thirds of the cost.
            im = im.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)

    out_format = spec.format
    if out_format == "JPEG":
        im = _flatten(im, spec.background)
    keep_icc = bool(icc_profile) and keeps_icc_profile(source_mode, im.mode)
    # Metadata travels in ``info``; drop all of it and pass back only the profile.
    im.info = {}
    save_args: dict[str, Any] = {}
    if keep_icc:
        save_args["icc_profile"] = icc_profile
    if out_format in ("JPEG", "WEBP"):
        save_args["quality"] = spec.quality
    if out_format == "PNG":
        save_args["optimize"] = False
    buffer = io.BytesIO()
    im.save(buffer, format=out_format, **save_args)
    return ResizeResult(
        data=buffer.getvalue(), width=im.size[0], height=im.size[1], format=out_format
    )


BACKENDS = ("pillow", "vips")


def resizer_for(backend: str) -> Callable[[IO[bytes], ResizeSpec], ResizeResult]:
    """The ``resize_image`` function of a processing backend (see :data:`BACKENDS`).

    The libvips backend is imported only when asked for: pyvips is an optional
    dependency (``pip install django-image-sync[vips]``), so ``ImportError`` or
    ``OSError`` (libvips itself missing) come from here when it is absent.
    """
    if backend == "pillow":
        return resize_image
    if backend == "vips":
        from django_image_sync import vips

        return vips.resize_image
    raise ValueError(f"unknown processing backend {backend!r}; use one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "FORMAT_EXTENSIONS",
    "FORMAT_MIME_TYPES",
    "ImageInfo",
    "ImageProblem",
    "JpegLayout",
    "ResizeResult",
    "ResizeSpec",
    "check_byte_size",
    "check_cost",
    "check_jpeg_structure",
    "file_size",
    "fit_within",
    "hash_file",
    "inspect_image",
    "resize_image",
    "resizer_for",
    "sniff_format",
    "source_layout",
    "with_jpeg_decode_size",
]
