"""Images made on the fly for tests: no binary fixtures in the repository."""

from __future__ import annotations

import io
import random
import re
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, JpegImagePlugin


def photo_like(size: tuple[int, int], mode: str = "RGB", seed: int = 1) -> Image.Image:
    """A smooth gradient with some noise: compresses like a photo, unique per seed."""
    small = Image.new("RGB", (16, 16))
    rng = random.Random(seed)
    small.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(256)]
    )
    im = small.resize(size, Image.Resampling.BICUBIC)
    if mode != "RGB":
        im = im.convert(mode)
    return im


def encode(im: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def jpeg_bytes(
    size: tuple[int, int] = (64, 48),
    *,
    seed: int = 1,
    orientation: int | None = None,
    gps: bool = False,
    quality: int = 90,
) -> bytes:
    im = photo_like(size, seed=seed)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 31.0)}
    return encode(im, "JPEG", quality=quality, exif=exif.tobytes())


def png_bytes(size: tuple[int, int] = (64, 48), *, mode: str = "RGB", seed: int = 1) -> bytes:
    return encode(photo_like(size, mode=mode, seed=seed), "PNG")


def upload(
    data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


# -- files that are cheap to send and expensive to decode (issue 8) ------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# PNG colour types by Pillow-like mode name: (colour type, channels).
_PNG_COLOUR_TYPES = {"L": (0, 1), "RGB": (2, 3), "P": (3, 1), "LA": (4, 2), "RGBA": (6, 4)}


# Adam7 passes: first column, first row, column step, row step.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _png_rows(width: int, height: int, channels: int, depth: int, raw: bool = False) -> bytes:
    """Zlib data of ``height`` filtered rows of one colour, compressed as they are made
    (``raw``: the rows themselves, uncompressed)."""
    row = b"\x00" + bytes((width * channels * depth + 7) // 8)
    if raw:
        return row * height
    compressor = zlib.compressobj(9)
    parts = []
    batch = row * max(1, (4 << 20) // len(row))
    rows_per_batch = len(batch) // len(row)
    left = height
    while left:
        count = min(left, rows_per_batch)
        parts.append(compressor.compress(batch if count == rows_per_batch else row * count))
        left -= count
    parts.append(compressor.flush())
    return b"".join(parts)


def plain_png(
    width: int,
    height: int,
    *,
    mode: str = "RGBA",
    depth: int = 8,
    frames: int = 1,
    interlace: bool = False,
) -> bytes:
    """A one-colour PNG (or APNG with ``frames`` full-size frames), made without
    holding its pixels: a 50 MP file is a few hundred KB and takes about a second.

    ``interlace`` stores it Adam7-interlaced (its rows are made whole first:
    keep those images small or measure the memory elsewhere).
    """
    colour_type, channels = _PNG_COLOUR_TYPES[mode]
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, int(interlace))
    chunks = [png_chunk(b"IHDR", header)]
    if mode == "P":
        chunks.append(png_chunk(b"PLTE", b"\x10\x80\xf0" * 2))
    if interlace:
        data = b"".join(
            _png_rows(-(-(width - x0) // dx), -(-(height - y0) // dy), channels, depth, raw=True)
            for x0, y0, dx, dy in _ADAM7
            if width > x0 and height > y0
        )
        data = zlib.compress(data, 9)
    else:
        data = _png_rows(width, height, channels, depth)
    if frames > 1:
        chunks.append(png_chunk(b"acTL", struct.pack(">II", frames, 0)))
    sequence = 0
    for frame in range(frames):
        if frames > 1:
            control = struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 1, 10, 0, 0)
            chunks.append(png_chunk(b"fcTL", control))
            sequence += 1
        if frame == 0:
            chunks.append(png_chunk(b"IDAT", data))
        else:
            chunks.append(png_chunk(b"fdAT", struct.pack(">I", sequence) + data))
            sequence += 1
    chunks.append(png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def progressive_jpeg(size: tuple[int, int], scans: int, *, mode: str = "RGB") -> bytes:
    """A one-colour progressive JPEG with exactly ``scans`` scans.

    libjpeg's progressive script has 10 scans for colour images and 6 for
    grey; the rest are copies of the last refinement scan, a few bytes each
    for a flat picture. They change nothing in the picture but must each be
    decoded over the whole image, which is what a hostile file does.
    """
    flat = Image.new(mode, size, 128 if mode == "L" else (90, 140, 200))  # type: ignore[arg-type]
    data = encode(flat, "JPEG", progressive=True, quality=85)
    starts = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    written = len(starts)
    if scans < written:
        raise ValueError(f"a progressive JPEG of this kind has at least {written} scans")
    last_scan = data[starts[-1] : data.rindex(b"\xff\xd9")]
    return data[: data.rindex(b"\xff\xd9")] + last_scan * (scans - written) + b"\xff\xd9"


def png_from_samples(
    width: int,
    height: int,
    samples: list[int],
    *,
    colour_type: int,
    depth: int,
    trns: bytes | None = None,
    palette: bytes | None = None,
) -> bytes:
    """A PNG of exactly these samples (row-major, every channel), any bit depth and
    colour type, with an optional tRNS chunk: the kinds Pillow opens in other modes."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    per_row = width * channels
    rows = []
    for y in range(height):
        row = samples[y * per_row : (y + 1) * per_row]
        if depth == 16:
            packed = b"".join(struct.pack(">H", value) for value in row)
        elif depth == 8:
            packed = bytes(row)
        else:
            bits = "".join(format(value, f"0{depth}b") for value in row)
            bits += "0" * (-len(bits) % 8)
            packed = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
        rows.append(b"\x00" + packed)
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    chunks = [png_chunk(b"IHDR", header)]
    if palette is not None:
        chunks.append(png_chunk(b"PLTE", palette))
    if trns is not None:
        chunks.append(png_chunk(b"tRNS", trns))
    chunks.append(png_chunk(b"IDAT", zlib.compress(b"".join(rows), 9)))
    chunks.append(png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def record_loads(monkeypatch, image_class=JpegImagePlugin.JpegImageFile):  # type: ignore[no-untyped-def]
    """Sizes at which images of ``image_class`` (JPEGs unless told) are decoded
    (``load()`` runs after the decoder is set up)."""
    loads: list[tuple[int, int]] = []
    original_load = image_class.load

    def recording_load(self):  # type: ignore[no-untyped-def]
        loads.append(self.size)
        return original_load(self)

    monkeypatch.setattr(image_class, "load", recording_load)
    return loads
