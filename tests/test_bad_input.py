"""Bad input (issue 3): hostile, broken and unusual uploads sent over HTTP.

Every case goes through the JSON API (some through the HTML upload view too) as
raw multipart bodies built here, so file names, headers and lengths are exactly
what a hostile client would send. The corpus is generated with Pillow and raw
bytes; the sample camera photos of the ``corpus`` fixture are used when present.

A refused request must answer 4xx naming the file and the rule, and leave
nothing behind: no row, no stored file, no queued task, no temporary upload
file. Every upload is forced through a temporary file
(``FILE_UPLOAD_MAX_MEMORY_SIZE = 1``) into an empty directory of the test's
own, and the tests commit for real (``transaction=True``) so that dispatch on
commit would reach the Redis queue.

Accepted images are processed with ``services.process_image`` (the worker path,
in-process) and their resized file is checked.
"""

from __future__ import annotations

import dataclasses
import io
import mimetypes
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import HttpResponse
from django.test import Client
from PIL import Image, ImageChops, ImageOps, ImageStat, features

from django_image_sync import conf, processing, queue, services
from django_image_sync.models import Status, UploadedImage
from tests.conftest import redis_reachable, service_unavailable
from tests.images import (
    encode,
    jpeg_bytes,
    photo_like,
    plain_png,
    png_bytes,
    png_chunk,
    progressive_jpeg,
)
from tests.support.media import read_stored, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/images/"
HTML_UPLOAD = "/upload-image/"
BOUNDARY = "bad-input-boundary-7f3a9c"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
QUEUE = django_settings.CELERY_TASK_DEFAULT_QUEUE
# Kombu's Redis transport keeps each priority band of a queue in its own list.
QUEUE_KEYS = [QUEUE, *(f"{QUEUE}\x06\x16{p}" for p in (3, 6, 9))]
# Present while nothing flushed the Redis database (FLUSHDB/FLUSHALL by another process).
SENTINEL = f"{QUEUE}.bad-input-undisturbed"
CACHE_PATTERN = f"{django_settings.CACHES['default']['KEY_PREFIX']}:*"
T = Image.Transpose


# -- multipart bodies ----------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One part of a multipart body; ``filename=None`` makes it a plain field."""

    data: bytes
    filename: str | bytes | None = "photo.jpg"
    content_type: str | None = "image/jpeg"
    field: str = "images"
    headers: bytes = b""


