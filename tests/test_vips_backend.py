"""The libvips backend (``django_image_sync.processing.backends.vips``) against the Pillow backend.

Every test runs both backends on the same bytes and compares what matters:
size, orientation, mode, colours, transparency, ICC profile, metadata. Pixels
are compared on a small downscale of both outputs (:func:`distance`), since
the resamplers differ (libvips' lanczos3 after its shrink, Pillow's BICUBIC
after a reduced JPEG decode) and so do the JPEG encoders.

Skipped as a whole where pyvips (or libvips) cannot be loaded; CI installs
them through the ``test`` extra.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import sys
import zlib

import pytest
from django.core.cache import caches
from django.db import transaction
from django.test import override_settings
from PIL import Image, ImageChops, ImageCms, ImageStat, JpegImagePlugin, PngImagePlugin

import django_image_sync
from django_image_sync import processing, services
from django_image_sync.models import Status, UploadedImage, resized_name
from tests.images import encode, jpeg_bytes, photo_like, png_bytes, record_loads, upload
from tests.support.media import media_root, stored_files

try:
    import pyvips

    from django_image_sync.processing.backends import auto, vips
    from django_image_sync.processing.backends import pillow as pillow_backend
except (ImportError, OSError) as exc:  # pyvips, or the libvips library it loads
    pytest.skip(f"the libvips backend cannot be loaded: {exc}", allow_module_level=True)

T = Image.Transpose
GPS_IFD = 0x8825

# Mean absolute difference (0-255, averaged over R, G, B) between the two
# backends' outputs, each reduced to fit 64x64. Measured on the generated
# photos and on every corpus photo: at most 1.6, from the different resamplers
# and JPEG encoders. Any wrong orientation of the same pictures measures 27
# or more (a mirror of a smooth scene is still far from it at this scale).
# 4 leaves room for a libvips or Pillow upgrade and none for a wrong turn.
SAME_PICTURE = 4.0


# -- helpers -----------------------------------------------------------------------------


def both(data: bytes, **spec: object) -> tuple[processing.ResizeResult, processing.ResizeResult]:
    """The Pillow and the libvips backend's results for the same bytes and spec."""
    spec.setdefault("box", (1920, 1080))
    resize_spec = processing.ResizeSpec(**spec)  # type: ignore[arg-type]
    pillow = processing.resize_image(io.BytesIO(data), resize_spec)
    libvips = vips.resize_image(io.BytesIO(data), resize_spec)
    return pillow, libvips


def opened(result: processing.ResizeResult) -> Image.Image:
    with Image.open(io.BytesIO(result.data)) as im:
        im.load()
        return im


def small(im: Image.Image) -> Image.Image:
    im = im.convert("RGB")
    im.thumbnail((64, 64), Image.Resampling.BOX, reducing_gap=None)
    return im


