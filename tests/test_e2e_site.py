"""End to end: a brand-new Django site installs the built wheel and runs it for real.

``django-admin startproject`` makes the site. It pip-installs the wheel built from
this checkout (never the source tree), adds the app to INSTALLED_APPS, includes its
URLconf under ``photos/``, migrates a fresh PostgreSQL database and serves over real
HTTP (gunicorn, else runserver) next to a real Celery worker on Redis.

Camera photos sent through the JSON API come out fitting 1920x1080, upright and
without GPS, with every rendition (each width in JPEG, AVIF and WebP) served,
decodable, of its declared size and upright, and the gallery's <picture> tags
listing them; the same bytes again are reported as duplicates and store nothing;
broken files get a 400 naming them and leave nothing behind.

On an S3 run (``IMAGE_SYNC_TEST_S3=1``) the site keeps its files on S3 instead:
django-storages' ``S3Storage`` on the session's moto server, with public URLs
of the bucket, which the test fetches and compares with the stored objects.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import secrets
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from PIL import Image, ImageChops, ImageStat

from tests.conftest import CORPUS, redis_reachable, service_unavailable
from tests.images import encode, jpeg_bytes, photo_like
from tests.support import processes, s3, services
from tests.support.processes import free_port
from tests.support.services import PG, postgres_database

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.name != "posix", reason="drives POSIX processes and venv layout"),
]

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "django_image_sync"
BOX = (1920, 1080)
EXIF_GPS_IFD = 0x8825
# Bounds, in seconds, so a hang fails the test instead of the CI job.
COMMAND_TIMEOUT = 120
START_TIMEOUT = 30
PROCESSING_TIMEOUT = 60
HTTP_TIMEOUT = 30
# Mean absolute difference (0-255) below which two renderings are "the same picture".
# The corpus's orientation/portrait_N files each carry their own label, so even
# perfectly applied they differ from portrait_1 by about 16; a wrong turn or mirror
# differs by 40 or more.
SAME_PICTURE = 25.0
WRONG_WAYS = (
    Image.Transpose.ROTATE_180,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
)


# -- the photos -----------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    # Bytes whose plain decode (no EXIF applied) shows how the photo must look.
    upright: bytes
    has_gps: bool


@dataclass(frozen=True)
class PhotoSet:
    first: list[Photo]  # one submission: a large GPS photo and an EXIF-rotated one
    second: list[Photo]  # another submission
    spare: Photo  # valid and never stored: it rides along with a broken file
    truncated: bytes  # a photo cut in half
    source: str


def corpus_photos(root: Path) -> PhotoSet:
    def photo(relative: str, upright: str | None = None, *, gps: bool = False) -> Photo:
        data = (root / relative).read_bytes()
        reference = (root / upright).read_bytes() if upright else data
        return Photo(Path(relative).name, data, reference, gps)

    spare = photo("gps/DSCN0012.jpg", gps=True)
    return PhotoSet(
        first=[
            photo("hdr/iphone_hdr_YES.jpg", gps=True),  # 3264x2448
            photo("orientation/portrait_6.jpg", "orientation/portrait_1.jpg"),
        ],
        second=[photo("gps/DSCN0010.jpg", gps=True), photo("mobile/jolla.jpg")],
        spare=spare,
        truncated=spare.data[: len(spare.data) // 2],
        source=f"camera photos from {root}",
    )


def generated_photos() -> PhotoSet:
    """Stand-ins when the corpus is absent: same traits, made on the fly."""

    def photo(name: str, size: tuple[int, int], seed: int, **exif: Any) -> Photo:
        stored = photo_like(size, seed=seed)
        upright = stored
        if exif.get("orientation") == 6:  # displayed turned 90 degrees clockwise
            upright = stored.transpose(Image.Transpose.ROTATE_270)
        data = jpeg_bytes(size, seed=seed, **exif)
        return Photo(name, data, encode(upright, "JPEG", quality=95), bool(exif.get("gps")))

    spare = photo("spare.jpg", (800, 600), 15, gps=True)
    return PhotoSet(
        first=[
            photo("big_gps.jpg", (3000, 2000), 11, gps=True),
            photo("rotated_6.jpg", (1800, 1200), 12, orientation=6),
        ],
        second=[
            photo("small_gps.jpg", (640, 480), 13, gps=True),
            photo("wide.jpg", (2600, 1400), 14),
        ],
        spare=spare,
        truncated=jpeg_bytes((800, 600), seed=16)[:20_000],
        source="generated JPEGs (corpus absent)",
    )


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.copy()


def expected_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, BOX[0] / width, BOX[1] / height)
    return round(width * scale), round(height * scale)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    return sum(stat.mean) / len(stat.mean)


# -- building and installing -----------------------------------------------------


def run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout + result.stderr


def build_wheel(out: Path) -> Path:
    """Build the wheel from the checkout with the build backend of this environment."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip_wheel = [
        *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
        *("--no-index", "--no-cache-dir", "--disable-pip-version-check", "-w", str(out)),
        str(REPO),
    ]
    result = subprocess.run(
        pip_wheel, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if result.returncode != 0:  # older pip, or no pip: PyPA build without isolation
        build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out)]
        run([*build, str(REPO)], cwd=REPO, env=env)
    wheels = sorted(out.glob("django_image_sync-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}: {wheels}\n{result.stderr}"
    return wheels[0]


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(zf.read(f"{dist_info}/METADATA").decode())

    source = REPO / PACKAGE
    shipped = {
        path.relative_to(REPO).as_posix()
        for folder in ("templates", "static", "migrations", "templatetags")
        for path in (source / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    shipped.add(f"{PACKAGE}/py.typed")
    assert any(n.startswith(f"{PACKAGE}/templates/") for n in shipped)
    assert any(n.startswith(f"{PACKAGE}/static/") for n in shipped)
    assert any(n.startswith(f"{PACKAGE}/migrations/0001") for n in shipped)
    missing = sorted(shipped - names)
    assert not missing, f"the wheel lacks package data: {missing}"

    stray = sorted(
        n
        for n in names
        if n.startswith(("tests/", "example_project/", "scripts/", "docs/"))
        or "/tests/" in n
        or "__pycache__" in n
        or n.endswith(".pyc")
    )
    assert not stray, f"the wheel ships files it should not: {stray}"
    assert {n.split("/")[0] for n in names} == {PACKAGE, dist_info}

    requires = [r.lower() for r in metadata.get_all("Requires-Dist") or []]
    for dependency in ("django", "celery", "redis", "pillow"):
        assert any(r.startswith(dependency) for r in requires), (dependency, requires)


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """What the site's processes see: none of this test session's variables."""
    return {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(home)),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "VIRTUAL_ENV": str(venv),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def make_venv(venv: Path, wheel: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A venv holding the wheel; its dependencies come from this test environment.

    ``--system-site-packages`` would expose the base interpreter's packages, not
    this environment's, so a ``.pth`` lists this environment's site-packages
    instead. It is written after the install, so pip sees no other copy of the
    app; and a plain path line does not run that folder's own ``.pth`` files, so
    the editable install of the checkout stays out of the site's ``sys.path``.
    """
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent, env=env)
    python = venv / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            str(wheel),
        ],
        cwd=venv.parent,
        env=env,
    )
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(run([str(python), "-c", code], cwd=venv, env=env).strip())
    assert (site_packages / PACKAGE / "__init__.py").is_file()
    dependencies = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    assert str(REPO) not in dependencies
    (site_packages / "_e2e_test_dependencies.pth").write_text("\n".join(dependencies) + "\n")
    return python, site_packages


# -- the site ----------------------------------------------------------------------

CELERY_PY = """\
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

app = Celery("mysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""

URLS_ADDITION = """

# -- added by the django-image-sync end-to-end test
from django.conf import settings
from django.conf.urls.static import static
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include

urlpatterns += [path("photos/", include("django_image_sync.urls"))]
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
urlpatterns += staticfiles_urlpatterns()
"""


def configure_site(
    site: Path, *, database: str, marker: str, media: Path, s3_url: str | None = None
) -> None:
    """The site's settings; with ``s3_url``, its files on S3 there (django-storages)."""
    package = site / "mysite"
    overrides: dict[str, Any] = {
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": database,
                "USER": PG["user"],
                "HOST": PG["host"],
                "PORT": str(PG["port"]),
            }
        },
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": settings.REDIS_URL,
                "KEY_PREFIX": marker,
            }
        },
        "MEDIA_ROOT": str(media),
        "MEDIA_URL": "/media/",
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": marker,
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_WORKER_ENABLE_REMOTE_CONTROL": False,
        "IMAGE_SYNC": {"TARGET_SIZE": BOX},
    }
    if s3_url:
        overrides["STORAGES"] = {
            "default": s3.storage_settings(s3_url),
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    lines = ["", "", "# -- added by the django-image-sync end-to-end test"]
    lines.append(f"INSTALLED_APPS += [{PACKAGE!r}]")
    lines += [f"{name} = {value!r}" for name, value in overrides.items()]
    settings_py = package / "settings.py"
    text = settings_py.read_text()
    assert "INSTALLED_APPS = [" in text, text
    settings_py.write_text(text + "\n".join(lines) + "\n")

    urls_py = package / "urls.py"
    text = urls_py.read_text()
    assert "from django.urls import path" in text, text
    assert "urlpatterns = [" in text, text
    urls_py.write_text(text + URLS_ADDITION)

    (package / "celery.py").write_text(CELERY_PY)
    init_py = package / "__init__.py"
    init_py.write_text(
        'from .celery import app as celery_app\n\n__all__ = ("celery_app",)\n' + init_py.read_text()
    )


class Service(processes.Service):
    """A long-running process of the site, logging beside the site's folder."""

    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        super().__init__(name, argv, cwd=cwd, env=env, log=cwd.parent / f"{name}.log")

    def check_alive(self) -> None:
        if not self.alive():
            pytest.fail(f"{self.name} exited {self.process.returncode}:\n{self.output()}")


def wait_until_serving(web: Service, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        web.check_alive()
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/admin/login/", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"the site did not answer in {START_TIMEOUT} s:\n{web.output()}")


def wait_until_ready(worker: Service) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if " ready." in worker.output():
            return
        worker.check_alive()
        time.sleep(0.2)
    pytest.fail(f"the Celery worker was not ready in {START_TIMEOUT} s:\n{worker.output()}")


# -- services of this machine -------------------------------------------------------


def forget_redis_keys(marker: str) -> None:
    """Delete this run's cache entries, queue and queue binding."""
    services.forget_redis_keys(settings.REDIS_URL, f"*{marker}*")


def require_services() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(**PG, dbname="postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL is not reachable at {PG['host']}:{PG['port']}: {exc}")
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")


# -- talking to the site ---------------------------------------------------------------


def log_in(http: requests.Session, base: str, username: str, password: str) -> None:
    page = http.get(f"{base}/admin/login/", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200
    response = http.post(
        f"{base}/admin/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 302, response.text[:3000]
    assert "sessionid" in http.cookies


def post_images(http: requests.Session, base: str, files: list[tuple[str, bytes]]) -> Any:
    response = http.post(
        f"{base}/photos/api/images/",
        files=[("images", (name, data, "image/jpeg")) for name, data in files],
        headers={
            "X-CSRFToken": http.cookies["csrftoken"],
            "Accept": "application/json",
            "Referer": f"{base}/photos/upload-image/",
        },
        timeout=HTTP_TIMEOUT,
    )
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:3000]
    return response


def wait_processed(
    http: requests.Session, base: str, ids: list[int], services: list[Service]
) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + PROCESSING_TIMEOUT
    found: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for pk in ids:
            if pk in found:
                continue
            response = http.get(f"{base}/photos/api/images/{pk}/", timeout=HTTP_TIMEOUT)
            assert response.status_code == 200, response.text[:3000]
            data = response.json()
            if data["status"] in ("done", "failed"):
                found[pk] = data
        if len(found) == len(ids):
            return found
        for service in services:
            service.check_alive()
        time.sleep(0.2)
    logs = "\n".join(f"--- {s.name}\n{s.output()[-6000:]}" for s in services)
    pytest.fail(f"images {sorted(set(ids) - set(found))} not processed in time\n{logs}")


@dataclass(frozen=True)
class Media:
    """Where the site stores its files: ``root`` (MEDIA_ROOT, served under /media/),
    or the bucket at ``s3_url`` (public URLs of the bucket)."""

    root: Path
    s3_url: str | None = None

    @property
    def url_prefix(self) -> str:
        return f"{self.s3_url}/{s3.BUCKET}/" if self.s3_url else "/media/"

    def files(self) -> list[str]:
        if self.s3_url:
            return s3.keys(self.s3_url)
        root = self.root
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def name(self, url: str) -> str:
        assert url.startswith(self.url_prefix), (url, self.url_prefix)
        return url.removeprefix(self.url_prefix)

    def read(self, url: str) -> bytes:
        """The stored bytes behind ``url``, read from the disk or the bucket."""
        if self.s3_url:
            return s3.read(self.s3_url, self.name(url))
        return (self.root / self.name(url)).read_bytes()

    def get(self, http: requests.Session, base: str, url: str) -> requests.Response:
        """``url`` as a browser fetches it (relative ones from the site)."""
        return http.get(url if self.s3_url else f"{base}{url}", timeout=HTTP_TIMEOUT)


def stored_files(media: Media) -> list[str]:
    return media.files()


def image_count(http: requests.Session, base: str) -> int:
    response = http.get(f"{base}/photos/api/images/", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text[:3000]
    return int(response.json()["count"])


def check_resized(http: requests.Session, base: str, media: Media, photo: Photo, data: Any) -> None:
    label = photo.name
    assert data["status"] == "done", (label, data)
    assert data["error"] == "", (label, data)
    upright = decode(photo.upright)
    if photo.has_gps:  # otherwise "no GPS in the output" would prove nothing
        with Image.open(io.BytesIO(photo.data)) as opened:
            assert dict(opened.getexif().get_ifd(EXIF_GPS_IFD)), f"{label} should carry GPS"
    assert (data["width"], data["height"]) == upright.size, (label, data)
    want = expected_size(*upright.size)
    got = (data["resized_width"], data["resized_height"])
    assert got[0] <= BOX[0], (label, got)
    assert got[1] <= BOX[1], (label, got)
    assert abs(got[0] - want[0]) <= 1, (label, got, want)
    assert abs(got[1] - want[1]) <= 1, (label, got, want)

    url = data["resized_url"]
    assert url, (label, data)
    assert url.startswith(media.url_prefix), (label, data)
    response = media.get(http, base, url)
    assert response.status_code == 200, (label, url, response.status_code)
    body = response.content
    assert body == media.read(url)
    with Image.open(io.BytesIO(body)) as opened:
        assert opened.format == "JPEG", (label, opened.format)
        assert opened.size == got, (label, opened.size, got)
        assert len(opened.getexif()) == 0, (label, dict(opened.getexif()))
        assert not opened.info.keys() & {"exif", "xmp", "XML:com.adobe.xmp"}, (label, opened.info)
    output = decode(body)
    assert b"Exif\x00\x00" not in body, f"{label}: the output still has an EXIF segment"

    # Upright: it looks like the reference, and clearly less like the reference turned
    # upside down or mirrored (a quarter turn already shows in the size).
    reference = upright.resize(output.size, Image.Resampling.LANCZOS)
    difference = mean_difference(output, reference)
    assert difference < SAME_PICTURE, (label, difference)
    for wrong in WRONG_WAYS:
        other = mean_difference(output, reference.transpose(wrong))
        assert other > 1.5 * difference, (label, wrong, difference, other)

    check_renditions(http, base, media, photo, data, upright)

    original = media.get(http, base, data["original_url"])
    assert original.status_code == 200, (label, data["original_url"])
    assert original.content == photo.data, f"{label}: the stored original differs"


RENDITION_WIDTHS = (480, 960, 1440)
FORMATS = ("JPEG", "AVIF", "WEBP")


def check_renditions(
    http: requests.Session,
    base: str,
    media: Media,
    photo: Photo,
    data: Any,
    upright: Image.Image,
) -> None:
    """Every output the API lists: served, decodable in its format, of its declared
    size and bytes, upright, without EXIF or GPS; the default set, nothing more."""
    label = photo.name
    main = (data["resized_width"], data["resized_height"])
    widths = [main[0]] + [w for w in sorted(RENDITION_WIDTHS, reverse=True) if w < main[0]]
    listed = [(r["format"], r["width"]) for r in data["renditions"]]
    assert listed == [(f, w) for w in widths for f in FORMATS], (label, listed)
    assert data["renditions"][0]["url"] == data["resized_url"], label
    placeholder = data["placeholder"]
    assert placeholder.startswith("data:image/webp;base64,"), (label, placeholder[:40])
    assert len(placeholder) <= 1000, (label, len(placeholder))
    for rendition in data["renditions"]:
        url = rendition["url"]
        response = media.get(http, base, url)
        assert response.status_code == 200, (label, url, response.status_code)
        body = response.content
        assert len(body) == rendition["size"], (label, rendition)
        assert body == media.read(url)
        size = (rendition["width"], rendition["height"])
        assert abs(size[1] - main[1] * size[0] / main[0]) <= 1, (label, size, main)
        with Image.open(io.BytesIO(body)) as opened:
            assert opened.format == rendition["format"], (label, opened.format, rendition)
            assert opened.size == size, (label, opened.size, rendition)
            assert len(opened.getexif()) == 0, (label, rendition, dict(opened.getexif()))
            assert not opened.info.get("exif"), (label, rendition)
            pixels = opened.convert("RGB")
        assert b"Exif\x00\x00" not in body, (label, rendition)
        reference = upright.resize(pixels.size, Image.Resampling.LANCZOS)
        difference = mean_difference(pixels, reference)
        assert difference < SAME_PICTURE, (label, rendition, difference)
        for wrong in WRONG_WAYS:
            assert mean_difference(pixels, reference.transpose(wrong)) > 1.5 * difference


def check_gallery_pictures(html: str, results: dict[int, Any]) -> None:
    """The gallery's <picture> of each image: AVIF then WebP sources with every
    width, then the JPEG <img> with its srcset, as the API lists them."""
    from tests.support.html import attrs, elements

    pictures = elements(html, "picture")
    assert len(pictures) == len(results), html[:3000]
    by_src = {attrs(img)["src"]: img for img in elements(html, "img")}
    for data in results.values():
        img = attrs(by_src[data["resized_url"]])
        jpeg = sorted(
            (r for r in data["renditions"] if r["format"] == "JPEG"), key=lambda r: r["width"]
        )
        assert img["srcset"] == ", ".join(f"{r['url']} {r['width']}w" for r in jpeg), img
        assert (img["width"], img["height"]) == (
            str(data["resized_width"]),
            str(data["resized_height"]),
        )
        assert (img["loading"], img["decoding"]) == ("lazy", "async")
        assert img["alt"] == data["name"]
        assert data["placeholder"] in img["style"]
    sources = [attrs(source) for source in elements(html, "source")]
    assert [s["type"] for s in sources] == ["image/avif", "image/webp"] * len(results)
    every_url = {r["url"] for data in results.values() for r in data["renditions"]}
    for source in sources:
        for candidate in source["srcset"].split(", "):
            url, width = candidate.rsplit(" ", 1)
            assert url in every_url, (url, source)
            assert width.endswith("w"), source


# -- the test ---------------------------------------------------------------------------


def test_new_site_installs_wheel_and_processes_photos(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_services()
    # On an S3 run (IMAGE_SYNC_TEST_S3=1) the site keeps its files in the session's bucket.
    s3_url = request.getfixturevalue("moto_url") if s3.enabled() else None
    photos = corpus_photos(CORPUS) if CORPUS.is_dir() else generated_photos()
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    marker = f"e2e-site-{token}"
    home = tmp_path / "home"
    home.mkdir()
    media = Media(tmp_path / "media", s3_url)
    venv = tmp_path / "venv"
    site = tmp_path / "site"
    site.mkdir()
    env = clean_env(venv, home)

    # 1. The wheel, as PyPI would get it.
    wheel = build_wheel(tmp_path / "dist")
    check_wheel(wheel)

    # 2. A venv holding the wheel, and a check that the site imports that copy.
    python, site_packages = make_venv(venv, wheel, env)
    code = (
        "import json, sys, django, django_image_sync; "
        "print(json.dumps([django_image_sync.__file__, django.__file__, sys.path]))"
    )
    app_file, django_file, sys_path = json.loads(run([str(python), "-c", code], cwd=site, env=env))
    assert Path(app_file).is_relative_to(site_packages), app_file
    assert Path(django_file).is_file()
    assert not any((site / p).resolve() == REPO for p in sys_path), sys_path

    with contextlib.ExitStack() as cleanup:
        database = cleanup.enter_context(postgres_database(f"e2e_site_{token.replace('-', '_')}"))
        cleanup.callback(forget_redis_keys, marker)

        # 3. The site: startproject, settings, URLs, Celery app; check; migrate; a user.
        run([str(python), "-m", "django", "startproject", "mysite", str(site)], cwd=site, env=env)
        configure_site(site, database=database, marker=marker, media=media.root, s3_url=s3_url)
        manage = [str(python), "manage.py"]
        output = run([*manage, "check"], cwd=site, env=env)
        assert "no issues" in output, output
        output = run(
            [*manage, "makemigrations", PACKAGE, "--check", "--dry-run"], cwd=site, env=env
        )
        assert "No changes detected" in output, output
        output = run([*manage, "migrate", "--noinput"], cwd=site, env=env)
        assert f"Applying {PACKAGE}.0001_initial... OK" in output, output
        assert f"Applying {PACKAGE}.0002_renditions... OK" in output, output
        password = secrets.token_urlsafe(16)
        run(
            [*manage, "createsuperuser", "--noinput", "--username", "alice"],
            cwd=site,
            env={
                **env,
                "DJANGO_SUPERUSER_PASSWORD": password,
                "DJANGO_SUPERUSER_EMAIL": "alice@example.com",
            },
        )

        # 4. A web server and a Celery worker, both killed whatever happens.
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if importlib.util.find_spec("gunicorn") is not None:
            web_argv = [
                *(str(python), "-m", "gunicorn", "mysite.wsgi:application"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--graceful-timeout", "5"),
                *("--access-logfile", "-", "--error-logfile", "-"),
            ]
        else:
            web_argv = [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
        worker_argv = [
            *(str(python), "-m", "celery", "-A", "mysite", "worker", "--loglevel=INFO"),
            *("--concurrency=1", "--pool=prefork", "--without-gossip", "--without-mingle"),
            *("--without-heartbeat", "-Q", marker, "-n", f"{marker}@%h"),
        ]
        web = Service("web", web_argv, site, env)
        cleanup.callback(web.stop)
        worker = Service("worker", worker_argv, site, env)
        cleanup.callback(worker.stop)
        wait_until_serving(web, base)
        wait_until_ready(worker)
        assert "django_image_sync.resize_image" in worker.output(), worker.output()
        services = [web, worker]

        with requests.Session() as anonymous:
            response = anonymous.get(f"{base}/photos/api/images/", timeout=HTTP_TIMEOUT)
            assert response.status_code == 401, response.text[:3000]
            assert response.json()["errors"]["__all__"][0]["code"] == "auth"

        with requests.Session() as http:
            log_in(http, base, "alice", password)

            # 5. The upload page and its static files, from the wheel, under the prefix.
            page = http.get(f"{base}/photos/upload-image/", timeout=HTTP_TIMEOUT)
            assert page.status_code == 200, page.text[:3000]
            assert page.headers["Content-Type"].startswith("text/html")
            html = page.text
            assert 'action="/photos/upload-image/"' in html, html
            assert 'enctype="multipart/form-data"' in html, html
            assert 'name="images"' in html, html
            assert 'name="csrfmiddlewaretoken"' in html, html
            for asset in ("image_sync.css", "image_sync.js"):
                href = f"/static/{PACKAGE}/{asset}"
                assert href in html, (href, html)
                response = http.get(f"{base}{href}", timeout=HTTP_TIMEOUT)
                assert response.status_code == 200, (href, response.status_code)
                assert (
                    response.content
                    == (site_packages / PACKAGE / "static" / PACKAGE / asset).read_bytes()
                )

            # 6. Two submissions of two photos each, resized by the worker.
            uploaded: list[tuple[Photo, int]] = []
            for batch in (photos.first, photos.second):
                response = post_images(http, base, [(p.name, p.data) for p in batch])
                assert response.status_code == 201, response.text[:3000]
                images = response.json()["images"]
                assert [i["name"] for i in images] == [p.name for p in batch], images
                assert all(i["duplicate"] is False for i in images), images
                assert all(i["status"] == "pending" for i in images), images
                uploaded += zip(batch, [i["id"] for i in images], strict=True)
            ids = [pk for _, pk in uploaded]
            assert len(set(ids)) == len(ids), ids

            results = wait_processed(http, base, ids, services)
            for photo, pk in uploaded:
                check_resized(http, base, media, photo, results[pk])

            files = stored_files(media)
            originals = [f for f in files if f.startswith("image_sync/originals/")]
            resized = [f for f in files if f.startswith("image_sync/resized/")]
            assert len(originals) == len(uploaded), files
            # Every stored output is listed by its image, and nothing else is stored.
            listed = sorted(media.name(r["url"]) for pk in ids for r in results[pk]["renditions"])
            assert sorted(resized) == listed, (files, listed)
            assert image_count(http, base) == len(uploaded)
            gallery = http.get(f"{base}/photos/images/", timeout=HTTP_TIMEOUT)
            assert gallery.status_code == 200
            for pk in ids:
                assert f'src="{results[pk]["resized_url"]}"' in gallery.text, pk
            check_gallery_pictures(gallery.text, {pk: results[pk] for pk in ids})

            # 7. The same bytes again, under other names: duplicates, nothing stored.
            first_ids = [pk for _, pk in uploaded[: len(photos.first)]]
            again = [(f"again-{p.name}", p.data) for p in photos.first]
            response = post_images(http, base, again)
            assert response.status_code == 200, response.text[:3000]
            images = response.json()["images"]
            assert [i["id"] for i in images] == first_ids, images
            assert all(i["duplicate"] is True for i in images), images
            assert all(i["status"] == "done" for i in images), images
            assert stored_files(media) == files
            assert image_count(http, base) == len(uploaded)

            # 8. Broken files: 400 naming each one; the whole submission is refused.
            gif = encode(photo_like((48, 32), seed=21).convert("P"), "GIF")
            text = b"these are holiday notes, not a photo\n" * 20
            refused = [
                ([(photos.spare.name, photos.spare.data), ("notes.jpg", text)], ["notes.jpg"]),
                (
                    [("animation.jpg", gif), ("cut.jpg", photos.truncated)],
                    ["animation.jpg", "cut.jpg"],
                ),
            ]
            for files_sent, bad in refused:
                response = post_images(http, base, files_sent)
                assert response.status_code == 400, response.text[:3000]
                errors = response.json()["errors"]
                assert set(errors) == {"images"}, errors
                assert [e["file"] for e in errors["images"]] == bad, errors
                for error in errors["images"]:
                    assert error["message"].startswith(f"{error['file']}: "), error
                    assert len(error["message"]) > len(error["file"]) + 10, error
                assert stored_files(media) == files
                assert image_count(http, base) == len(uploaded)
            by_name = {e["file"]: e for e in errors["images"]}
            assert by_name["animation.jpg"]["code"] == "format"
            assert "GIF" in by_name["animation.jpg"]["message"]
            assert by_name["cut.jpg"]["code"] == "corrupt"

            # Nothing went wrong on the server side along the way.
            for service in services:
                service.check_alive()
            assert "Traceback" not in web.output(), web.output()
            assert "Traceback" not in worker.output(), worker.output()