def multipart(*parts: Part, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        out += f'Content-Disposition: form-data; name="{part.field}"'.encode()
        if part.filename is not None:
            name = part.filename if isinstance(part.filename, bytes) else part.filename.encode()
            out += b'; filename="' + name + b'"'
        out += b"\r\n"
        if part.content_type is not None:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        out += part.headers + b"\r\n" + part.data + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return bytes(out)


# -- the corpus ------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A tiny well-formed PNG whose header claims ``width x height`` RGB pixels."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def psd_bytes(width: int = 8, height: int = 8) -> bytes:
    """A minimal Photoshop file: 3 channels, 8 bits, RGB, raw planar pixels."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    empty_sections = struct.pack(">III", 0, 0, 0)  # colour mode, resources, layers
    return header + empty_sections + struct.pack(">H", 0) + bytes(3 * width * height)


def animation(fmt: str, frames: int, size: tuple[int, int] = (100, 100)) -> bytes:
    images = [photo_like(size, seed=seed) for seed in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:])


def sized_jpeg(total: int, seed: int = 40) -> bytes:
    """A valid JPEG of exactly ``total`` bytes: padding after the end-of-image marker."""
    data = jpeg_bytes((64, 48), seed=seed)
    assert len(data) < total
    return data + b"\x00" * (total - len(data))


def halves(mode: str, left: object, right: object, size: tuple[int, int] = (64, 48)) -> Image.Image:
    im = Image.new(mode, size, left)  # type: ignore[arg-type]
    im.paste(right, (size[0] // 2, 0, size[0], size[1]))  # type: ignore[arg-type]
    return im


def palette_with_transparency() -> bytes:
    im = Image.new("P", (64, 48), 1)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)  # 0 red, 1 green
    im.paste(0, (32, 0, 64, 48))
    return encode(im, "PNG", transparency=1)


def sixteen_bit_png() -> bytes:
    im = Image.new("I;16", (64, 48), 0x8000)
    im.paste(0xFFFF, (32, 0, 64, 48))
    return encode(im, "PNG")


PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"
MARKERS = (b"<script", b"alert(", b"<html", b"document.cookie")

STORED_AS = {  # how a camera stores an upright picture for each EXIF orientation
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def oriented_marker(orientation: int) -> bytes:
    """A 160x120 landscape, white with a red top-left block, stored as ``orientation``."""
    upright = Image.new("RGB", (160, 120), (255, 255, 255))
    upright.paste((255, 0, 0), (0, 0, 48, 36))
    stored = (
        upright if STORED_AS[orientation] is None else upright.transpose(STORED_AS[orientation])
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 31.0)}
    return encode(photo_like((300, 200), seed=50), "JPEG", exif=exif.tobytes())


def has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as im:
        return bool(im.getexif().get_ifd(0x8825))


# -- the site under test ------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    rows: int
    media: frozenset[str]
    queued: int


def media_files() -> frozenset[str]:
    """The stored files: under MEDIA_ROOT, or in the bucket on an S3 run."""
    return frozenset(stored_files())


@dataclass
class Site:
    client: Client
    temp_dir: Path
    broker: redis.Redis
    responses: list[HttpResponse] = dataclasses.field(default_factory=list)

    # sending

    def send(
        self, body: bytes, *, content_type: str = MULTIPART, url: str = API, **extra: object
    ) -> HttpResponse:
        """POST ``body`` as is; ``extra`` may override CONTENT_LENGTH or wsgi.input."""
        response = self.client.post(url, data=body, content_type=content_type, **extra)
        self.responses.append(response)
        return response

    def upload(self, *parts: Part, url: str = API, **extra: object) -> HttpResponse:
        return self.send(multipart(*parts), url=url, **extra)

    # observing

    def queued(self) -> int:
        return sum(self.broker.llen(key) for key in QUEUE_KEYS)

    def temp_files(self) -> list[str]:
        return sorted(p.name for p in self.temp_dir.iterdir())

    def snapshot(self) -> Snapshot:
        """The state before a request. The queue is emptied first: starting from
        zero, a flush of Redis by another process cannot fake a difference."""
        self.broker.delete(*QUEUE_KEYS)
        self.broker.set(SENTINEL, "1")
        assert self.temp_files() == []
        return Snapshot(UploadedImage.objects.count(), media_files(), self.queued())

    def undisturbed(self) -> bool:
        return bool(self.broker.exists(SENTINEL))

    def assert_nothing_left(self, before: Snapshot) -> None:
        assert UploadedImage.objects.count() == before.rows
        assert media_files() == before.media
        assert self.queued() == before.queued
        assert self.temp_files() == []

    def refused(
        self,
        response: HttpResponse,
        before: Snapshot,
        *,
        code: str,
        file: str | None = None,
        words: tuple[str, ...] = (),
    ) -> dict:
        """A JSON 400 with exactly one error, naming ``file`` and the rule; nothing left."""
        assert response.status_code == 400, response.content[:500]
        assert response["Content-Type"] == "application/json"
        errors = response.json()["errors"]
        key = "__all__" if code == "bad_request" else "images"
        assert list(errors) == [key]
        [error] = errors[key]
        assert (error["file"], error["code"]) == (file, code)
        if file is not None:
            assert error["message"].startswith(f"{file}: ")
        for word in words:
            assert word in error["message"]
        self.assert_nothing_left(before)
        return error

    def accepted(self, response: HttpResponse, before: Snapshot, *, new: int = 1) -> list:
        """A 201 whose new rows are stored, each queued once; no temporary file left."""
        assert response.status_code == 201, response.content[:500]
        items = response.json()["images"]
        rows = [UploadedImage.objects.get(pk=item["id"]) for item in items]
        assert UploadedImage.objects.count() == before.rows + new
        added = media_files() - before.media
        assert added == {row.original.name for row in rows} - before.media
        assert all(name.startswith("image_sync/originals/") for name in added)
        queued = self.queued()
        if self.undisturbed():  # read after the count: no flush came before it
            assert queued == before.queued + new
        assert self.temp_files() == []
        return rows


def process(pk: int) -> tuple[UploadedImage, bytes, Image.Image]:
    """Run the worker path in-process; the image must end done with a valid resized file."""
    assert services.process_image(pk) == Status.DONE
    row = UploadedImage.objects.get(pk=pk)
    assert (row.status, row.error) == (Status.DONE, "")
    data = read_stored(row.resized.name)
    with Image.open(io.BytesIO(data)) as check:
        check.verify()
    out = Image.open(io.BytesIO(data))
    out.load()
    assert out.format == "JPEG"
    assert row.resized.name.endswith(".jpg")
    assert out.mode in ("L", "RGB")
    assert out.size == (row.resized_width, row.resized_height)
    box = conf.get("TARGET_SIZE")
    assert out.width <= box[0]
    assert out.height <= box[1]
    return row, data, out


def stored_bytes(row: UploadedImage) -> bytes:
    return read_stored(row.original.name)


def close(pixel: object, expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def broker():
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {django_settings.REDIS_URL}")
    client = redis.Redis.from_url(django_settings.REDIS_URL, socket_timeout=5)
    yield client
    client.delete(*QUEUE_KEYS, SENTINEL)
    client.close()


@pytest.fixture(autouse=True)
def _fresh_redis_state(broker, monkeypatch):
    """No task or cached result of another test; the broker counts as reachable."""

    def forget() -> None:
        broker.delete(*QUEUE_KEYS, SENTINEL)
        keys = list(broker.scan_iter(match=CACHE_PATTERN, count=500))
        if keys:
            broker.delete(*keys)

    monkeypatch.setattr(queue, "_broker_down_until", 0.0)
    forget()
    yield
    forget()


@pytest.fixture
def site(settings, tmp_path, django_user_model, broker) -> Site:
    temp_dir = tmp_path / "upload-temp"
    temp_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp_dir)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1
    settings.IMAGE_SYNC = {}
    user = django_user_model.objects.create_user("mallory", password="pw")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    site = Site(client=client, temp_dir=temp_dir, broker=broker)
    yield site
    # Close upload files a request left open (after its test has looked), so that
    # they do not surface later as unclosed-file warnings in another test.
    for response in site.responses:
        for handler in response.wsgi_request.upload_handlers:
            leftover = getattr(handler, "file", None)
            if leftover is not None:
                leftover.close()


# -- the checks themselves see what they claim to see ----------------------------


def in_temp_files(site: Site, response: HttpResponse) -> list[str]:
    """Names of the uploads of a finished request that were spooled to the temp dir."""
    files = response.wsgi_request.FILES.getlist("images")
    assert files
    assert all(isinstance(f, TemporaryUploadedFile) for f in files)
    return [f.name for f in files if Path(f.temporary_file_path()).parent == site.temp_dir]


def test_the_checks_see_a_temp_file_a_row_a_stored_file_and_a_task(site):
    for attempt in range(3):  # a flush of Redis by another process spoils a reading
        before = site.snapshot()
        data = jpeg_bytes((64, 48), seed=90 + attempt)
        response = site.upload(Part(data, "good.jpg"))
        if site.undisturbed():
            break
    else:
        pytest.fail("Redis was flushed by another process during every attempt")

    [row] = site.accepted(response, before)
    assert in_temp_files(site, response) == ["good.jpg"]
    assert site.queued() == 1
    assert stored_bytes(row) == data
    assert row.original_name == "good.jpg"

    # A refused upload was spooled to the same place, and the spool file is gone.
    before = site.snapshot()
    response = site.upload(Part(b"nope", "bad.jpg"), Part(data, "good.jpg"))
    site.refused(response, before, code="format", file="bad.jpg")
    assert in_temp_files(site, response) == ["bad.jpg", "good.jpg"]


# -- sizes and counts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("empty.jpg", "image/jpeg"), ("empty.png", "image/png"), ("nothing", "")],
)
def test_zero_bytes_is_refused_as_empty(site, name, content_type):
    before = site.snapshot()
    response = site.upload(Part(b"", name, content_type or None))
    site.refused(response, before, code="empty", file=name, words=("empty",))


def test_exactly_max_file_size_is_accepted(site):
    limit = conf.get("MAX_FILE_SIZE")
    assert limit == conf.DEFAULTS["MAX_FILE_SIZE"] == 5 * 1024 * 1024
    data = sized_jpeg(limit)
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, "exact.jpg")), before)
    assert (row.size, row.format) == (limit, "JPEG")
    assert stored_bytes(row) == data


def test_one_byte_over_max_file_size_is_refused(site):
    limit = conf.get("MAX_FILE_SIZE")
    before = site.snapshot()
    response = site.upload(Part(sized_jpeg(limit + 1), "over.jpg"))
    site.refused(
        response,
        before,
        code="max_file_size",
        file="over.jpg",
        words=("slightly larger than the limit of 5.0\xa0MB",),
    )


def test_max_files_is_accepted(site):
    count = conf.get("MAX_FILES")
    parts = [Part(jpeg_bytes(seed=100 + i), f"ok{i}.jpg") for i in range(count)]
    before = site.snapshot()
    rows = site.accepted(site.upload(*parts), before, new=count)
    assert [row.original_name for row in rows] == [f"ok{i}.jpg" for i in range(count)]


def test_max_files_plus_one_is_refused(site):
    count = conf.get("MAX_FILES") + 1
    parts = [Part(jpeg_bytes(seed=110 + i), f"ok{i}.jpg") for i in range(count)]
    before = site.snapshot()
    site.refused(
        site.upload(*parts),
        before,
        code="max_files",
        words=(f"{count} files", f"at most {count - 1}"),
    )


BAD_FILES = {
    "empty": (b"", "empty"),
    "text": (b"not an image at all\n" * 20, "format"),
    "truncated": (jpeg_bytes((200, 150), seed=120)[:1500], "corrupt"),
    "bomb": (png_declaring(100_000, 100_000), "max_pixels"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
def test_one_bad_file_refuses_the_whole_submission(site, settings, position, kind):
    settings.IMAGE_SYNC = {"MAX_FILES": 3}
    earlier = jpeg_bytes(seed=121)
    first = site.snapshot()
    site.accepted(site.upload(Part(earlier, "earlier.jpg")), first)
    data, code = BAD_FILES[kind]
    parts = [Part(earlier, "again.jpg"), Part(jpeg_bytes(seed=122), "fresh.jpg")]
    parts.insert(position, Part(data, f"bad-{kind}.jpg"))

    before = site.snapshot()
    assert before.rows == 1
    response = site.upload(*parts)

    site.refused(response, before, code=code, file=f"bad-{kind}.jpg")
    assert UploadedImage.objects.get().original_name == "earlier.jpg"


# -- formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "content_type", "fmt", "extension", "mime"),
    [
        pytest.param(
            png_bytes(seed=130),
            "photo.jpg",
            "image/jpeg",
            "PNG",
            ".png",
            "image/png",
            id="png-as-jpg",
        ),
        pytest.param(
            jpeg_bytes(seed=131),
            "drawing.png",
            "image/png",
            "JPEG",
            ".jpg",
            "image/jpeg",
            id="jpg-as-png",
        ),
        pytest.param(
            png_bytes(seed=132),
            "page.html",
            "text/html",
            "PNG",
            ".png",
            "image/png",
            id="png-as-html",
        ),
    ],
)
def test_format_is_decided_by_content_and_names_the_stored_file(
    site, data, name, content_type, fmt, extension, mime
):
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, name, content_type)), before)
    assert row.format == fmt
    assert row.original_name == name
    assert Path(row.original.name).suffix == extension
    assert mimetypes.guess_type(row.original.name)[0] == mime
    assert row.original.url.endswith(extension)
    assert stored_bytes(row) == data


def _webp() -> bytes:
    if features.check("webp"):
        return encode(photo_like((32, 32)), "WEBP")
    return b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24


REFUSED_FORMATS = [
    pytest.param(lambda: encode(photo_like((32, 32)), "GIF"), "GIF", id="gif"),
    pytest.param(lambda: animation("GIF", 3), "GIF", id="animated-gif"),
    pytest.param(lambda: encode(photo_like((32, 32)), "TIFF"), "TIFF", id="tiff"),
    pytest.param(_webp, "WEBP", id="webp"),
    pytest.param(lambda: encode(photo_like((32, 32)), "BMP"), "BMP", id="bmp"),
    pytest.param(psd_bytes, "PSD", id="psd"),
    pytest.param(
        lambda: (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b"<script>alert(1)</script></svg>"
        ),
        "SVG",
        id="svg",
    ),
    pytest.param(
        lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG", id="xml"
    ),
    pytest.param(lambda: b"<!DOCTYPE html>\n<html>" + PAYLOAD + b"</html>", "HTML", id="html"),
    pytest.param(lambda: b"\n  <html><body>hello</body></html>", "HTML", id="html-indented"),
    pytest.param(lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "PDF", id="pdf"),
    pytest.param(lambda: b"just some text, not an image\n" * 10, None, id="text"),
    pytest.param(lambda: bytes(range(256)) * 4, None, id="binary-noise"),
]


@pytest.mark.parametrize(("make", "looks_like"), REFUSED_FORMATS)
def test_other_formats_sent_as_jpeg_are_refused(site, make, looks_like):
    data = make()
    if looks_like in ("GIF", "TIFF", "WEBP", "BMP", "PSD"):
        with Image.open(io.BytesIO(data)) as real:  # a real file of that format
            assert real.format == looks_like
    before = site.snapshot()
    response = site.upload(Part(data, "photo.jpg", "image/jpeg"))
    detail = f"looks like {looks_like}" if looks_like else "not an image"
    site.refused(
        response,
        before,
        code="format",
        file="photo.jpg",
        words=(detail, "allowed formats are JPEG and PNG"),
    )


# -- polyglots: an image with HTML/JS appended ----------------------------------------


@pytest.mark.parametrize(
    ("image", "name", "content_type", "extension", "mime"),
    [
        pytest.param(
            png_bytes((300, 200), seed=140), "cat.png", "image/png", ".png", "image/png", id="png"
        ),
        pytest.param(
            png_bytes((300, 200), seed=141),
            "cat.html",
            "text/html",
            ".png",
            "image/png",
            id="png-named-html",
        ),
        pytest.param(
            jpeg_bytes((300, 200), seed=142),
            "cat.svg",
            "image/svg+xml",
            ".jpg",
            "image/jpeg",
            id="jpeg-named-svg",
        ),
    ],
)
def test_image_with_html_appended_is_only_served_re_encoded(
    site, settings, image, name, content_type, extension, mime
):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (150, 150)}
    data = image + PAYLOAD
    with Image.open(io.BytesIO(data)) as im:  # Pillow's own checks pass
        im.verify()
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, name, content_type)), before)

    # The original is kept as sent, under a name that only an image type fits.
    assert Path(row.original.name).suffix == extension
    assert mimetypes.guess_type(row.original.name) == (mime, None)
    assert stored_bytes(row) == data

    row, resized, out = process(row.pk)
    assert out.size == (150, 100)
    for marker in MARKERS:
        assert marker not in resized
    assert not resized.endswith(PAYLOAD)
    assert row.resized.name != row.original.name

    # Pages show the re-encoded copy only.
    page = site.client.get(f"/images/{row.pk}/")
    assert page.status_code == 200
    assert f'src="{row.resized.url}"'.encode() in page.content
    assert row.original.url.encode() not in page.content
    api = site.client.get(f"/api/images/{row.pk}/").json()
    assert api["resized_url"] == row.resized.url
    assert api["original_url"].endswith(extension)


# -- damaged files and pixel bombs ------------------------------------------------------


def _flipped_idat_byte() -> bytes:
    data = bytearray(png_bytes((200, 150), seed=150))
    data[data.index(b"IDAT") + 100] ^= 0xFF
    return bytes(data)


_JPEG = jpeg_bytes((200, 150), seed=151)
_PNG = png_bytes((200, 150), seed=152)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(_JPEG[: len(_JPEG) // 2], "half.jpg", id="jpeg-half"),
        pytest.param(_JPEG[:-2], "no-eoi.jpg", id="jpeg-without-end-marker"),
        pytest.param(_JPEG[:20], "header.jpg", id="jpeg-cut-in-header"),
        pytest.param(_PNG[: len(_PNG) // 2], "half.png", id="png-half"),
        pytest.param(_PNG[:-12], "no-iend.png", id="png-without-iend"),
        pytest.param(_PNG[:33], "header.png", id="png-cut-after-ihdr"),
        pytest.param(_flipped_idat_byte(), "crc.png", id="png-bad-crc"),
    ],
)
def test_damaged_image_is_refused_as_corrupt(site, data, name):
    before = site.snapshot()
    site.refused(site.upload(Part(data, name)), before, code="corrupt", file=name)


@pytest.mark.storage_independent
def test_png_header_declaring_100000_by_100000_is_refused(site):
    data = png_declaring(100_000, 100_000)
    assert len(data) < 200
    before = site.snapshot()
    site.refused(
        site.upload(Part(data, "huge.png", "image/png")),
        before,
        code="max_pixels",
        file="huge.png",
        words=("10,000 megapixels", "the limit is 50 megapixels"),
    )


@pytest.mark.parametrize(
    ("fmt", "code", "words"),
    [
        ("PNG", "max_pixels", ("in 3 frames", "the limit is 0.025 megapixels")),
        ("GIF", "format", ("looks like GIF",)),  # never allowed, however small
    ],
)
@pytest.mark.storage_independent
def test_animation_whose_frames_together_exceed_max_pixels_is_refused(
    site, settings, fmt, code, words
):
    settings.IMAGE_SYNC = {"MAX_PIXELS": 25_000}
    data = animation(fmt, 3)  # 10 000 px a frame, 30 000 together
    with Image.open(io.BytesIO(data)) as im:
        assert (im.format, im.n_frames) == (fmt, 3)
    name = f"anim.{fmt.lower()}"
    before = site.snapshot()
    site.refused(site.upload(Part(data, name)), before, code=code, file=name, words=words)


@pytest.mark.storage_independent
def test_animated_png_within_max_pixels_is_accepted_and_processed(site, settings):
    settings.IMAGE_SYNC = {"MAX_PIXELS": 30_000, "TARGET_SIZE": (50, 50)}
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(animation("PNG", 3), "anim.png", "image/png")), before)
    assert (row.format, row.width, row.height) == ("PNG", 100, 100)
    _, _, out = process(row.pk)
    assert out.size == (50, 50)


BOMB_LIMIT = 10_000


@pytest.mark.parametrize(
    ("fmt", "size", "raised"),
    [
        pytest.param("JPEG", (101, 100), Image.DecompressionBombWarning, id="jpeg-1.01x"),
        pytest.param("PNG", (150, 100), Image.DecompressionBombWarning, id="png-1.5x"),
        pytest.param("JPEG", (199, 100), Image.DecompressionBombWarning, id="jpeg-1.99x"),
        pytest.param("PNG", (201, 100), Image.DecompressionBombError, id="png-2.01x"),
    ],
)
@pytest.mark.storage_independent
def test_image_past_pillows_bomb_threshold_is_refused(site, monkeypatch, fmt, size, raised):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BOMB_LIMIT)
    data = encode(photo_like(size, seed=160), fmt)
    with pytest.raises(raised):  # warnings are errors here: Pillow's own verdict
        Image.open(io.BytesIO(data))
    name = f"bomb.{fmt.lower()}"
    before = site.snapshot()
    site.refused(site.upload(Part(data, name)), before, code="max_pixels", file=name)


# Raw EXIF blocks as a JPEG APP1 segment carries them.
MALFORMED_EXIF = [
    pytest.param(b"Exif\x00\x00garbage", id="garbage-after-header"),
    pytest.param(b"garbage", id="no-header"),
    pytest.param(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12", id="cut-ifd"),
    pytest.param(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", id="offset-past-end"),
]


@pytest.mark.parametrize("exif", MALFORMED_EXIF)
@pytest.mark.storage_independent
def test_photo_with_malformed_exif_is_accepted_under_the_bomb_threshold(
    site, settings, monkeypatch, exif
):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BOMB_LIMIT)
    settings.IMAGE_SYNC = {"TARGET_SIZE": (50, 50)}
    data = encode(photo_like((100, 100), seed=161), "JPEG", exif=exif)
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, "camera.jpg")), before)
    assert (row.width, row.height) == (100, 100)
    _, _, out = process(row.pk)
    assert out.size == (50, 50)


@pytest.mark.parametrize("name", ["Canon_40D.jpg", "Nikon_D70.jpg", "Pentax_K10D.jpg"])
@pytest.mark.storage_independent
def test_camera_photo_is_accepted_under_the_bomb_threshold(site, monkeypatch, corpus, name):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BOMB_LIMIT)
    data = (corpus / name).read_bytes()
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, name)), before)
    assert row.width * row.height <= BOMB_LIMIT
    process(row.pk)


# -- colour modes -----------------------------------------------------------------------

WHITE = (255, 255, 255)
MODES = {
    # name: (bytes, probes: colour expected left and right in the output)
    "cmyk-jpeg": (
        lambda: encode(halves("CMYK", (0, 255, 255, 0), (255, 0, 0, 0)), "JPEG", quality=95),
        "CMYK",
        ((255, 0, 0), (0, 255, 255)),
    ),
    "16-bit-png": (sixteen_bit_png, "I;16", ((128, 128, 128), WHITE)),
    "palette-png-with-transparency": (palette_with_transparency, "P", (WHITE, (255, 0, 0))),
    "rgba-png": (
        lambda: encode(halves("RGBA", (0, 255, 0, 0), (0, 0, 255, 255)), "PNG"),
        "RGBA",
        (WHITE, (0, 0, 255)),
    ),
    "rgb-png-with-colour-key": (
        lambda: encode(halves("RGB", (0, 255, 0), (0, 0, 255)), "PNG", transparency=(0, 255, 0)),
        "RGB",
        (WHITE, (0, 0, 255)),
    ),
    "grey-jpeg": (lambda: encode(halves("L", 60, 200), "JPEG"), "L", ((60,) * 3, (200,) * 3)),
    "grey-png": (lambda: encode(halves("L", 60, 200), "PNG"), "L", ((60,) * 3, (200,) * 3)),
    "grey-alpha-png": (
        lambda: encode(halves("LA", (0, 0), (60, 255)), "PNG"),
        "LA",
        (WHITE, (60,) * 3),
    ),
    "bilevel-png": (lambda: encode(halves("1", 0, 255), "PNG"), "1", ((0,) * 3, WHITE)),
    "palette-png": (
        lambda: encode(halves("RGB", (255, 0, 0), (0, 0, 255)).convert("P"), "PNG"),
        "P",
        ((255, 0, 0), (0, 0, 255)),
    ),
}


@pytest.mark.parametrize("case", list(MODES))
@pytest.mark.storage_independent
def test_unusual_colour_modes_are_processed(site, settings, case):
    make, source_mode, (left, right) = MODES[case]
    settings.IMAGE_SYNC = {"TARGET_SIZE": (32, 32)}
    data = make()
    with Image.open(io.BytesIO(data)) as source:
        assert source.mode == source_mode
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, f"{case}.img", "image/jpeg")), before)
    assert (row.width, row.height) == (64, 48)

    _, _, out = process(row.pk)

    assert out.size == (32, 24)
    rgb = out.convert("RGB")
    assert close(rgb.getpixel((6, 12)), left)
    assert close(rgb.getpixel((26, 12)), right)


# -- EXIF -----------------------------------------------------------------------------------


def is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 180 and pixel[1] < 90 and pixel[2] < 90


def is_white(pixel: tuple[int, ...]) -> bool:
    return min(pixel[:3]) > 180


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.storage_independent
def test_exif_orientation_gives_upright_output(site, settings, orientation):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (80, 80)}
    before = site.snapshot()
    response = site.upload(Part(oriented_marker(orientation), f"turned-{orientation}.jpg"))
    [row] = site.accepted(response, before)
    assert (row.width, row.height) == (160, 120)  # as displayed

    _, resized, out = process(row.pk)

    assert out.size == (80, 60)
    rgb = out.convert("RGB")
    assert is_red(rgb.getpixel((8, 6)))
    assert is_white(rgb.getpixel((72, 6)))
    assert is_white(rgb.getpixel((8, 54)))
    assert is_white(rgb.getpixel((72, 54)))
    assert not out.getexif()  # nothing left for a viewer to rotate a second time
    assert b"Exif\x00\x00" not in resized


def _png_with_raw_exif(raw: bytes) -> bytes:
    """A PNG whose eXIf chunk holds ``raw`` as is."""
    png = png_bytes((64, 48), seed=170)
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + png_chunk(b"eXIf", raw) + png[iend:]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(jpeg_bytes((64, 48), seed=171, orientation=65535), id="orientation-65535"),
        pytest.param(jpeg_bytes((64, 48), seed=172, orientation=0), id="orientation-0"),
        pytest.param(jpeg_bytes((64, 48), seed=173, orientation=9), id="orientation-9"),
        *(
            pytest.param(
                encode(photo_like((64, 48), seed=174 + i), "JPEG", exif=case.values[0]),
                id=f"jpeg-{case.id}",
                marks=case.marks,
            )
            for i, case in enumerate(MALFORMED_EXIF)
        ),
        pytest.param(
            _png_with_raw_exif(b"MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12"),
            id="png-cut",
        ),
        pytest.param(
            _png_with_raw_exif(b"garbage"),
            id="png-garbage",
        ),
    ],
)
@pytest.mark.storage_independent
def test_strange_or_malformed_exif_is_not_an_error(site, settings, data):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (32, 32)}
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, "odd-exif.jpg")), before)
    assert (row.width, row.height) == (64, 48)  # treated as upright

    _, resized, out = process(row.pk)

    assert out.size == (32, 24)
    assert b"Exif\x00\x00" not in resized


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # as in production
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            encode(photo_like((64, 48), seed=178), "JPEG", exif=MALFORMED_EXIF[2].values[0]),
            id="jpeg-cut-ifd",
        ),
        pytest.param(
            encode(photo_like((64, 48), seed=179), "JPEG", exif=MALFORMED_EXIF[3].values[0]),
            id="jpeg-offset-past-end",
        ),
        pytest.param(_png_with_raw_exif(b"MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12"), id="png-cut"),
    ],
)
@pytest.mark.storage_independent
def test_malformed_exif_is_accepted_where_pillows_warning_is_only_a_warning(site, settings, data):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (32, 32)}
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, "odd-exif.jpg")), before)
    _, _, out = process(row.pk)
    assert out.size == (32, 24)


def test_gps_in_the_original_is_in_no_served_output(site, settings):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (100, 100)}
    data = gps_jpeg()
    assert has_gps(data)
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, "where.jpg")), before)
    assert has_gps(stored_bytes(row))  # the original is kept as sent

    row, resized, out = process(row.pk)

    assert not out.getexif()
    assert b"Exif\x00\x00" not in resized
    assert b"CameraMaker" not in resized
    # The pages show that copy, never the original.
    page = site.client.get(f"/images/{row.pk}/")
    assert f'src="{row.resized.url}"'.encode() in page.content
    assert row.original.url.encode() not in page.content


# -- the sample photos ------------------------------------------------------------------


def _luma(im: Image.Image) -> Image.Image:
    # The corpus' orientation 1 files use another tone curve than 2..8: equalise.
    return ImageOps.equalize(im.convert("L"))


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
@pytest.mark.storage_independent
def test_corpus_orientations_come_out_upright(site, settings, corpus, kind):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (200, 200)}
    upright = (200, 150) if kind == "landscape" else (150, 200)
    outputs = {}
    for n in range(1, 9):
        before = site.snapshot()
        name = f"{kind}_{n}.jpg"
        [row] = site.accepted(
            site.upload(Part((corpus / "orientation" / name).read_bytes(), name)), before
        )
        _, resized, out = process(row.pk)
        assert out.size == upright, name
        assert b"Exif\x00\x00" not in resized
        outputs[n] = _luma(out)
    for n in range(2, 9):
        diff = ImageStat.Stat(ImageChops.difference(outputs[n], outputs[1])).mean[0]
        assert diff < 12, f"{kind}_{n}"  # a wrong flip or rotation: 40 or more


@pytest.mark.parametrize(
    "path",
    [
        "Canon_40D.jpg",
        "Nikon_D70.jpg",
        "Pentax_K10D.jpg",
        "gps/DSCN0010.jpg",
        "gps/DSCN0012.jpg",
        "mobile/jolla.jpg",
        "hdr/iphone_hdr_YES.jpg",
    ],
)
@pytest.mark.storage_independent
def test_corpus_photo_is_accepted_and_no_output_keeps_its_metadata(site, settings, corpus, path):
    settings.IMAGE_SYNC = {"TARGET_SIZE": (320, 320)}
    data = (corpus / path).read_bytes()
    name = Path(path).name
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(data, name)), before)
    assert stored_bytes(row) == data
    if path.startswith("gps/"):
        assert has_gps(data)

    _, resized, out = process(row.pk)

    assert max(out.size) == 320 or out.size == (row.width, row.height)
    assert not out.getexif()
    assert b"Exif\x00\x00" not in resized


# -- hostile file names ------------------------------------------------------------------

LONG_STEM = "n" * 296
WIDE_STEM = "\u0436" * 296  # Cyrillic zhe: two bytes in UTF-8
HOSTILE_NAMES = [
    # (sent in the Content-Disposition header, the name the site may show)
    pytest.param(b"../../etc/passwd.jpg", "passwd.jpg", id="parent-dirs"),
    pytest.param(b"/etc/passwd.jpg", "passwd.jpg", id="absolute"),
    pytest.param(b"C:\\x.jpg", "x.jpg", id="windows-drive"),
    pytest.param(b"..\\..\\windows\\win.ini.jpg", "win.ini.jpg", id="windows-parent-dirs"),
    pytest.param(b"a\x00b.jpg", "ab.jpg", id="nul"),
    pytest.param(b"x.jpg\x00.php", "x.jpg.php", id="nul-before-extension"),
    pytest.param(b"tab\tand\r.jpg", "taband.jpg", id="control-chars"),
    pytest.param(f"{LONG_STEM}.jpg".encode(), "n" * 251 + ".jpg", id="300-chars"),
    pytest.param(f"{WIDE_STEM}.jpg".encode(), "\u0436" * 251 + ".jpg", id="300-non-ascii"),
    pytest.param(
        "\u65e5\u672c\u8a9e \U0001f4f7.jpg".encode(),
        "\u65e5\u672c\u8a9e \U0001f4f7.jpg",
        id="cjk-emoji",
    ),
    pytest.param(b"&lt;b&gt;.jpg", "<b>.jpg", id="html-entities"),
]


def _outside_media() -> set[str]:
    """Files beside MEDIA_ROOT (its parent folder), MEDIA_ROOT itself excluded."""
    media = Path(django_settings.MEDIA_ROOT)
    found = set()
    for path in media.parent.rglob("*"):
        sqlite_own = path.name.endswith(("-journal", "-wal", "-shm"))
        if path.is_file() and media not in path.parents and not sqlite_own:
            found.add(str(path))
    return found


@pytest.mark.parametrize(("sent", "shown"), HOSTILE_NAMES)
def test_hostile_file_name_is_display_only(site, sent, shown):
    data = jpeg_bytes(seed=180)
    outside = _outside_media()
    before = site.snapshot()

    [row] = site.accepted(site.upload(Part(data, sent)), before)

    assert row.original_name == shown
    sha256 = processing.hash_file(io.BytesIO(data))[1]
    assert row.original.name == f"image_sync/originals/{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"
    assert media_files() - before.media == {row.original.name}
    assert _outside_media() == outside
    assert not (Path(django_settings.MEDIA_ROOT) / "../../etc/passwd.jpg").resolve().exists()


@pytest.mark.parametrize(("sent", "shown"), HOSTILE_NAMES)
def test_hostile_file_name_in_a_refusal_is_the_sanitised_name(site, sent, shown):
    outside = _outside_media()
    before = site.snapshot()
    response = site.upload(Part(b"GIF89a" + bytes(40), sent))
    site.refused(response, before, code="format", file=shown, words=("looks like GIF",))
    assert _outside_media() == outside


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"x." + b"a" * 298, id="300-chars-ascii-extension"),
        pytest.param(("x." + "\u0436" * 298).encode(), id="300-chars-non-ascii-extension"),
    ],
)
def test_300_char_name_with_a_long_extension_is_not_a_500(site, sent):
    outside = _outside_media()
    before = site.snapshot()
    response = site.upload(Part(b"GIF89a" + bytes(40), sent))
    assert response.status_code == 400
    [error] = response.json()["errors"]["images"]
    assert 0 < len(error["file"]) <= 255
    site.refused(response, before, code="format", file=error["file"])
    assert _outside_media() == outside


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b".", id="dot"),
        pytest.param(b"..", id="dot-dot"),
        pytest.param(b"uploads/", id="folder"),
        pytest.param(b"\x00\x01\x7f", id="control-only"),
    ],
)
def test_empty_file_name_is_no_file(site, sent):
    before = site.snapshot()
    response = site.upload(Part(jpeg_bytes(seed=181), sent))
    site.refused(response, before, code="required")


def test_markup_in_a_file_name_is_escaped_on_the_html_page(site):
    name = "<img src=x onerror=alert(1)>.jpg"
    before = site.snapshot()
    response = site.upload(Part(b"not an image", name.encode()), url=HTML_UPLOAD)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"<img src=x" not in response.content
    assert (
        b"&lt;img src=x onerror=alert(1)&gt;.jpg: its content is not an image" in response.content
    )
    site.assert_nothing_left(before)

    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(jpeg_bytes(seed=182), name.encode())), before)
    process(row.pk)
    gallery = site.client.get("/images/")
    assert gallery.status_code == 200
    assert b"<img src=x" not in gallery.content
    assert b"&lt;img src=x onerror=alert(1)&gt;.jpg" in gallery.content


# -- broken requests ------------------------------------------------------------------------

GOOD = jpeg_bytes((64, 48), seed=190)
FULL = multipart(Part(GOOD, "a.jpg"))
CLOSING = f"--{BOUNDARY}--\r\n".encode()
BASE64 = b"Content-Transfer-Encoding: base64\r\n"


def _fields(count: int) -> bytes:
    return multipart(*(Part(b"x", None, None, field=f"f{i}") for i in range(count)))


UNREADABLE = [
    # (body, content type, extra WSGI environ): Django cannot parse these at all.
    pytest.param(FULL, "multipart/form-data", {}, id="no-boundary"),
    pytest.param(FULL, "multipart/form-data; boundary=\u00e9", {}, id="non-ascii-boundary"),
    pytest.param(FULL, MULTIPART, {"CONTENT_LENGTH": "-5"}, id="negative-length"),
    pytest.param(
        f"--{BOUNDARY}\r\n".encode() + b"X-Junk: " + b"a" * 20_000,
        MULTIPART,
        {},
        id="endless-part-headers",
    ),
    pytest.param(
        multipart(*(Part(b"x", f"f{i}.jpg") for i in range(101))),
        MULTIPART,
        {},
        id="more-files-than-django-allows",
    ),
    pytest.param(
        multipart(Part(GOOD, "a.jpg"), Part(b"x" * (2_621_440 + 1), None, None, field="note")),
        MULTIPART,
        {},
        id="field-over-data-upload-max-memory-size",
    ),
    pytest.param(
        _fields(1001),
        MULTIPART,
        {},
        id="more-fields-than-django-allows",
    ),
    pytest.param(
        multipart(Part(b"!!not base64!!" * 10, "a.jpg", headers=BASE64)),
        MULTIPART,
        {},
        id="bad-base64-part",
    ),
    pytest.param(
        multipart(Part(b"QUJD" * 100 + b"QU", "a.jpg", headers=BASE64)),
        MULTIPART,
        {},
        id="cut-base64-part",
    ),
]


@pytest.mark.parametrize("url", [API, HTML_UPLOAD], ids=["api", "html"])
@pytest.mark.parametrize(("body", "content_type", "extra"), UNREADABLE)
def test_unreadable_multipart_body_is_a_json_bad_request(site, url, body, content_type, extra):
    before = site.snapshot()
    response = site.send(
        body, content_type=content_type, url=url, HTTP_ACCEPT="application/json", **extra
    )
    site.refused(response, before, code="bad_request", words=("could not be read",))


@pytest.mark.parametrize(("body", "content_type", "extra"), UNREADABLE)
def test_unreadable_multipart_body_on_the_page_is_a_plain_bad_request(
    site, body, content_type, extra
):
    before = site.snapshot()
    response = site.send(body, content_type=content_type, url=HTML_UPLOAD, **extra)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert b"could not be read" in response.content
    site.assert_nothing_left(before)


CUT_OFF = [
    # (body, content type, extra WSGI environ): Django reads these as carrying no file.
    pytest.param(FULL[: len(FULL) // 2], MULTIPART, {}, id="cut-inside-the-file"),
    pytest.param(FULL[:60], MULTIPART, {}, id="cut-inside-the-part-headers"),
    pytest.param(multipart(Part(GOOD, "a.jpg"), close=False), MULTIPART, {}, id="no-closing"),
    pytest.param(FULL, "multipart/form-data; boundary=other", {}, id="wrong-boundary"),
    pytest.param(
        FULL, MULTIPART, {"CONTENT_LENGTH": str(len(FULL) - 300)}, id="body-larger-than-announced"
    ),
    pytest.param(
        FULL,
        MULTIPART,
        {"CONTENT_LENGTH": str(len(FULL) - len(CLOSING))},
        id="announced-without-the-closing-boundary",
    ),
    pytest.param(
        FULL,
        MULTIPART,
        {"CONTENT_LENGTH": str(len(FULL)), "wsgi.input": FULL[:-300]},
        id="body-shorter-than-announced",
    ),
    pytest.param(FULL, MULTIPART, {"CONTENT_LENGTH": "many"}, id="length-not-a-number"),
    pytest.param(FULL, MULTIPART, {"CONTENT_LENGTH": "0"}, id="length-zero"),
]


@pytest.mark.parametrize("url", [API, HTML_UPLOAD], ids=["api", "html"])
@pytest.mark.parametrize(("body", "content_type", "extra"), CUT_OFF)
def test_cut_off_or_mislabelled_body_is_refused(site, url, body, content_type, extra):
    if "wsgi.input" in extra:
        # What a server hands over when the client stops early: a stream that ends.
        extra = {**extra, "wsgi.input": io.BytesIO(extra["wsgi.input"])}
    before = site.snapshot()
    response = site.send(body, content_type=content_type, url=url, **extra)
    assert response.status_code == 400
    if url == HTML_UPLOAD and response["Content-Type"].startswith("text/html"):
        assert b"This field is required." in response.content  # the form, shown again
    else:
        assert response["Content-Type"] == "application/json"
        [(key, [error])] = response.json()["errors"].items()
        assert (key, error["code"]) in {("images", "required"), ("__all__", "bad_request")}
        assert error["file"] is None
    site.assert_nothing_left(before)


NO_FILE_FIELD = [
    pytest.param(multipart(Part(b"hello", None, None, field="title")), MULTIPART, id="text-only"),
    pytest.param(multipart(Part(GOOD, "a.jpg", field="image")), MULTIPART, id="other-field-name"),
    pytest.param(multipart(Part(GOOD, None, "image/jpeg")), MULTIPART, id="images-as-a-field"),
    pytest.param(
        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode() + GOOD + b"\r\n" + CLOSING,
        MULTIPART,
        id="part-without-disposition",
    ),
    pytest.param(multipart(), MULTIPART, id="no-parts"),
    pytest.param(b"", MULTIPART, id="empty-body"),
    pytest.param(b"images=photo.jpg", "application/x-www-form-urlencoded", id="urlencoded"),
    pytest.param(b'{"images": ["photo.jpg"]}', "application/json", id="json"),
    pytest.param(GOOD, "image/jpeg", id="bare-jpeg-body"),
]


@pytest.mark.parametrize(("body", "content_type"), NO_FILE_FIELD)
def test_request_without_a_file_field_is_refused(site, body, content_type):
    before = site.snapshot()
    response = site.send(body, content_type=content_type)
    site.refused(response, before, code="required")


def test_html_view_refuses_a_bad_file_among_good_ones_and_keeps_nothing(site, settings):
    settings.IMAGE_SYNC = {"MAX_FILES": 3}
    before = site.snapshot()
    response = site.upload(
        Part(jpeg_bytes(seed=191), "one.jpg"),
        Part(b"", "hole.jpg"),
        Part(jpeg_bytes(seed=192), "two.jpg"),
        url=HTML_UPLOAD,
    )
    assert response.status_code == 400
    assert b"hole.jpg: the file is empty" in response.content
    site.assert_nothing_left(before)


# -- cheap to send, expensive to decode (issue 8) ---------------------------------
# The defaults: MAX_JPEG_SCANS 100, MAX_DECODE_MEMORY 256 MB (Pillow backend),
# MAX_PIXELS 50 MP. Each file is a few hundred KB at most.


@pytest.mark.parametrize("scans", [101, 1_000, 60_001])
@pytest.mark.storage_independent
def test_progressive_jpeg_with_too_many_scans_is_refused(site, scans):
    data = progressive_jpeg((3000, 3000), scans)
    assert len(data) < 1_500_000
    before = site.snapshot()
    site.refused(
        site.upload(Part(data, "scans.jpg")),
        before,
        code="max_jpeg_scans",
        file="scans.jpg",
        words=(f"progressive JPEG with {scans:,} scans", "at most 100 are accepted"),
    )


@pytest.mark.storage_independent
def test_progressive_jpeg_with_exactly_max_scans_is_accepted_and_processed(site):
    before = site.snapshot()
    [row] = site.accepted(
        site.upload(Part(progressive_jpeg((3000, 3000), 100), "scans.jpg")), before
    )
    _, _, out = process(row.pk)
    assert out.size == (1080, 1080)


def test_scan_limit_is_a_setting(site, settings):
    settings.IMAGE_SYNC = {"MAX_JPEG_SCANS": 9}
    before = site.snapshot()
    site.refused(
        site.upload(Part(progressive_jpeg((300, 200), 10), "ten.jpg")),
        before,
        code="max_jpeg_scans",
        file="ten.jpg",
        words=("10 scans", "at most 9"),
    )


@pytest.mark.parametrize(
    ("make", "words"),
    [
        # 50 MP RGBA: decoded whole (4 B/px) plus the premultiplied copy resize makes.
        pytest.param(
            lambda: plain_png(7070, 7070),
            ("about 484.9\xa0MB", "7070×7070"),  # noqa: RUF001
            id="rgba-50mp",
        ),
        # Just past the line: 5000x5000 RGBA needs 258 MB.
        pytest.param(lambda: plain_png(5000, 5000), ("about 258.5\xa0MB",), id="rgba-25mp"),
        # By bit depth: 16-bit grey goes through two 32-bit copies (8-bit grey passes).
        pytest.param(
            lambda: plain_png(5000, 5000, mode="L", depth=16),
            ("about 312.1\xa0MB",),
            id="grey16-25mp",
        ),
        # By palette: expanded to RGBA next to the palette image.
        pytest.param(
            lambda: plain_png(7070, 7070, mode="P"), ("about 341.9\xa0MB",), id="palette-50mp"
        ),
        # An APNG is refused for its frame's size (only the first frame is decoded).
        pytest.param(
            lambda: plain_png(4600, 4600, mode="L", depth=16, frames=2),
            ("about 269.1\xa0MB",),
            id="apng-grey16-21mp-2-frames",
        ),
    ],
)
@pytest.mark.storage_independent
def test_png_over_the_decode_memory_budget_is_refused(site, settings, make, words):
    data = make()
    assert len(data) < 1_000_000
    before = site.snapshot()
    site.refused(
        site.upload(Part(data, "big.png", "image/png")),
        before,
        code="max_decode_memory",
        file="big.png",
        words=("of memory to resize", "the limit is 256.0\xa0MB", *words),
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: plain_png(4950, 4950), id="rgba-24.5mp"),
        pytest.param(lambda: plain_png(5000, 5000, mode="L"), id="grey8-25mp"),
        pytest.param(lambda: plain_png(4450, 4450, mode="L", depth=16), id="grey16-19.8mp"),
    ],
)
@pytest.mark.storage_independent
def test_largest_png_inside_the_decode_memory_budget_is_accepted_and_processed(site, make):
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(make(), "big.png", "image/png")), before)
    _, _, out = process(row.pk)
    assert out.size == (1080, 1080)


@pytest.mark.storage_independent
def test_apng_frames_do_not_count_towards_decode_memory(site):
    """Only the first frame is ever decoded: a 2-frame APNG costs what one frame does
    (measured: 85.8 MB for 4 frames of 3000x3000 RGBA, 85.9 MB for one)."""
    one, two = plain_png(4000, 3000), plain_png(4000, 3000, frames=2)
    limits = {"allowed_formats": ["PNG"], "max_pixels": 50_000_000, "box": (1920, 1080)}
    single = processing.inspect_image(io.BytesIO(one), **limits)
    animated = processing.inspect_image(io.BytesIO(two), **limits)
    assert (single.frames, animated.frames) == (1, 2)
    assert animated.decode_memory == single.decode_memory
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(two, "anim.png", "image/png")), before)
    _, _, out = process(row.pk)
    assert out.size == (1440, 1080)


@pytest.mark.storage_independent
def test_decode_memory_budget_follows_the_backend(site, settings):
    """The libvips backend streams a non-interlaced PNG: the 50 MP RGBA PNG the
    Pillow backend refuses is accepted there (and an interlaced one is not)."""
    settings.IMAGE_SYNC = {"BACKEND": "vips"}
    before = site.snapshot()
    site.accepted(site.upload(Part(plain_png(7070, 7070), "big.png", "image/png")), before)
    settings.IMAGE_SYNC = {"BACKEND": "vips", "MAX_DECODE_MEMORY": 128 * 1024 * 1024}
    before = site.snapshot()
    site.refused(
        site.upload(Part(plain_png(6000, 6000, interlace=True), "laced.png", "image/png")),
        before,
        code="max_decode_memory",
        file="laced.png",
        words=("the limit is 128.0\xa0MB",),
    )


@pytest.mark.storage_independent
def test_decode_memory_budget_can_be_turned_off(site, settings):
    settings.IMAGE_SYNC = {"MAX_DECODE_MEMORY": None}
    before = site.snapshot()
    [row] = site.accepted(site.upload(Part(plain_png(7070, 7070), "big.png", "image/png")), before)
    assert row.width == 7070
