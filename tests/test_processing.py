"""The Pillow pipeline in ``django_image_sync.processing``: no Django, no database.

Every image is generated here (``tests.images``) except the real camera photos of
the ``corpus`` fixture, which skips where the sample folder is absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import (
    Image,
    ImageChops,
    ImageCms,
    ImageOps,
    ImageStat,
    PngImagePlugin,
    features,
)

from django_image_sync import processing
from django_image_sync.processing import (
    HASH_CHUNK_SIZE,
    ImageProblem,
    ResizeSpec,
    costs,
    file_size,
    fit_within,
    hash_file,
    inspect_image,
    resize_image,
    sniff_format,
    types,
)
from tests.images import (
    encode,
    jpeg_bytes,
    photo_like,
    plain_png,
    png_bytes,
    png_chunk,
    progressive_jpeg,
    record_loads,
    upload,
)

ALLOWED = ("JPEG", "PNG")
LIMIT = 50_000_000
T = Image.Transpose


def inspect(data: bytes, **kwargs: object) -> processing.ImageInfo:
    kwargs.setdefault("allowed_formats", ALLOWED)
    kwargs.setdefault("max_pixels", LIMIT)
    return inspect_image(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]


def problem(data: bytes, **kwargs: object) -> ImageProblem:
    with pytest.raises(ImageProblem) as caught:
        inspect(data, **kwargs)
    return caught.value


def png_with_exif(im: Image.Image, orientation: int = 1, **params: object) -> bytes:
    """A PNG carrying an eXIf chunk (Pillow writes it before IDAT)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, "PNG", exif=exif.tobytes(), **params)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose IHDR declares ``width x height`` (RGB, 8 bit)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def opened(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    stat = ImageStat.Stat(ImageChops.difference(a, b))
    return sum(stat.mean) / len(stat.mean)


def half_transparent(mode: str, opaque: object, hidden: object) -> Image.Image:
    """Left half fully transparent (``hidden`` colour underneath), right half opaque."""
    im = Image.new(mode, (64, 48), hidden)  # type: ignore[arg-type]
    im.paste(opaque, (32, 0, 64, 48))  # type: ignore[arg-type]
    return im


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return jpeg_bytes((4000, 3000), seed=7)


# --- hash_file, file_size --------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, HASH_CHUNK_SIZE, HASH_CHUNK_SIZE + 1, 2 * HASH_CHUNK_SIZE + HASH_CHUNK_SIZE // 2],
)
def test_hash_file_matches_hashlib(size):
    data = random.Random(size).randbytes(size)
    fileobj = io.BytesIO(data)
    fileobj.seek(size // 3)  # wherever the caller left it: the whole file is hashed

    md5, sha256 = hash_file(fileobj)

    assert md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert fileobj.tell() == 0


def test_hash_file_on_a_real_file_larger_than_one_chunk(tmp_path: Path):
    data = random.Random(3).randbytes(3 * HASH_CHUNK_SIZE + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    with path.open("rb") as fileobj:
        fileobj.read(1000)
        digests = hash_file(fileobj)
        position = fileobj.tell()

    assert digests == (
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
    assert position == 0


class _NoRead(io.FileIO):
    """A real file whose ``read`` must not be used: its bytes are mapped instead."""

    def read(self, *args: object) -> bytes:  # type: ignore[override]
        raise AssertionError("the file was copied into Python")

    readinto = read  # type: ignore[assignment]


def test_hash_file_maps_a_file_on_disk_instead_of_reading_it(tmp_path: Path):
    data = jpeg_bytes((1200, 900))
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)

    with _NoRead(path, "rb") as fileobj:
        assert hash_file(fileobj) == (
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
            hashlib.sha256(data).hexdigest(),
        )
        assert fileobj.tell() == 0


@pytest.mark.parametrize("kind", ["temporary", "in-memory", "no-descriptor"])
def test_hash_file_on_every_kind_of_upload(kind, settings, tmp_path):
    from django.core.files.uploadedfile import InMemoryUploadedFile, TemporaryUploadedFile

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    data = random.Random(5).randbytes(2 * HASH_CHUNK_SIZE + 5)
    if kind == "temporary":
        fileobj = TemporaryUploadedFile("a.jpg", "image/jpeg", len(data), None)
        fileobj.write(data)
    elif kind == "in-memory":
        fileobj = InMemoryUploadedFile(
            io.BytesIO(data), "images", "a.jpg", "image/jpeg", len(data), None
        )
    else:

        class Reader(io.RawIOBase):  # seekable, readable, no file descriptor
            def __init__(self) -> None:
                self.inner = io.BytesIO(data)

            def readable(self) -> bool:
                return True

            def seekable(self) -> bool:
                return True

            def readinto(self, buffer):  # type: ignore[no-untyped-def]
                return self.inner.readinto(buffer)

            def seek(self, *args):  # type: ignore[no-untyped-def]
                return self.inner.seek(*args)

        fileobj = Reader()
    with fileobj:
        fileobj.seek(7)
        digests = hash_file(fileobj)
        assert fileobj.tell() == 0

    assert digests == (
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def test_hash_file_differs_for_different_content():
    a = random.Random(1).randbytes(HASH_CHUNK_SIZE + 10)
    b = a[:-1] + bytes([a[-1] ^ 1])  # one bit in the second chunk
    assert hash_file(io.BytesIO(a))[0] != hash_file(io.BytesIO(b))[0]
    assert hash_file(io.BytesIO(a))[1] != hash_file(io.BytesIO(b))[1]


def test_file_size_measures_and_rewinds():
    fileobj = io.BytesIO(b"x" * 12345)
    fileobj.seek(100)
    assert file_size(fileobj) == 12345
    assert fileobj.tell() == 0


# --- sniff_format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"GIF87a....", "GIF"),
        (b"GIF89a....", "GIF"),
        (b"II*\x00....", "TIFF"),
        (b"MM\x00*....", "TIFF"),
        (b"BM........", "BMP"),
        (b"8BPS......", "PSD"),
        (b"%PDF-1.7..", "PDF"),
        (b"\x00\x00\x01\x00..", "ICO"),
        (b"\x89PNG\r\n\x1a\n..", "PNG"),
        (b"\xff\xd8\xff\xe0..", "JPEG"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"  \n<svg xmlns='http://www.w3.org/2000/svg'>", "SVG"),
        (b"<?xml version='1.0'?><svg/>", "SVG"),
        (b"<!DOCTYPE html><html>", "HTML"),
        (b"<HTML><body>", "HTML"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_sniff_format(head, name):
    assert sniff_format(head) == name


# --- inspect_image: accepted files -----------------------------------------------------


def test_inspect_accepts_jpeg():
    data = jpeg_bytes((640, 480))
    fileobj = io.BytesIO(data)

    info = inspect_image(fileobj, allowed_formats=ALLOWED, max_pixels=LIMIT)

    assert info.format == "JPEG"
    assert (info.width, info.height) == (640, 480)
    assert info.size == len(data)
    assert info.frames == 1
    assert info.extension == "jpg"
    assert fileobj.tell() == 0


@pytest.mark.parametrize(
    "mode",
    [
        "RGB",
        "RGBA",
        "L",
        "P",
    ],
)
def test_inspect_accepts_png(mode):
    data = png_bytes((320, 200), mode=mode)

    info = inspect(data)

    assert info.format == "PNG"
    assert (info.width, info.height) == (320, 200)
    assert info.size == len(data)
    assert info.frames == 1
    assert info.extension == "png"


def test_inspect_accepts_png_with_exif_chunk():
    data = png_with_exif(photo_like((320, 200)))
    fileobj = io.BytesIO(data)

    info = inspect_image(fileobj, allowed_formats=ALLOWED, max_pixels=LIMIT)

    assert (info.format, info.width, info.height, info.size) == ("PNG", 320, 200, len(data))
    assert fileobj.tell() == 0


@pytest.mark.parametrize(
    "make_png",
    [
        pytest.param(lambda: png_bytes((80, 60)), id="plain"),
        pytest.param(lambda: png_with_exif(photo_like((80, 60))), id="with-exif"),
    ],
)
def test_format_is_decided_by_content_not_name(tmp_path: Path, make_png):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(make_png())

    with path.open("rb") as fileobj:
        info = inspect_image(fileobj, allowed_formats=ALLOWED, max_pixels=LIMIT)
    uploaded = inspect_image(
        upload(make_png(), name="photo.jpg", content_type="image/jpeg"),
        allowed_formats=ALLOWED,
        max_pixels=LIMIT,
    )

    assert info.format == "PNG"
    assert info.extension == "png"
    assert uploaded.format == "PNG"


def test_jpeg_named_png_is_jpeg(tmp_path: Path):
    path = tmp_path / "drawing.png"
    path.write_bytes(jpeg_bytes((80, 60)))
    with path.open("rb") as fileobj:
        assert inspect_image(fileobj, allowed_formats=ALLOWED, max_pixels=LIMIT).format == "JPEG"


def test_allowed_formats_are_case_insensitive():
    assert inspect(jpeg_bytes(), allowed_formats=["jpeg"]).format == "JPEG"


def test_format_outside_allowed_list_is_refused_and_named():
    exc = problem(png_with_exif(photo_like((40, 30))), allowed_formats=["JPEG"])
    assert exc.code == "format"
    assert "PNG" in exc.message
    assert str(exc) == exc.message


def test_multi_picture_jpeg_is_accepted_as_jpeg():
    data = encode(
        photo_like((64, 48)), "MPO", save_all=True, append_images=[photo_like((64, 48), seed=2)]
    )
    info = inspect(data)
    assert info.format == "JPEG"
    assert info.frames == 2
    assert (info.width, info.height) == (64, 48)


# --- inspect_image: size rules ---------------------------------------------------------


def test_empty_file_is_refused():
    assert problem(b"").code == "empty"


def test_max_file_size_boundary():
    data = jpeg_bytes((64, 48))

    assert inspect(data, max_bytes=len(data)).size == len(data)
    assert inspect(data, max_bytes=None).size == len(data)
    exc = problem(data, max_bytes=len(data) - 1)
    assert exc.code == "max_file_size"
    assert str(len(data)) in exc.message
    assert str(len(data) - 1) in exc.message


def test_header_declaring_a_huge_png_is_refused_without_decoding():
    data = png_declaring(100_000, 100_000)
    assert len(data) < 200  # there are no pixels to decode: the header alone decides
    exc = problem(data)
    assert exc.code == "max_pixels"


def test_header_over_max_pixels_but_under_pillow_limit_is_refused_without_decoding():
    # 64 Mpx: below Pillow's own bomb limit, above the app's; the IDAT holds 64 bytes,
    # so a decode would fail as corrupt instead.
    exc = problem(png_declaring(8000, 8000), max_pixels=50_000_000)
    assert exc.code == "max_pixels"
    assert "8000x8000" in exc.message


def test_pixel_limit_is_inclusive():
    data = jpeg_bytes((40, 25))
    assert inspect(data, max_pixels=1000).width == 40
    assert problem(data, max_pixels=999).code == "max_pixels"


def test_animated_png_frames_count_together():
    frames = [photo_like((100, 100), seed=seed) for seed in range(3)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    with Image.open(io.BytesIO(data)) as im:
        assert im.n_frames == 3  # really an APNG

    # One frame (10 000 px) is under the limit, all three (30 000 px) are over it.
    exc = problem(data, max_pixels=25_000)

    assert exc.code == "max_pixels"
    assert "3 frames" in exc.message


@pytest.mark.parametrize("with_exif", [False, True])
def test_animated_png_under_the_limit_is_accepted(with_exif):
    frames = [photo_like((100, 100), seed=seed) for seed in range(3)]
    params: dict[str, object] = {"save_all": True, "append_images": frames[1:]}
    if with_exif:
        params["exif"] = Image.Exif().tobytes()
    data = encode(frames[0], "PNG", **params)

    info = inspect(data, max_pixels=30_000)

    assert (info.format, info.frames, info.width, info.height) == ("PNG", 3, 100, 100)


def test_pixel_limit_is_capped_by_pillow_max_image_pixels(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)

    # 1200 px: Pillow itself would only warn (between 1x and 2x its limit); the app refuses.
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageProblem) as caught:
        inspect(jpeg_bytes((40, 30)), max_pixels=10**9)
    assert caught.value.code == "max_pixels"
    assert "1000" in caught.value.message

    # Above 2x Pillow raises; still reported as the pixel rule.
    assert problem(jpeg_bytes((50, 50)), max_pixels=10**9).code == "max_pixels"
    # At the cap it is accepted.
    assert inspect(jpeg_bytes((40, 25)), max_pixels=10**9).width == 40


def test_pillow_bomb_warning_raised_as_error_is_max_pixels(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        exc = problem(jpeg_bytes((40, 30)), max_pixels=10**9)
    assert exc.code == "max_pixels"


def test_pixel_limit_without_pillow_cap(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert inspect(jpeg_bytes((40, 25)), max_pixels=1000).height == 25
    assert problem(jpeg_bytes((40, 30)), max_pixels=1000).code == "max_pixels"


# --- inspect_image: refused formats and damaged files ----------------------------------


def _webp() -> bytes:
    if features.check("webp"):
        return encode(photo_like((32, 32)), "WEBP")
    return b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24


@pytest.mark.parametrize(
    ("make", "looks_like"),
    [
        pytest.param(lambda: encode(photo_like((32, 32)), "GIF"), "GIF", id="gif"),
        pytest.param(lambda: encode(photo_like((32, 32)), "TIFF"), "TIFF", id="tiff"),
        pytest.param(_webp, "WEBP", id="webp"),
        pytest.param(lambda: encode(photo_like((32, 32)), "BMP"), "BMP", id="bmp"),
        pytest.param(lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "PDF", id="pdf"),
        pytest.param(
            lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            "SVG",
            id="svg",
        ),
        pytest.param(
            lambda: b"<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>",
            "HTML",
            id="html",
        ),
        pytest.param(lambda: b"just some text, not an image\n" * 10, None, id="text"),
    ],
)
def test_other_formats_are_refused_and_named(make, looks_like):
    exc = problem(make())

    assert exc.code == "format"
    if looks_like is None:
        assert "not an image" in exc.message
    else:
        assert f"looks like {looks_like}" in exc.message
    assert "JPEG, PNG" in exc.message  # tells the user what is allowed


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_truncated_jpeg_is_corrupt(keep):
    data = jpeg_bytes((200, 150))
    cut = int(len(data) * keep) if keep > 0 else len(data) + keep
    assert inspect(data).format == "JPEG"

    assert problem(data[:cut]).code == "corrupt"


def _jpeg_variants() -> dict[str, bytes]:
    im = photo_like((320, 240), seed=7)
    return {
        "baseline": encode(im, "JPEG", quality=90),
        "progressive": encode(im, "JPEG", quality=90, progressive=True),
        "restart-markers": encode(im, "JPEG", quality=90, restart_marker_blocks=4),
        "grey": encode(im.convert("L"), "JPEG"),
        "cmyk": encode(im.convert("CMYK"), "JPEG"),
        "subsampling-444": encode(im, "JPEG", subsampling=0),
    }


@pytest.mark.parametrize("variant", list(_jpeg_variants()))
def test_jpeg_structure_walk_accepts_every_kind_of_jpeg(variant):
    data = _jpeg_variants()[variant]

    processing.check_jpeg_structure(data)
    assert inspect(data).format == "JPEG"


@pytest.mark.parametrize("variant", ["baseline", "progressive", "restart-markers"])
def test_jpeg_cut_anywhere_is_corrupt(variant):
    data = _jpeg_variants()[variant]
    step = max(1, len(data) // 97)
    for cut in [*range(2, len(data) - 1, step), len(data) - 2, len(data) - 1]:
        with pytest.raises(ImageProblem) as caught:
            processing.check_jpeg_structure(data[:cut])
        assert caught.value.code == "corrupt", cut


def test_jpeg_fill_bytes_and_trailing_data_are_accepted():
    data = _jpeg_variants()["baseline"]
    eoi = len(data) - 2
    assert data[eoi:] == b"\xff\xd9"
    # Fill bytes may precede any marker; cameras append data after the end marker.
    padded = data[:eoi] + b"\xff\xff\xff" + data[eoi:] + b"trailer from a camera" * 10

    processing.check_jpeg_structure(padded)
    assert inspect(padded).size == len(padded)


def _patch_marker(data: bytes, marker: int, offset: int, value: int) -> bytes:
    """Set the byte ``offset`` bytes after every ``marker`` (0xFF xx) to ``value``."""
    out = bytearray(data)
    start = 0
    while (index := out.find(bytes([0xFF, marker]), start, out.index(b"\xff\xda") + 1)) >= 0:
        out[index + offset] = value
        start = index + 2
    return bytes(out)


def _patch_scan(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """Apply ``change(i, buffer)`` to each component entry ``i`` of the first scan header."""
    out = bytearray(data)
    sos = out.index(b"\xff\xda")
    for k in range(out[sos + 4]):
        change(sos + 5 + 2 * k, out)
    return bytes(out)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: d[:2] + d[2:].replace(b"\xff\xc0", b"\xff\xfe", 1), "scan before its frame"),
        (lambda d: d[:-2], "cut off"),
        (lambda d: d[:2] + b"\x00" + d[3:], "no marker at byte 2"),
        (lambda d: d[: d.index(b"\xff\xda")] + b"\xff\xd9", "no image data"),
        (lambda d: d[:4] + b"\x00\x01" + d[6:], "bad segment length"),
        (lambda d: _patch_scan(d, lambda i, seg: seg.__setitem__(i + 1, 0x33)), "Huffman table 3"),
        (lambda d: _patch_scan(d, lambda i, seg: seg.__setitem__(i, 9)), "component 9"),
        (lambda d: _patch_marker(d, 0xDB, 4, 0x03), "quantization table 0 is not defined"),
        (lambda d: _patch_marker(d, 0xC0, 4, 12), "12-bit samples"),
    ],
    ids=[
        "sof-renamed",
        "no-eoi",
        "garbage-after-soi",
        "no-scan",
        "short-length",
        "undefined-huffman-table",
        "unknown-component",
        "undefined-quantization-table",
        "12-bit",
    ],
)
def test_damaged_jpeg_structure_is_named(damage, words):
    data = damage(_jpeg_variants()["baseline"])

    with pytest.raises(ImageProblem) as caught:
        processing.check_jpeg_structure(data)
    assert caught.value.code == "corrupt"
    assert words in caught.value.message
    assert problem(data).code in ("corrupt", "format")  # Pillow may refuse the header first


def test_jpeg_with_an_undefined_table_would_fail_to_decode():
    """The header checks stand in for a decode: such a file really cannot be decoded."""
    data = _patch_scan(_jpeg_variants()["baseline"], lambda i, seg: seg.__setitem__(i + 1, 0x33))
    with pytest.raises(OSError, match="broken data stream"), Image.open(io.BytesIO(data)) as im:
        im.load()


def test_inspect_decodes_no_pixels(monkeypatch):
    """Validation in the request reads headers and structure only: no decoder runs."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("inspect_image decoded pixels")

    monkeypatch.setattr(Image.core, "jpeg_decoder", refuse)
    monkeypatch.setattr(Image.core, "zip_decoder", refuse)
    big = jpeg_bytes((4000, 3000))

    assert inspect(big).width == 4000
    assert inspect(png_bytes((300, 200))).format == "PNG"


def test_corpus_photos_pass_the_structure_walk(corpus):
    photos = [p for p in corpus.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")]
    assert photos
    for path in photos:
        processing.check_jpeg_structure(path.read_bytes())
        assert inspect(path.read_bytes()).format == "JPEG", path.name


@pytest.mark.parametrize("with_exif", [False, True])
@pytest.mark.parametrize("keep", [0.02, 0.5, -12])
def test_truncated_png_is_corrupt(keep, with_exif):
    im = photo_like((200, 150))
    data = png_with_exif(im) if with_exif else encode(im, "PNG")
    cut = int(len(data) * keep) if keep > 0 else len(data) + keep
    assert inspect(data).format == "PNG"

    assert problem(data[:cut]).code == "corrupt"


def test_png_with_a_damaged_chunk_is_corrupt():
    data = bytearray(png_bytes((200, 150)))
    idat = data.index(b"IDAT")
    data[idat + 100] ^= 0xFF  # a flipped byte inside IDAT: its CRC no longer matches

    assert problem(bytes(data)).code == "corrupt"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(jpeg_bytes((200, 150))[:20], id="jpeg-20-bytes"),
        pytest.param(png_bytes((200, 150))[:33], id="png-signature-and-ihdr"),
    ],
)
def test_file_cut_inside_its_header_is_corrupt(data):
    assert problem(data).code == "corrupt"


def test_inspecting_a_png_does_not_decode_pixels(monkeypatch):
    # The docstring promises a chunk walk with CRC checks for PNG, not a decode.
    decoded = record_loads(monkeypatch, PngImagePlugin.PngImageFile)
    data = png_bytes((300, 200))

    info = inspect(data)

    assert (info.format, info.width, info.height) == ("PNG", 300, 200)
    assert decoded == []


# --- inspect_image: EXIF ---------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_inspect_reports_displayed_size(orientation):
    info = inspect(jpeg_bytes((64, 48), orientation=orientation))
    expected = (48, 64) if orientation in (5, 6, 7, 8) else (64, 48)
    assert (info.width, info.height) == expected


def test_inspect_reports_displayed_size_of_png_with_orientation():
    info = inspect(png_with_exif(photo_like((64, 48)), orientation=6))
    assert (info.width, info.height) == (48, 64)


@pytest.mark.parametrize("orientation", [0, 9, 255, 65535])
def test_out_of_range_orientation_is_treated_as_upright(orientation):
    data = jpeg_bytes((64, 48), orientation=orientation)
    info = inspect(data)
    assert (info.width, info.height) == (64, 48)
    result = resize_image(io.BytesIO(data), ResizeSpec(box=(32, 32)))
    assert (result.width, result.height) == (32, 24)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's own warning
@pytest.mark.parametrize(
    "exif",
    [
        pytest.param(b"Exif\x00\x00garbage", id="garbage-after-header"),
        pytest.param(b"garbage", id="no-header"),
        pytest.param(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12", id="cut-ifd"),
        pytest.param(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", id="offset-past-end"),
    ],
)
def test_malformed_exif_is_accepted(exif):
    data = encode(photo_like((64, 48)), "JPEG", exif=exif)

    info = inspect(data)
    result = resize_image(io.BytesIO(data), ResizeSpec(box=(32, 32)))

    assert (info.format, info.width, info.height) == ("JPEG", 64, 48)
    assert (result.width, result.height) == (32, 24)


# --- fit_within ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((4000, 3000), (1920, 1080), (1440, 1080)),
        ((3000, 4000), (1920, 1080), (810, 1080)),
        ((4000, 1000), (1920, 1080), (1920, 480)),
        ((1920, 1080), (1920, 1080), (1920, 1080)),
        ((100, 50), (1920, 1080), (100, 50)),  # never upscales
        ((1, 1), (1920, 1080), (1, 1)),
        ((10_000, 1), (100, 100), (100, 1)),  # at least one pixel
        ((1, 10_000), (100, 100), (1, 100)),
        ((2000, 1000), (1000, 1000), (1000, 500)),
    ],
)
def test_fit_within_examples(size, box, expected):
    assert fit_within(size[0], size[1], box) == expected


def test_fit_within_properties():
    rng = random.Random(42)
    for _ in range(2000):
        width, height = rng.randint(1, 9000), rng.randint(1, 9000)
        box = (rng.randint(1, 3000), rng.randint(1, 3000))

        w, h = fit_within(width, height, box)

        assert 1 <= w <= width
        assert 1 <= h <= height
        assert w <= box[0]
        assert h <= box[1]
        if width <= box[0] and height <= box[1]:
            assert (w, h) == (width, height)
        else:
            assert w == box[0] or h == box[1]  # as large as the box allows
            if w > 1 and h > 1:
                # the aspect ratio is kept up to rounding of each side
                assert abs(w * height - h * width) <= (width + height) / 2


# --- resize_image: size, orientation, draft --------------------------------------------


def test_resize_big_jpeg_fits_the_box(big_jpeg):
    result = resize_image(io.BytesIO(big_jpeg), ResizeSpec(box=(1920, 1080)))

    out = opened(result.data)
    assert (result.width, result.height) == (1440, 1080)
    assert out.size == (1440, 1080)
    assert out.format == "JPEG"
    assert out.mode == "RGB"
    assert result.format == "JPEG"


def test_resize_rewinds_before_reading(big_jpeg):
    fileobj = io.BytesIO(big_jpeg)
    fileobj.read()
    assert resize_image(fileobj, ResizeSpec(box=(400, 400))).width == 400


def test_small_image_is_not_upscaled():
    result = resize_image(io.BytesIO(jpeg_bytes((64, 48))), ResizeSpec(box=(1920, 1080)))
    assert opened(result.data).size == (64, 48)


@pytest.mark.parametrize("orientation", [1, 6])
def test_jpeg_is_decoded_at_three_eighths(monkeypatch, big_jpeg, orientation):
    data = big_jpeg
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encode(opened(big_jpeg), "JPEG", quality=90, exif=exif.tobytes())
    loads = record_loads(monkeypatch)

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080)))

    target = (1440, 1080) if orientation == 1 else (810, 1080)
    assert (result.width, result.height) == target
    # 3/8 of the stored 4000x3000: 1/4 (1000x750) would fall below the target.
    assert loads
    assert set(loads) == {(1500, 1125)}


def test_jpeg_is_decoded_at_a_quarter_when_that_covers_the_box(monkeypatch):
    data = jpeg_bytes((8000, 6000), seed=9, quality=80)
    loads = record_loads(monkeypatch)

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080)))

    assert (result.width, result.height) == (1440, 1080)
    assert loads
    assert set(loads) == {(2000, 1500)}


def test_three_eighths_decode_matches_a_full_decode(big_jpeg):
    # Guards the decoder settings the 3/8 step relies on: a Pillow that read
    # them differently would give a wrong size or garbage here.
    from django_image_sync.processing.backends.pillow import _reduced_jpeg_decode

    reduced = Image.open(io.BytesIO(big_jpeg))
    _reduced_jpeg_decode(reduced, (1440, 1080))
    reduced.load()
    full = opened(big_jpeg).resize((1500, 1125), Image.Resampling.LANCZOS)

    assert reduced.size == (1500, 1125)
    difference = ImageStat.Stat(ImageChops.difference(reduced.convert("RGB"), full)).mean
    assert max(difference) < 3


# Stored pixels of an upright image for each EXIF orientation: the inverse of the
# transform a viewer applies (EXIF 2.3, tag 0x0112).
STORED_AS = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,  # viewer rotates 90 degrees clockwise
    7: T.TRANSVERSE,
    8: T.ROTATE_270,  # viewer rotates 90 degrees counter-clockwise
}


def upright_marker() -> Image.Image:
    """White 160x120 landscape with a red block in its top-left corner."""
    im = Image.new("RGB", (160, 120), (255, 255, 255))
    im.paste((255, 0, 0), (0, 0, 48, 36))
    return im


def is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 180 and pixel[1] < 90 and pixel[2] < 90


def is_white(pixel: tuple[int, ...]) -> bool:
    return min(pixel[:3]) > 180


@pytest.mark.parametrize("box", [(1920, 1080), (80, 80)])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_produces_upright_output(orientation, box):
    stored = upright_marker()
    if STORED_AS[orientation] is not None:
        stored = stored.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())

    result = resize_image(io.BytesIO(data), ResizeSpec(box=box))

    out = opened(result.data).convert("RGB")
    expected_size = fit_within(160, 120, box)
    assert out.size == expected_size == (result.width, result.height)
    w, h = out.size
    near, far_x, far_y = 0.1, int(w * 0.9), int(h * 0.9)
    assert is_red(out.getpixel((int(w * near), int(h * near))))
    assert is_white(out.getpixel((far_x, int(h * near))))
    assert is_white(out.getpixel((int(w * near), far_y)))
    assert is_white(out.getpixel((far_x, far_y)))
    assert not opened(result.data).getexif()  # nothing left for a viewer to rotate again


def _normalised_luma(data: bytes) -> Image.Image:
    # The corpus' N=1 files were exported with a different tone curve than N=2..8
    # (mean RGB differs by ~13 levels), so compare equalised luminance: that keeps
    # geometry and cancels the global tone difference.
    return ImageOps.equalize(opened(data).convert("L"))


@pytest.mark.parametrize("box", [(1920, 1080), (200, 200)])
@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_corpus_orientations_render_like_orientation_1(corpus: Path, kind, box):
    outputs = {}
    for n in range(1, 9):
        with (corpus / "orientation" / f"{kind}_{n}.jpg").open("rb") as fileobj:
            outputs[n] = resize_image(fileobj, ResizeSpec(box=box)).data
    reference = _normalised_luma(outputs[1])
    upright_size = (600, 450) if kind == "landscape" else (450, 600)
    assert reference.size == fit_within(*upright_size, box)

    for n in range(2, 9):
        candidate = _normalised_luma(outputs[n])
        assert candidate.size == reference.size, f"{kind}_{n}"
        # Correct: ~2-6; a wrong flip or rotation: 40 or more.
        assert mean_abs_diff(candidate, reference) < 12, f"{kind}_{n}"


# --- resize_image: metadata ------------------------------------------------------------


def assert_no_metadata(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as out:
        assert not out.getexif()
        assert "exif" not in out.info
        assert "xmp" not in out.info
        assert "XML:com.adobe.xmp" not in out.info
        assert "comment" not in out.info
    assert b"Exif\x00\x00" not in data
    assert b"eXIf" not in data
    assert b"http://ns.adobe.com/xap/1.0/" not in data
    assert b"xmpmeta" not in data


def test_corpus_gps_photos_lose_all_metadata(corpus: Path):
    paths = sorted((corpus / "gps").glob("*.jpg"))
    assert paths
    for path in paths:
        with Image.open(path) as source:
            assert source.getexif().get_ifd(0x8825)  # the sample really carries GPS
        for box in ((1920, 1080), (320, 320)):
            with path.open("rb") as fileobj:
                result = resize_image(fileobj, ResizeSpec(box=box))
            assert_no_metadata(result.data)


SECRET_COMMENT = b"taken at 12 Secret Street"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
)


def jpeg_with_everything(size: tuple[int, int]) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 31.0)}
    return encode(photo_like(size), "JPEG", exif=exif.tobytes(), xmp=XMP, comment=SECRET_COMMENT)


@pytest.mark.parametrize("out_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("box", [(1920, 1080), (100, 100)])  # untouched size and resized
def test_generated_gps_jpeg_loses_all_metadata(box, out_format):
    if out_format == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    data = jpeg_with_everything((300, 200))
    with Image.open(io.BytesIO(data)) as source:  # the source really carries all of it
        assert source.getexif().get_ifd(0x8825)
        assert {"exif", "xmp", "comment"} <= set(source.info)

    result = resize_image(io.BytesIO(data), ResizeSpec(box=box, format=out_format))

    assert_no_metadata(result.data)
    assert SECRET_COMMENT not in result.data
    assert b"SERIAL-123456" not in result.data
    assert b"CameraMaker" not in result.data


def test_jpeg_helper_gps_is_stripped():
    data = jpeg_bytes((64, 48), gps=True)
    with Image.open(io.BytesIO(data)) as source:
        assert source.getexif().get_ifd(0x8825)
    assert_no_metadata(resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080))).data)


# --- resize_image: modes and transparency ----------------------------------------------


def close(pixel: object, expected: object, tolerance: int = 8) -> bool:
    if isinstance(pixel, int):
        pixel, expected = (pixel,), (expected,)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))  # type: ignore[arg-type]


BACKGROUND = (40, 160, 220)
BACKGROUND_LUMA = round(0.299 * 40 + 0.587 * 160 + 0.114 * 220)


def palette_with_transparency() -> Image.Image:
    im = Image.new("P", (64, 48), 0)
    im.putpalette([0, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 6))  # 0 black, 1 green
    im.paste(1, (32, 0, 64, 48))
    im.info["transparency"] = 0  # the black half is fully transparent
    return im


def source_png(mode: str) -> bytes:
    if mode == "P":
        im = palette_with_transparency()
        return encode(im, "PNG", transparency=0)
    if mode == "RGBA":
        return encode(half_transparent("RGBA", (0, 200, 0, 255), (255, 0, 0, 0)), "PNG")
    if mode == "LA":
        return encode(half_transparent("LA", (30, 255), (255, 0)), "PNG")
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA"])
def test_transparency_is_flattened_onto_background_for_jpeg(mode):
    data = source_png(mode)

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080), background=BACKGROUND))

    out = opened(result.data)
    assert out.format == "JPEG"
    if mode == "LA":
        assert out.mode == "L"
        assert close(out.getpixel((8, 24)), BACKGROUND_LUMA)
        assert close(out.getpixel((56, 24)), 30)
    else:
        assert out.mode == "RGB"
        assert close(out.getpixel((8, 24)), BACKGROUND)  # transparent half: background
        assert close(out.getpixel((56, 24)), (0, 200, 0))  # opaque half untouched


@pytest.mark.parametrize(("mode", "expected_mode"), [("P", "RGBA"), ("RGBA", "RGBA"), ("LA", "LA")])
def test_png_output_keeps_alpha(mode, expected_mode):
    result = resize_image(io.BytesIO(source_png(mode)), ResizeSpec(box=(1920, 1080), format="PNG"))

    out = opened(result.data)
    assert out.format == "PNG"
    assert out.mode == expected_mode
    assert out.getchannel("A").getpixel((8, 24)) == 0
    assert out.getchannel("A").getpixel((56, 24)) == 255


def test_png_output_of_resized_rgba_keeps_alpha():
    result = resize_image(io.BytesIO(source_png("RGBA")), ResizeSpec(box=(32, 32), format="PNG"))
    out = opened(result.data)
    assert out.size == (32, 24)
    assert out.mode == "RGBA"
    assert out.getchannel("A").getpixel((2, 12)) == 0
    assert out.getchannel("A").getpixel((30, 12)) == 255


@pytest.mark.parametrize(
    ("im", "key"),
    [
        pytest.param(half_transparent("RGB", (0, 200, 0), (255, 0, 0)), (255, 0, 0), id="RGB"),
        pytest.param(half_transparent("L", 30, 255), 255, id="L"),
    ],
)
def test_colour_key_transparency_is_honoured(im, key):
    data = encode(im, "PNG", transparency=key)
    with Image.open(io.BytesIO(data)) as source:
        assert source.info["transparency"] == key

    flat = opened(
        resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080), background=BACKGROUND)).data
    )
    kept = opened(resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080), format="PNG")).data)

    # An L source may come out as L (flattened onto the background's luma) or as RGB.
    expected = BACKGROUND if flat.mode == "RGB" else BACKGROUND_LUMA
    assert flat.mode in ("L", "RGB")
    assert close(flat.getpixel((8, 24)), expected)
    assert close(flat.convert("L").getpixel((56, 24)), 30 if im.mode == "L" else 117)
    assert "A" in kept.getbands()
    assert kept.getchannel("A").getpixel((8, 24)) == 0


def test_cmyk_jpeg_becomes_rgb():
    source = photo_like((300, 200), mode="CMYK")
    data = encode(source, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "CMYK"
        expected = ImageStat.Stat(check.convert("RGB")).mean

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(150, 150)))

    out = opened(result.data)
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (150, 100))
    assert close(
        tuple(round(v) for v in ImageStat.Stat(out).mean), tuple(round(v) for v in expected)
    )


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    source = Image.new("I;16", (256, 64))
    source.putdata([(x * 256 + 100) for _ in range(64) for x in range(256)])  # 100..65380
    data = encode(source, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "I;16"

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080)))

    out = opened(result.data)
    assert out.format == "JPEG"
    assert out.mode in ("L", "RGB")
    grey = out.convert("L")
    source_mean = sum(x * 256 + 100 for x in range(256)) / 256
    assert abs(ImageStat.Stat(grey).mean[0] - source_mean / 256) < 3
    low, high = grey.getextrema()
    assert low < 10
    assert high > 245
    assert grey.getpixel((64, 32)) < 100  # a quarter of the way along: not clipped to white


@pytest.mark.parametrize("mode", ["L", "1"])
def test_greyscale_and_bilevel_produce_greyscale_jpeg(mode):
    source = Image.new(mode, (64, 48), 0)
    source.paste(255 if mode == "1" else 200, (32, 0, 64, 48))
    data = encode(source, "PNG")

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(1920, 1080)))

    out = opened(result.data)
    assert out.format == "JPEG"
    assert out.mode in ("L", "RGB")
    grey = out.convert("L")
    assert close(grey.getpixel((8, 24)), 0)
    assert close(grey.getpixel((56, 24)), 255 if mode == "1" else 200)


def test_webp_output():
    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")

    photo = resize_image(io.BytesIO(jpeg_bytes((800, 600))), ResizeSpec((400, 400), "WEBP"))
    with_alpha = resize_image(io.BytesIO(source_png("RGBA")), ResizeSpec((1920, 1080), "WEBP"))

    out = opened(photo.data)
    assert (out.format, out.size, photo.format) == ("WEBP", (400, 300), "WEBP")
    assert ResizeSpec((400, 400), "WEBP").extension == "webp"
    alpha = opened(with_alpha.data)
    assert alpha.mode == "RGBA"
    assert alpha.getchannel("A").getpixel((8, 24)) == 0


def test_quality_is_passed_to_the_encoder(big_jpeg):
    low = resize_image(io.BytesIO(big_jpeg), ResizeSpec(box=(800, 800), quality=20))
    high = resize_image(io.BytesIO(big_jpeg), ResizeSpec(box=(800, 800), quality=95))
    assert len(low.data) < len(high.data)


# --- resize_image: ICC profiles --------------------------------------------------------


@pytest.fixture(scope="module")
def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize(
    ("mode", "source_format", "out_format"),
    [
        ("RGB", "JPEG", "JPEG"),
        ("RGB", "JPEG", "PNG"),
        ("RGB", "PNG", "JPEG"),
        ("P", "PNG", "JPEG"),
    ],
)
def test_icc_profile_kept_when_colour_space_unchanged(srgb_icc, mode, source_format, out_format):
    data = encode(photo_like((300, 200), mode=mode), source_format, icc_profile=srgb_icc)

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(150, 150), format=out_format))

    assert opened(result.data).info.get("icc_profile") == srgb_icc


def test_icc_profile_dropped_for_cmyk_source(srgb_icc):
    # Any profile attached to CMYK pixels describes CMYK; after conversion to RGB it
    # would mislead every viewer, so it must go.
    data = encode(photo_like((300, 200), mode="CMYK"), "JPEG", icc_profile=srgb_icc)
    with Image.open(io.BytesIO(data)) as source:
        assert source.info.get("icc_profile") == srgb_icc

    result = resize_image(io.BytesIO(data), ResizeSpec(box=(150, 150)))

    out = opened(result.data)
    assert out.mode == "RGB"
    assert "icc_profile" not in out.info


def test_no_icc_profile_invented():
    result = resize_image(io.BytesIO(jpeg_bytes((300, 200))), ResizeSpec(box=(150, 150)))
    assert "icc_profile" not in opened(result.data).info


# --- ResizeSpec ------------------------------------------------------------------------


def test_resize_spec_key_is_stable_for_equal_specs():
    a = ResizeSpec(box=(1920, 1080), format="JPEG", quality=85, background=(255, 255, 255))
    b = ResizeSpec(box=(1920, 1080))
    assert a == b
    assert a.key == b.key
    assert a.key == ResizeSpec(box=(1920, 1080)).key
    assert len(a.key) == 12
    assert a.extension == "jpg"


@pytest.mark.parametrize(
    "changed",
    [
        {"box": (1080, 1920)},
        {"box": (1920, 1081)},
        {"box": (1921, 1080)},
        {"format": "PNG"},
        {"format": "WEBP"},
        {"quality": 86},
        {"background": (254, 255, 255)},
        {"background": (255, 254, 255)},
        {"background": (255, 255, 254)},
        {"background": (0, 0, 0)},
    ],
)
def test_resize_spec_key_changes_with_every_field(changed):
    base = {"box": (1920, 1080), "format": "JPEG", "quality": 85, "background": (255, 255, 255)}
    assert ResizeSpec(**{**base, **changed}).key != ResizeSpec(**base).key


def test_resize_spec_key_changes_with_pipeline_version(monkeypatch):
    before = ResizeSpec(box=(1920, 1080)).key
    monkeypatch.setattr(types, "PIPELINE_VERSION", processing.PIPELINE_VERSION + 1)
    assert ResizeSpec(box=(1920, 1080)).key != before


def test_resize_spec_keys_do_not_collide():
    keys = {
        ResizeSpec(box=(w, h), format=fmt, quality=q).key
        for w in (100, 1000, 1920)
        for h in (100, 1080)
        for fmt in ("JPEG", "PNG", "WEBP")
        for q in (75, 85, 95)
    }
    assert len(keys) == 3 * 2 * 3 * 3


# --- real camera files -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Canon_40D.jpg",
        "Nikon_D70.jpg",
        "Pentax_K10D.jpg",
        "mobile/jolla.jpg",
        "hdr/iphone_hdr_YES.jpg",
    ],
)
def test_corpus_cameras_inspect_and_resize(corpus: Path, name):
    path = corpus / name
    with Image.open(path) as source:
        stored = source.size

    with path.open("rb") as fileobj:
        info = inspect_image(fileobj, allowed_formats=ALLOWED, max_pixels=LIMIT)
        assert fileobj.tell() == 0
        results = [resize_image(fileobj, ResizeSpec(box=box)) for box in ((1920, 1080), (64, 64))]

    assert info.format == "JPEG"
    assert {info.width, info.height} == set(stored)
    assert info.size == path.stat().st_size
    for result, box in zip(results, ((1920, 1080), (64, 64)), strict=True):
        out = opened(result.data)
        assert out.format == "JPEG"
        assert out.size == fit_within(info.width, info.height, box) == (result.width, result.height)
        assert_no_metadata(result.data)


# -- what a decode costs (issue 8) -------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "orientation", "box"),
    [
        ((4000, 3000), 1, (1920, 1080)),  # 3/8
        ((4000, 3000), 6, (1920, 1080)),  # 3/8, turned
        ((8000, 6000), 1, (1920, 1080)),  # 1/4
        ((7070, 7070), 1, (1920, 1080)),  # 1/4
        ((2000, 1500), 1, (1920, 1080)),  # full size
        ((6000, 4000), 8, (640, 480)),  # 1/8
        ((300, 200), 1, (1920, 1080)),  # not reduced
    ],
)
def test_cost_model_predicts_the_size_the_jpeg_is_decoded_at(monkeypatch, size, orientation, box):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.new("RGB", size, (20, 90, 160)), "JPEG", exif=exif.tobytes())
    loads = record_loads(monkeypatch)
    info = inspect_image(
        io.BytesIO(data), allowed_formats=["JPEG"], max_pixels=10**8, box=box, backend="pillow"
    )
    resize_image(io.BytesIO(data), ResizeSpec(box=box))

    [decoded] = set(loads)
    layout = costs.SourceLayout(format="JPEG", size=size, mode="RGB", oriented=orientation != 1)
    expected = costs.pillow_memory(dataclasses.replace(layout, decoded_size=decoded))
    assert info.decode_memory == expected


@pytest.mark.parametrize(
    ("make", "scans", "progressive", "sampling"),
    [
        (lambda: jpeg_bytes((64, 48)), 1, False, ((2, 2), (1, 1), (1, 1))),
        (
            lambda: encode(photo_like((64, 48)), "JPEG", subsampling=0),
            1,
            False,
            ((1, 1), (1, 1), (1, 1)),
        ),
        (lambda: encode(photo_like((64, 48)), "JPEG", progressive=True), 10, True, None),
        (lambda: encode(photo_like((64, 48), mode="L"), "JPEG", progressive=True), 6, True, None),
        (lambda: progressive_jpeg((64, 48), 250), 250, True, ((2, 2), (1, 1), (1, 1))),
    ],
)
def test_structure_walk_counts_scans_and_reads_sampling(make, scans, progressive, sampling):
    layout = processing.check_jpeg_structure(make())
    assert (layout.scans, layout.progressive) == (scans, progressive)
    assert layout.buffered == (progressive or scans > 1)
    if sampling is not None:
        assert layout.sampling == sampling


def test_coefficient_buffer_of_a_4_2_0_jpeg_is_three_bytes_a_pixel():
    # Luma: a block of 64 two-byte coefficients per 8x8 pixels (2 B/px); each
    # chroma component at a quarter of that.
    assert costs.coefficient_bytes((8000, 8000), ((2, 2), (1, 1), (1, 1))) == 3 * 8000 * 8000
    assert costs.coefficient_bytes((8000, 8000), ((1, 1),) * 3) == 6 * 8000 * 8000
    # Partial blocks count whole.
    assert costs.coefficient_bytes((9, 9), ((1, 1),)) == 4 * 128


@pytest.mark.parametrize(
    ("png", "more_than_8_bit_rgba"),
    [
        (lambda: plain_png(1000, 1000, mode="L", depth=16), True),
        (lambda: plain_png(1000, 1000, mode="P"), False),
        (lambda: plain_png(1000, 1000, mode="RGB"), False),
        (lambda: plain_png(1000, 1000, mode="L"), False),
    ],
)
def test_png_cost_depends_on_mode_and_bit_depth(png, more_than_8_bit_rgba):
    limits = {"allowed_formats": ["PNG"], "max_pixels": 10**8, "box": (500, 500)}
    rgba = inspect_image(io.BytesIO(plain_png(1000, 1000)), **limits).decode_memory
    info = inspect_image(io.BytesIO(png()), **limits)
    assert (info.decode_memory > rgba) == more_than_8_bit_rgba


def test_png_with_an_exif_chunk_costs_no_full_size_turned_copy():
    # The picture is turned upright once resized: the turned copy is the
    # output's size, which WORKING_OVERHEAD counts, not the source's.
    limits = {"allowed_formats": ["PNG"], "max_pixels": 10**8, "box": (500, 500)}
    plain = plain_png(1000, 1000)
    exif = Image.Exif()
    exif[0x0112] = 6
    # An eXIf chunk after the image data: read only once the pixels are decoded.
    at_end = plain[:-12] + png_chunk(b"eXIf", exif.tobytes()) + plain[-12:]
    assert inspect_image(io.BytesIO(at_end), **limits).decode_memory == (
        inspect_image(io.BytesIO(plain), **limits).decode_memory
    )


def test_interlaced_png_costs_libvips_the_whole_image():
    limits = {"allowed_formats": ["PNG"], "max_pixels": 10**8, "box": (500, 500)}
    flat = inspect_image(io.BytesIO(plain_png(3000, 3000)), backend="vips", **limits)
    laced = inspect_image(
        io.BytesIO(plain_png(3000, 3000, interlace=True)), backend="vips", **limits
    )
    assert laced.decode_memory - flat.decode_memory >= 4 * 3000 * (3000 - costs.VIPS_PNG_ROWS)
    # Pillow decodes both whole.
    assert inspect_image(io.BytesIO(plain_png(3000, 3000)), **limits).decode_memory == (
        inspect_image(io.BytesIO(plain_png(3000, 3000, interlace=True)), **limits).decode_memory
    )


@pytest.mark.parametrize(
    ("amount", "shown"), [(1, "1 MB"), (256 * 2**20, "256 MB"), (3 * 10**9, "2,861 MB")]
)
def test_megabytes_are_shown_as_djangos_filesizeformat_counts_them(amount, shown):
    assert costs.megabytes(amount) == shown


def test_encoding_renditions_counts_once_the_decode_is_done():
    """The peak is the decode's or the encoders', whichever is larger (not their sum)."""
    from django_image_sync.processing import costs

    photo = costs.SourceLayout(format="JPEG", size=(6000, 4000), mode="RGB")
    photo = processing.with_jpeg_decode_size(photo, (1620, 1080))
    decode = costs.memory_needed(photo, (1620, 1080), "pillow")
    with_avif = costs.memory_needed(photo, (1620, 1080), "pillow", ("AVIF", "WEBP"))
    assert with_avif == max(decode, costs.outputs_memory((1620, 1080), ("AVIF", "WEBP")))
    assert with_avif > decode  # a baseline JPEG decodes reduced: AVIF's encoder is the peak
    big_png = costs.SourceLayout(format="PNG", size=(7000, 7000), mode="RGBA", channels=4)
    png_decode = costs.memory_needed(big_png, (1080, 1080), "pillow")
    assert costs.memory_needed(big_png, (1080, 1080), "pillow", ("AVIF",)) == png_decode