def distance(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two same-sized pictures, at 64 px, 0-255."""
    stat = ImageStat.Stat(ImageChops.difference(small(a), small(b)))
    return sum(stat.mean) / len(stat.mean)


def assert_same_picture(pillow: processing.ResizeResult, libvips: processing.ResizeResult) -> None:
    """Same size, format and mode, and close pixels."""
    assert (libvips.width, libvips.height) == (pillow.width, pillow.height)
    assert libvips.format == pillow.format
    expected, got = opened(pillow), opened(libvips)
    assert got.size == expected.size == (pillow.width, pillow.height)
    assert got.mode == expected.mode
    assert distance(got, expected) < SAME_PICTURE


def assert_same_turn(pillow: processing.ResizeResult, libvips: processing.ResizeResult) -> None:
    """The same picture, and no other turn of Pillow's output comes anywhere as close.

    Only for pictures without symmetry (photos): a mirrored or rotated output
    would pass the size check but fail here.
    """
    assert_same_picture(pillow, libvips)
    expected, got = opened(pillow), opened(libvips)
    for transpose in T:
        turned = expected.transpose(transpose)
        if turned.size == got.size:
            assert distance(got, turned) > 3 * SAME_PICTURE, transpose


def halves(mode: str, left: object, right: object, size: tuple[int, int] = (64, 48)) -> Image.Image:
    im = Image.new(mode, size, left)  # type: ignore[arg-type]
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))  # type: ignore[arg-type]
    return im


def close(pixel: object, colour: tuple[int, ...], tolerance: int = 6) -> bool:
    values = pixel if isinstance(pixel, tuple) else (pixel,)
    return all(abs(a - b) <= tolerance for a, b in zip(values, colour, strict=True))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[processing.EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def grey_profile() -> bytes:
    """A minimal ICC v2 greyscale display profile (gamma 2.2), valid for littleCMS."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def tag(kind: bytes, body: bytes) -> bytes:
        body = kind + b"\0\0\0\0" + body
        return body + b"\0" * (-len(body) % 4)

    text = b"test grey\0"
    d50 = s15(0.9642) + s15(1.0) + s15(0.8249)
    tags = [
        (b"desc", tag(b"desc", struct.pack(">I", len(text)) + text + b"\0" * 78)),
        (b"wtpt", tag(b"XYZ ", d50)),
        (b"kTRC", tag(b"curv", struct.pack(">IH", 1, 0x0233))),
        (b"cprt", tag(b"text", b"none\0")),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data
    header = (
        struct.pack(">II", start + len(body), 0)
        + bytes([2, 0x10, 0, 0])
        + b"mntrGRAYXYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + d50
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


def sixteen_bit_rgb_png() -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one): left half mid grey, right orange."""
    blank = pyvips.Image.black(200, 300).cast("ushort")
    left = blank.new_from_image([0x8000, 0x8000, 0x8000])
    right = blank.new_from_image([0xFFFF, 0x8000, 0x0000])
    image = left.join(right, "horizontal").copy(interpretation="rgb16")
    return bytes(image.pngsave_buffer(bitdepth=16))


# -- the module's process-wide settings ----------------------------------------------------


def test_importing_the_backend_turns_off_the_operation_cache():
    assert (pyvips.cache_get_max(), pyvips.cache_get_max_mem(), pyvips.cache_get_max_files()) == (
        0,
        0,
        0,
    )
    both(png_bytes((300, 200), seed=1))
    both(jpeg_bytes((300, 200), seed=2))
    # Nothing is kept between images: a worker's memory does not grow with them.
    assert pyvips.cache_get_size() == 0


@pytest.mark.skipif("VIPS_CONCURRENCY" in os.environ, reason="set by the environment")
def test_importing_the_backend_sets_one_thread():
    assert pyvips.concurrency_get() == 1


# -- size and orientation ---------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_same_picture(orientation):
    data = jpeg_bytes((800, 600), seed=11, orientation=orientation)

    pillow, libvips = both(data, box=(400, 400))

    turned = orientation in (5, 6, 7, 8)
    assert (libvips.width, libvips.height) == ((300, 400) if turned else (400, 300))
    assert_same_turn(pillow, libvips)


@pytest.mark.parametrize("shape", ["landscape", "portrait"])
def test_corpus_orientation_photos_give_the_same_pictures(corpus, shape):
    outputs = []
    for n in range(1, 9):
        data = (corpus / "orientation" / f"{shape}_{n}.jpg").read_bytes()
        pillow, libvips = both(data, box=(300, 300))  # resized, not just re-encoded
        assert_same_turn(pillow, libvips)
        outputs.append(opened(libvips))
    # And each shows the scene as orientation 1 does: the eight files were
    # encoded separately, so they are not identical, but no other turn of
    # the reference comes as close (the check of tests/test_tasks.py).
    reference = outputs[0]
    for n, out in enumerate(outputs[1:], start=2):
        assert out.size == reference.size, n
        others = [reference.transpose(t) for t in T if reference.transpose(t).size == out.size]
        assert distance(out, reference) < min(distance(out, o) for o in others) / 2, n


def corpus_photos() -> list[str]:
    return [
        "Canon_40D.jpg",
        "Nikon_D70.jpg",
        "Pentax_K10D.jpg",
        "gps/DSCN0010.jpg",
        "gps/DSCN0012.jpg",
        "hdr/iphone_hdr_YES.jpg",
        "mobile/jolla.jpg",
    ]


@pytest.mark.parametrize("name", corpus_photos())
@pytest.mark.parametrize("box", [(1920, 1080), (320, 320)])
def test_corpus_camera_photos_give_the_same_pictures(corpus, name, box):
    data = (corpus / name).read_bytes()
    pillow, libvips = both(data, box=box)
    assert_same_turn(pillow, libvips)
    out = opened(libvips)
    assert dict(out.getexif()) == {}
    assert b"Exif\x00\x00" not in libvips.data


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((4000, 3000), (1920, 1080)),
        ((3000, 4000), (1920, 1080)),
        ((4001, 2999), (1920, 1080)),
        ((1921, 1081), (1920, 1080)),
        ((640, 480), (1920, 1080)),  # fits already: never upscaled
        ((3000, 7), (1920, 1080)),  # a sliver: each side at least one pixel
        ((7, 3000), (100, 100)),
        ((1, 1), (1, 1)),
    ],
)
def test_output_size_is_exactly_pillows(size, box):
    for data in (jpeg_bytes(size, seed=12), png_bytes(size, seed=12)):
        pillow, libvips = both(data, box=box)
        assert (libvips.width, libvips.height) == (pillow.width, pillow.height)
        assert (libvips.width, libvips.height) == processing.fit_within(*size, box)
        assert opened(libvips).size == (libvips.width, libvips.height)


def test_output_size_is_exactly_pillows_for_random_shapes():
    rng = random.Random(13)
    for _ in range(40):
        size = (rng.randint(1, 900), rng.randint(1, 900))
        box = (rng.randint(1, 400), rng.randint(1, 400))
        orientation = rng.randint(1, 8)
        data = jpeg_bytes(size, seed=14, orientation=orientation)
        pillow, libvips = both(data, box=box)
        assert (libvips.width, libvips.height) == (pillow.width, pillow.height), (size, box)


def test_png_exif_chunk_after_the_image_data_turns_it_as_in_pillow():
    png = encode(photo_like((640, 480), seed=15), "PNG")
    end = png.rindex(b"IEND") - 4
    late = png[:end] + png_chunk(b"eXIf", exif_bytes(6)) + png[end:]

    pillow, libvips = both(late, box=(320, 320))

    assert (pillow.width, pillow.height) == (240, 320)  # honoured by the Pillow backend
    assert_same_turn(pillow, libvips)


@pytest.mark.parametrize(
    "exif",
    [
        exif_bytes(9),
        exif_bytes(0),
        b"Exif\x00\x00garbage",
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12",
    ],
)
def test_odd_or_malformed_exif_counts_as_upright_as_in_pillow(exif):
    data = encode(photo_like((64, 48), seed=16), "JPEG", exif=exif)
    pillow, libvips = both(data, box=(32, 32))
    assert (pillow.width, pillow.height) == (libvips.width, libvips.height) == (32, 24)


# -- colour modes, transparency -------------------------------------------------------------

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
TEAL = (0, 128, 128)


def test_transparency_is_flattened_onto_the_background_colour_for_jpeg():
    # Left half fully transparent over hidden red, right half opaque blue.
    data = encode(halves("RGBA", (255, 0, 0, 0), (0, 0, 255, 255), (400, 300)), "PNG")

    pillow, libvips = both(data, box=(200, 200), background=TEAL)

    out = opened(libvips)
    assert out.mode == opened(pillow).mode == "RGB"
    assert close(out.getpixel((20, 75)), TEAL)  # the background, not the hidden red
    assert close(out.getpixel((180, 75)), BLUE)
    assert_same_picture(pillow, libvips)


@pytest.mark.parametrize("output", ["PNG", "WEBP"])
def test_outputs_with_alpha_keep_transparency(output):
    data = encode(halves("RGBA", (255, 0, 0, 0), (0, 0, 255, 255), (400, 300)), "PNG")

    pillow, libvips = both(data, box=(200, 200), format=output, background=TEAL)

    out = opened(libvips)
    assert out.mode == opened(pillow).mode == "RGBA"
    assert out.getpixel((20, 75))[3] == 0
    assert close(out.getpixel((180, 75)), (*BLUE, 255))


def test_grey_with_alpha_is_flattened_onto_the_background_grey():
    data = encode(halves("LA", (200, 0), (30, 255), (400, 300)), "PNG")

    pillow, libvips = both(data, box=(200, 200), background=TEAL)

    out, expected = opened(libvips), opened(pillow)
    assert out.mode == expected.mode == "L"
    teal_grey = round(0.299 * TEAL[0] + 0.587 * TEAL[1] + 0.114 * TEAL[2])
    assert close(out.getpixel((20, 75)), (teal_grey,))
    assert close(out.getpixel((180, 75)), (30,))


def palette_with_transparency() -> bytes:
    im = Image.new("P", (400, 300), 1)
    im.putpalette([*RED, *GREEN] + [0, 0, 0] * 254)  # 0 red, 1 green
    im.paste(0, (200, 0, 400, 300))
    return encode(im, "PNG", transparency=1)


def sixteen_bit_grey_png() -> bytes:
    im = Image.new("I;16", (400, 300), 0x8000)
    im.paste(0xFFFF, (200, 0, 400, 300))
    return encode(im, "PNG")


MODES = {
    # name: (bytes, output mode, colours of the left and right halves in the output)
    "grey-jpeg": (lambda: encode(halves("L", 60, 200, (400, 300)), "JPEG"), "L", (60, 200)),
    "grey-png": (lambda: encode(halves("L", 60, 200, (400, 300)), "PNG"), "L", (60, 200)),
    "1-bit-png": (lambda: encode(halves("1", 0, 1, (400, 300)), "PNG"), "L", (0, 255)),
    "16-bit-grey-png": (sixteen_bit_grey_png, "L", (128, 255)),
    "16-bit-rgb-png": (sixteen_bit_rgb_png, "RGB", ((128, 128, 128), (255, 128, 0))),
    "palette-png": (
        lambda: encode(halves("RGB", RED, BLUE, (400, 300)).convert("P"), "PNG"),
        "RGB",
        (RED, BLUE),
    ),
    "palette-png-with-transparency": (palette_with_transparency, "RGB", (TEAL, RED)),
    "grey-png-with-transparency": (
        lambda: encode(halves("L", 60, 200, (400, 300)), "PNG", transparency=60),
        "RGB",  # as in Pillow: a transparent colour makes the image RGBA
        (TEAL, (200, 200, 200)),
    ),
    "rgb-png-with-transparency": (
        lambda: encode(halves("RGB", RED, BLUE, (400, 300)), "PNG", transparency=RED),
        "RGB",
        (TEAL, BLUE),
    ),
    "cmyk-jpeg": (
        lambda: encode(halves("CMYK", (0, 255, 255, 0), (255, 0, 0, 0), (400, 300)), "JPEG"),
        "RGB",
        (RED, (0, 255, 255)),  # Pillow's formula, not an ICC conversion
    ),
}


@pytest.mark.parametrize("name", MODES)
def test_colour_modes_come_out_as_in_pillow(name):
    make, mode, (left, right) = MODES[name]
    data = make()

    pillow, libvips = both(data, box=(200, 200), background=TEAL)

    out = opened(libvips)
    assert out.mode == opened(pillow).mode == mode
    colours = [c if isinstance(c, tuple) else (c,) for c in (left, right)]
    assert close(out.getpixel((30, 75)), colours[0]), out.getpixel((30, 75))
    assert close(out.getpixel((170, 75)), colours[1]), out.getpixel((170, 75))
    assert_same_picture(pillow, libvips)


def test_cmyk_photo_gives_the_same_picture():
    data = encode(photo_like((1200, 900), seed=17).convert("CMYK"), "JPEG", quality=90)
    pillow, libvips = both(data, box=(400, 400))
    assert_same_turn(pillow, libvips)


def test_sixteen_bit_rgba_png_keeps_its_alpha():
    blank = pyvips.Image.black(32, 48).cast("ushort")
    opaque = blank.new_from_image([0xFFFF, 0, 0, 0xFFFF])
    clear = blank.new_from_image([0, 0, 0xFFFF, 0])
    image = opaque.join(clear, "horizontal").copy(interpretation="rgb16")
    data = bytes(image.pngsave_buffer(bitdepth=16))

    pillow, libvips = both(data, box=(64, 48), format="PNG")

    out = opened(libvips)
    assert out.mode == opened(pillow).mode == "RGBA"
    assert close(out.getpixel((8, 24)), (255, 0, 0, 255))
    assert out.getpixel((56, 24))[3] == 0


# -- metadata and colour profiles ---------------------------------------------------------


def jpeg_full_of_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    exif[0x0131] = "Secret Software 1.0"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 31.0)}
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>secret</rdf:Description>'
    xmp += b"</x:xmpmeta>"
    return encode(
        photo_like((800, 600), seed=18),
        "JPEG",
        exif=exif.tobytes(),
        comment=b"a comment with a secret",
        xmp=xmp,
    )


def png_full_of_metadata() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a comment with a secret")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret</x:xmpmeta>")
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 5.0)}
    return encode(photo_like((800, 600), seed=19), "PNG", pnginfo=info, exif=exif.tobytes())


@pytest.mark.parametrize("make", [jpeg_full_of_metadata, png_full_of_metadata])
@pytest.mark.parametrize("output", ["JPEG", "PNG", "WEBP"])
def test_no_metadata_is_left_in_the_output(make, output):
    data = make()
    assert b"secret" in data  # the input really carries it

    _, libvips = both(data, box=(400, 400), format=output)

    out = opened(libvips)
    assert dict(out.getexif()) == {}
    assert GPS_IFD not in out.getexif()
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment", "icc_profile"):
        assert key not in out.info, key
    for marker in (b"secret", b"Exif\x00\x00", b"Camera Maker", b"adobe"):
        assert marker not in libvips.data, marker


ICC_CASES = {
    # name: (bytes, profile, kept by the Pillow backend)
    "rgb-jpeg": (lambda p: encode(photo_like((300, 200)), "JPEG", icc_profile=p), "srgb", True),
    "rgba-png": (
        lambda p: encode(photo_like((300, 200), mode="RGBA"), "PNG", icc_profile=p),
        "srgb",
        True,
    ),
    "palette-png": (
        lambda p: encode(photo_like((300, 200), mode="P"), "PNG", icc_profile=p),
        "srgb",
        True,
    ),
    "grey-jpeg": (
        lambda p: encode(photo_like((300, 200), mode="L"), "JPEG", icc_profile=p),
        "grey",
        True,
    ),
    "grey-alpha-png": (
        lambda p: encode(photo_like((300, 200), mode="LA"), "PNG", icc_profile=p),
        "grey",
        True,
    ),
    # The colour space changes: the profile would describe the wrong pixels.
    "grey-png-made-rgba": (
        lambda p: encode(photo_like((300, 200), mode="L"), "PNG", icc_profile=p, transparency=3),
        "grey",
        False,
    ),
    "cmyk-jpeg": (
        lambda p: encode(photo_like((300, 200), mode="CMYK"), "JPEG", icc_profile=p),
        "srgb",
        False,
    ),
    "16-bit-grey-png": (
        lambda p: encode(Image.new("I;16", (300, 200), 0x1234), "PNG", icc_profile=p),
        "grey",
        False,
    ),
}


@pytest.mark.parametrize("name", ICC_CASES)
@pytest.mark.parametrize("output", ["JPEG", "PNG"])
def test_icc_profile_is_kept_or_dropped_as_in_pillow(name, output):
    make, kind, kept = ICC_CASES[name]
    profile = srgb_profile() if kind == "srgb" else grey_profile()
    data = make(profile)

    pillow, libvips = both(data, box=(64, 64), format=output)

    assert opened(pillow).info.get("icc_profile") == (profile if kept else None)
    assert opened(libvips).info.get("icc_profile") == (profile if kept else None)


# -- encoding -----------------------------------------------------------------------------


def test_quality_and_chroma_subsampling_follow_the_spec_as_in_pillow():
    data = jpeg_bytes((1200, 900), seed=20, quality=95)
    sizes = []
    for quality in (30, 95):
        pillow, libvips = both(data, box=(600, 600), quality=quality)
        sizes.append(len(libvips.data))
        with (
            Image.open(io.BytesIO(libvips.data)) as out,
            Image.open(io.BytesIO(pillow.data)) as ref,
        ):
            # 4:2:0 at every quality, as Pillow (libvips alone keeps 4:4:4 from Q 90)
            assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(ref) == 2
            # libjpeg's tables scaled by the quality: the same in both encoders
            assert out.quantization == ref.quantization
    assert sizes[0] < sizes[1] / 2


# -- bad data -----------------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(truncated(jpeg_bytes((800, 600), seed=21)), id="jpeg-cut-in-half"),
        pytest.param(truncated(png_bytes((800, 600), seed=22)), id="png-cut-in-half"),
        pytest.param(b"\xff\xd8\xff garbage, not a JPEG" * 50, id="jpeg-signature-then-garbage"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, id="png-signature-then-zeros"),
        pytest.param(b"plain text", id="not-an-image"),
        pytest.param(encode(photo_like((64, 48)), "GIF"), id="gif"),
    ],
)
def test_data_that_cannot_be_decoded_raises(data):
    # The worker marks the image failed on any exception, with its message.
    with pytest.raises((pyvips.Error, OSError, ValueError)) as caught:
        vips.resize_image(io.BytesIO(data), processing.ResizeSpec(box=(100, 100)))
    assert str(caught.value)


def test_damaged_png_data_raises_a_vips_error():
    png = png_bytes((400, 300), seed=23)
    start = png.index(b"IDAT") + 4 + 100
    damaged = png[:start] + bytes(b ^ 0x5A for b in png[start : start + 64]) + png[start + 64 :]
    with pytest.raises(pyvips.Error):
        vips.resize_image(io.BytesIO(damaged), processing.ResizeSpec(box=(100, 100)))


# -- the spec and the worker path --------------------------------------------------------


def test_backend_is_part_of_the_spec_key_and_pillows_key_is_unchanged():
    pillow = processing.ResizeSpec(box=(1920, 1080))
    # The Pillow backend's key carries no backend part, as before backends
    # existed ("729012b7f68e" at pipeline version 2): stored names keep working.
    raw = f"v{processing.PIPELINE_VERSION}:1920x1080:JPEG:q85:bg255,255,255"
    assert pillow.key == hashlib.sha256(raw.encode()).hexdigest()[:12]
    assert processing.ResizeSpec(box=(1920, 1080), backend="pillow").key == pillow.key
    vips_key = processing.ResizeSpec(box=(1920, 1080), backend="vips").key
    assert vips_key not in (pillow.key, "")
    auto_key = processing.ResizeSpec(box=(1920, 1080), backend="auto").key
    assert auto_key not in (pillow.key, vips_key, "")


def test_resizer_for_names_each_backend():
    assert processing.resizer_for("pillow") is processing.resize_image
    assert processing.resizer_for("vips") is vips.resize_image
    assert processing.resizer_for("auto") is auto.resize_image
    assert processing.renderer_for("auto") is auto.render
    with pytest.raises(ValueError, match="unknown processing backend 'magick'"):
        processing.resizer_for("magick")


@pytest.mark.django_db
def test_worker_path_with_the_vips_backend_stores_another_file(clear_cache):
    data = jpeg_bytes((2400, 1600), seed=24, orientation=6)
    [outcome] = services.upload_images([upload(data)])
    image = outcome.image

    assert services.process_image(image.pk) == Status.DONE
    by_pillow = UploadedImage.objects.get(pk=image.pk)
    # Read now: reprocessing deletes the outputs no row refers to any more.
    pillow_bytes = (media_root() / by_pillow.resized.name).read_bytes()

    with override_settings(IMAGE_SYNC={"BACKEND": "vips"}):
        spec = services.current_spec()
        assert spec.backend == "vips"
        with transaction.atomic():
            assert services.reprocess([by_pillow]) == 1
        assert services.process_image(image.pk) == Status.DONE
        cached = caches["default"].get(services.result_cache_key(image.sha256, spec))

    by_vips = UploadedImage.objects.get(pk=image.pk)
    assert by_vips.status == Status.DONE, by_vips.error
    assert by_vips.resized.name == resized_name(image.sha256, spec.key, "jpg")
    assert by_vips.resized.name != by_pillow.resized.name
    assert (cached["name"], cached["width"], cached["height"]) == (by_vips.resized.name, 720, 1080)
    assert cached["renditions"] == by_vips.renditions
    # Every output of the default plan, from the libvips backend, none of them the Pillow ones.
    assert [(e["format"], e["width"], e["height"]) for e in by_vips.renditions] == [
        (fmt, width, height)
        for width, height in ((720, 1080), (480, 720))
        for fmt in ("JPEG", "AVIF", "WEBP")
    ]
    assert not set(by_vips.output_names()) & set(by_pillow.output_names())
    assert stored_files("resized") == sorted(by_vips.output_names())
    for entry in by_vips.renditions:
        with Image.open(media_root() / entry["name"]) as out:
            assert (out.format, out.size) == (entry["format"], (entry["width"], entry["height"]))
            assert not out.getexif()
    assert by_vips.placeholder.startswith("data:image/webp;base64,")
    assert (by_vips.resized_width, by_vips.resized_height) == (720, 1080)
    assert (by_pillow.resized_width, by_pillow.resized_height) == (720, 1080)
    vips_bytes = (media_root() / by_vips.resized.name).read_bytes()
    assert vips_bytes != pillow_bytes
    with Image.open(io.BytesIO(vips_bytes)) as out, Image.open(io.BytesIO(pillow_bytes)) as ref:
        assert out.size == ref.size == (720, 1080)
        assert distance(out, ref) < SAME_PICTURE
        assert dict(out.getexif()) == {}


@pytest.mark.django_db
def test_worker_without_pyvips_retries_instead_of_failing(monkeypatch, clear_cache):
    [outcome] = services.upload_images([upload(png_bytes((300, 200), seed=25), "a.png")])
    # This worker process cannot import the backend (as without the extra).
    monkeypatch.setitem(sys.modules, "django_image_sync.processing.backends.vips", None)
    monkeypatch.delattr(django_image_sync.processing.backends, "vips")

    with (
        override_settings(IMAGE_SYNC={"BACKEND": "vips"}),
        pytest.raises(services.TransientError, match="the vips backend cannot be loaded"),
    ):
        services.process_image(outcome.image.pk)

    left = UploadedImage.objects.get(pk=outcome.image.pk)
    assert (left.status, left.error) == (Status.PROCESSING, "")


def test_a_real_file_object_is_read_safely(tmp_path):
    """libvips reads the bytes lazily and does not hold them: the backend must keep
    them referenced until the last encode (a freed buffer read as "not a JPEG")."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes((2400, 1600), seed=77))
    spec = processing.ResizeSpec(box=(1920, 1080), backend="vips")
    plan = processing.RenditionPlan(spec, widths=(480,), placeholder=True)
    for _ in range(8):
        with path.open("rb") as fh:
            single = vips.resize_image(fh, spec)
        with path.open("rb") as fh:
            rendered = vips.render(fh, plan)
        with path.open("rb") as fh:
            streamed = vips.render(fh, processing.RenditionPlan(spec))  # read while encoding
        junk = [bytes(1 << 20) for _ in range(8)]  # reuse of freed memory, if any
        del junk
        assert Image.open(io.BytesIO(single.data)).size == (1620, 1080)
        assert streamed.main.data == single.data
        assert [o.planned.width for o in rendered.outputs] == [1620, 480]


def test_render_of_the_main_output_alone_streams_it_into_the_encoder(monkeypatch):
    """Read once, the main size is not rendered to memory first (4-7 ms a photo);
    read by several outputs, it is, once, so the file is decoded once."""
    copies: list[tuple[int, int]] = []
    copy_memory = pyvips.Image.copy_memory

    def counted(image: pyvips.Image) -> pyvips.Image:
        copies.append((image.width, image.height))
        return copy_memory(image)

    monkeypatch.setattr(pyvips.Image, "copy_memory", counted)
    data = jpeg_bytes((2400, 1600), seed=87)
    spec = processing.ResizeSpec(box=(1920, 1080), backend="vips")

    main_only = vips.render(io.BytesIO(data), processing.RenditionPlan(spec))
    assert copies == []
    assert main_only.main.data == vips.resize_image(io.BytesIO(data), spec).data

    webp = (processing.Encoding("WEBP"),)
    vips.render(io.BytesIO(data), processing.RenditionPlan(spec, formats=webp))
    assert copies == [(1620, 1080)]
    copies.clear()
    vips.render(io.BytesIO(data), processing.RenditionPlan(spec, widths=(480,)))
    assert copies == [(1620, 1080), (480, 320)]
    copies.clear()
    # Every output of the main size already stored (skipped): not even read.
    plan = processing.RenditionPlan(spec, placeholder=True)
    vips.render(io.BytesIO(data), plan, frozenset({spec.key}))
    assert copies == []


# -- the auto backend ------------------------------------------------------------------------

AUTO_CASES = {
    # 4032x3024 into 1440x1080: Pillow decodes it at 3/8 (1512x1134).
    "12 MP JPEG": (lambda: jpeg_bytes((4032, 3024), seed=81), (1512, 1134)),
    "grey 12 MP JPEG": (lambda: encode(photo_like((4032, 3024), "L", seed=85)), (1512, 1134)),
    # 1620x1080 wanted; 1/2 (1200x800) does not cover it: decoded whole.
    "2400x1600 JPEG": (lambda: jpeg_bytes((2400, 1600), seed=83), None),
    # The same pixels turned by EXIF 6: 720x1080 wanted, which 1/2 covers.
    "2400x1600 JPEG, EXIF 6": (
        lambda: jpeg_bytes((2400, 1600), seed=83, orientation=6),
        (1200, 800),
    ),
    "2560x1600 JPEG": (lambda: jpeg_bytes((2560, 1600), seed=82), None),
    # Pillow and libvips turn CMYK into RGB differently: the libvips backend's way.
    "CMYK 12 MP JPEG": (
        lambda: encode(photo_like((4032, 3024), seed=86).convert("CMYK")),
        None,
    ),
    "PNG": (lambda: png_bytes((1600, 1200), seed=84), None),
}


@pytest.mark.parametrize("case", AUTO_CASES)
def test_auto_backend_decodes_with_pillow_where_it_decodes_reduced_else_uses_libvips(
    case, monkeypatch
):
    make, decoded_at = AUTO_CASES[case]
    data = make()
    spec = processing.ResizeSpec(box=(1920, 1080), backend="auto")
    plan = processing.RenditionPlan(spec, widths=(480,), placeholder=True)
    loads = record_loads(monkeypatch)

    rendered = auto.render(io.BytesIO(data), plan)
    decoded_by_pillow = list(loads)
    by_vips = vips.render(io.BytesIO(data), plan)
    by_pillow = pillow_backend.render(io.BytesIO(data), plan)

    if decoded_at is None:
        assert decoded_by_pillow == []  # its header read, no pixel
        assert [out.data for out in rendered.outputs] == [out.data for out in by_vips.outputs]
        assert rendered.placeholder == by_vips.placeholder
    else:
        assert decoded_by_pillow == [decoded_at]
        # Pillow's decode, libvips' resampler and encoders: the bytes of neither
        # backend, the pictures of both.
        assert rendered.main.data not in (by_pillow.main.data, by_vips.main.data)
        for out, ref in zip(rendered.outputs, by_pillow.outputs, strict=True):
            assert out.planned == ref.planned
            assert out.data is not None
            assert ref.data is not None
            with Image.open(io.BytesIO(out.data)) as made, Image.open(io.BytesIO(ref.data)) as want:
                assert made.size == want.size == (out.planned.width, out.planned.height)
                assert made.mode == want.mode
                assert distance(made, want) < SAME_PICTURE
                assert not made.getexif()
                assert "icc_profile" not in made.info
        assert rendered.placeholder.startswith("data:image/webp;base64,")
    main_only = auto.render(io.BytesIO(data), processing.RenditionPlan(spec)).main.data
    assert auto.resize_image(io.BytesIO(data), spec).data == main_only


def test_auto_backend_keeps_the_icc_profile_as_the_others_do():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo_like((4032, 3024), seed=87), icc_profile=profile)
    spec = processing.ResizeSpec(box=(1920, 1080), backend="auto")
    with Image.open(io.BytesIO(auto.resize_image(io.BytesIO(data), spec).data)) as out:
        assert out.info.get("icc_profile") == profile


@pytest.mark.parametrize("case", ["12 MP JPEG", "2400x1600 JPEG, EXIF 6", "2560x1600 JPEG", "PNG"])
def test_auto_backend_budgets_each_file_for_the_route_it_takes(case):
    make, decoded_at = AUTO_CASES[case]
    data = make()

    def needed(backend: str) -> int:
        info = processing.inspect_image(
            io.BytesIO(data),
            allowed_formats=["JPEG", "PNG"],
            max_pixels=100_000_000,
            box=(1920, 1080),
            backend=backend,
        )
        return info.decode_memory

    if decoded_at is None:
        assert needed("auto") == needed("vips")
    else:
        # Pillow's decoded image and its copy for libvips, besides libvips' output.
        width, height = decoded_at
        assert needed("auto") >= needed("vips") + width * height * 7


@pytest.mark.django_db
def test_worker_path_with_the_auto_backend(clear_cache):
    photo, drawing = jpeg_bytes((4032, 3024), seed=85), png_bytes((1600, 1200), seed=86)
    main_only = {"RENDITION_WIDTHS": (), "RENDITION_FORMATS": (), "PLACEHOLDER": False}
    with override_settings(IMAGE_SYNC={"BACKEND": "auto", **main_only}):
        outcomes = services.upload_images(
            [upload(photo), upload(drawing, "drawing.png", "image/png")]
        )
        for outcome in outcomes:
            assert services.process_image(outcome.image.pk) == Status.DONE
        spec = services.current_spec()

    assert spec.backend == "auto"
    made = [auto.resize_image(io.BytesIO(data), spec).data for data in (photo, drawing)]
    assert made[1] == vips.resize_image(io.BytesIO(drawing), spec).data
    for outcome, expected in zip(outcomes, made, strict=True):
        row = UploadedImage.objects.get(pk=outcome.image.pk)
        assert row.resized.name == resized_name(row.sha256, spec.key, "jpg")
        assert (media_root() / row.resized.name).read_bytes() == expected
