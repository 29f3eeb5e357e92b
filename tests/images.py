"""Images made on the fly for tests: no binary fixtures in the repository."""

from __future__ import annotations

import io
import random

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


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
