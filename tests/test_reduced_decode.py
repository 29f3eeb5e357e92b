"""The Pillow backend's fast path on the sizes cameras and phones produce.

A JPEG is decoded at the smallest N/8 scale that covers the output (full size,
1/2, 3/8 or 1/4 here), a colour JPEG in YCbCr with its luma resampled at the
output's size and its chroma at half, and the picture is turned upright once
small (``processing/backends/pillow.py``). These tests fail if any of that
goes wrong: a wrong decode scale or output size, chroma planes swapped,
shifted or left unturned, or resampling clearly worse than a full-resolution
LANCZOS resize (naive Pillow).
"""

from __future__ import annotations

import io
import math
import random

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

from django_image_sync.processing import ResizeSpec, fit_within, resize_image
from django_image_sync.processing.rules import jpeg_decode_scale
from tests.images import encode, photo_like, record_loads

BOX = (1920, 1080)
T = Image.Transpose
# Stored pixels of an upright picture for an EXIF orientation (the inverse of
# what a viewer does).
STORED_AS = {
    1: None,
    3: T.ROTATE_180,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def detailed(size: tuple[int, int], seed: int) -> Image.Image:
    """A smooth photo-like background with many hard-edged strokes and shapes:
    detail at which resampling filters differ."""
    im = photo_like(size, seed=seed)
    rng = random.Random(seed)
    draw = ImageDraw.Draw(im)
    width, height = size
    for _ in range(400):
        x, y = rng.randrange(width), rng.randrange(height)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            end = (x + rng.randrange(-200, 200), y + rng.randrange(-200, 200))
            draw.line((x, y, *end), fill=colour, width=rng.randrange(1, 5))
        else:
            r = rng.randrange(3, 60)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return im


def camera_jpeg(upright: Image.Image, orientation: int = 1, quality: int = 92) -> bytes:
    """``upright`` as a camera stores it: turned for ``orientation``, 4:2:0, EXIF."""
    stored = (
        upright if STORED_AS[orientation] is None else upright.transpose(STORED_AS[orientation])
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=quality, subsampling=2, exif=exif.tobytes())


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    rms = ImageStat.Stat(ImageChops.difference(a, b)).rms
    mse = sum(value**2 for value in rms) / len(rms)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


# (upright size, orientation, size decoded at (stored orientation), output size)
CAMERA_SIZES = [
    ((1600, 1200), 1, (1600, 1200), (1440, 1080)),  # 2 MP: full size, factor 1.11
    ((2560, 1600), 1, (2560, 1600), (1728, 1080)),  # 4 MP 16:10: full size, factor 1.48
    ((4608, 1976), 1, (2304, 988), (1920, 823)),  # phone panorama: 1/2
    ((4032, 3024), 1, (1512, 1134), (1440, 1080)),  # 12 MP: 3/8
    ((3024, 4032), 6, (1512, 1134), (810, 1080)),  # 12 MP portrait, stored turned: 3/8
    ((3456, 4608), 1, (864, 1152), (810, 1080)),  # 16 MP portrait: 1/4
    ((5472, 3648), 8, (1368, 2052), (1620, 1080)),  # 20 MP, stored turned: 3/8
]


@pytest.mark.parametrize(("size", "orientation", "decoded_at", "output"), CAMERA_SIZES)
def test_camera_sizes_decode_at_the_smallest_scale_covering_the_output(
    monkeypatch, size, orientation, decoded_at, output
):
    data = camera_jpeg(Image.new("RGB", size, (90, 120, 200)), orientation, quality=80)
    loads = record_loads(monkeypatch)

    result = resize_image(io.BytesIO(data), ResizeSpec(box=BOX))

    assert set(loads) == {decoded_at}
    assert (result.width, result.height) == output == fit_within(*size, BOX)
    assert decoded(result.data).size == output


@pytest.mark.parametrize(
    ("size", "target"),
    [
        ((2560, 1600), (1728, 1080)),
        ((2880, 1620), (1920, 1080)),  # 1/2 gives exactly 1440x810: below
        ((2879, 2160), (1440, 1080)),  # ceil(2879 / 2) = 1440: 1/2 covers
        ((4000, 3000), (1440, 1080)),
        ((8000, 6000), (1440, 1080)),
        ((16000, 12000), (1440, 1080)),
    ],
)
def test_decode_scale_is_the_smallest_that_covers_the_target(size, target):
    scaled, denominator = jpeg_decode_scale(size, target)
    assert scaled[0] >= target[0]
    assert scaled[1] >= target[1]
    numerator = {1: 8, 2: 4, 3: 3, 4: 2, 8: 1}[denominator]
    assert scaled == (-(-size[0] * numerator // 8), -(-size[1] * numerator // 8))
    smaller = [n for n in (1, 2, 3, 4, 8) if n < numerator]
    for n in smaller:  # no smaller scale covers it
        assert -(-size[0] * n // 8) < target[0] or -(-size[1] * n // 8) < target[1]


@pytest.mark.parametrize(
    ("size", "orientation"),
    [((2560, 1600), 1), ((4608, 1976), 1), ((4032, 3024), 1), ((1944, 2592), 6)],
)
def test_quality_stays_near_a_full_resolution_lanczos_resize(size, orientation):
    """PSNR against the full-resolution LANCZOS reference, at JPEG q85 as the app
    encodes, on non-power-of-two shrinks too: the YCbCr fast path against the
    same decode resized in RGB (the path a PNG output still takes, encoded at
    q85 here). The luma within 0.1 dB; all three channels within 0.75 dB on
    these saturated strokes (chroma is resampled at half size; on photos the
    difference is 0.1-0.2 dB, docs/performance.md); the luma above 40 dB."""
    upright = detailed(size, seed=size[0])
    data = camera_jpeg(upright, orientation)
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        upright_source = ImageOps.exif_transpose(source)
    target = fit_within(*size, BOX)
    reference = upright_source.resize(target, Image.Resampling.LANCZOS)
    in_rgb = resize_image(io.BytesIO(data), ResizeSpec(box=BOX, format="PNG")).data
    rgb_route = decoded(encode(decoded(in_rgb), "JPEG", quality=85))

    ours = decoded(resize_image(io.BytesIO(data), ResizeSpec(box=BOX)).data)

    assert ours.size == target
    luma = [im.convert("L") for im in (ours, rgb_route, reference)]
    assert psnr(luma[0], luma[2]) >= psnr(luma[1], luma[2]) - 0.1
    assert psnr(luma[0], luma[2]) >= 40
    assert psnr(ours, reference) >= psnr(rgb_route, reference) - 0.75


COLOURS = [
    (230, 30, 30),
    (30, 200, 40),
    (40, 60, 230),
    (240, 220, 30),
    (30, 220, 220),
    (220, 40, 210),
    (250, 250, 250),
    (20, 20, 20),
]


def colour_grid(size: tuple[int, int]) -> Image.Image:
    """Eight saturated blocks, four across and two down."""
    im = Image.new("RGB", size)
    width, height = size
    for index, colour in enumerate(COLOURS):
        column, row = index % 4, index // 4
        box = (
            column * width // 4,
            row * height // 2,
            (column + 1) * width // 4,
            (row + 1) * height // 2,
        )
        im.paste(colour, box)
    return im


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 7, 8])
@pytest.mark.parametrize("size", [(2561, 1603), (4605, 1977), (4031, 3023)])
def test_colours_stay_in_place_through_the_chroma_planes(size, orientation):
    """Odd sizes (the doubled chroma is cropped), every kind of turn: each block
    keeps its colour where it belongs (chroma swapped, shifted or not turned
    with the luma would move or change them)."""
    data = camera_jpeg(colour_grid(size), orientation, quality=90)

    out = decoded(resize_image(io.BytesIO(data), ResizeSpec(box=BOX)).data)

    assert out.size == fit_within(*size, BOX)
    width, height = out.size
    for index, colour in enumerate(COLOURS):
        column, row = index % 4, index // 4
        # The middle half of the block, away from its edges.
        box = (
            (4 * column + 1) * width // 16,
            row * height // 2 + height // 8,
            (4 * column + 3) * width // 16,
            row * height // 2 + 3 * height // 8,
        )
        mean = ImageStat.Stat(out.crop(box)).mean
        assert all(abs(m - c) <= 8 for m, c in zip(mean, colour, strict=True)), (index, mean)
