from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings

import tests.celery_app  # noqa: F401 - the site's Celery app, as a project __init__ would load it
from tests.support import processes, s3, services
from tests.support.media import forget_stored_files

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
# CI sets this: a service that cannot be reached fails the run instead of skipping.
REQUIRE_SERVICES = os.environ.get("IMAGE_SYNC_REQUIRE_SERVICES") == "1"


def service_unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (IMAGE_SYNC_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def redis_reachable() -> bool:
    url = urlparse(settings.REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), 2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The sample camera photos beside the checkout; skipped where absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"sample photos not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def alice(django_user_model):  # type: ignore[no-untyped-def]
    """A user of the site (password "pw"); shared by every test module."""
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def bob(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user("bob", password="pw")


@pytest.fixture
def resize_calls(monkeypatch):  # type: ignore[no-untyped-def]
    """Count the real decodes in this process (a ``render`` of every output, or a
    ``resize_image`` of the main one): the Pillow backend still does the work."""
    from django_image_sync.processing.backends import pillow as pillow_backend

    calls: list[str] = []
    real_resize = pillow_backend.resize_image
    real_render = pillow_backend.render

    def counting_resize(fileobj, spec):  # type: ignore[no-untyped-def]
        calls.append(spec.key)
        return real_resize(fileobj, spec)

    def counting_render(fileobj, plan, skip=frozenset()):  # type: ignore[no-untyped-def]
        calls.append(plan.main.key)
        return real_render(fileobj, plan, skip)

    monkeypatch.setattr(pillow_backend, "resize_image", counting_resize)
    monkeypatch.setattr(pillow_backend, "render", counting_render)
    return calls


@pytest.fixture
def storage_calls(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """Count every call of the storage methods that touch the files."""
    from django.core.files.storage import FileSystemStorage

    calls: list[str] = []
    for name in ("exists", "size", "open", "_open", "listdir", "get_modified_time"):
        original = getattr(FileSystemStorage, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(FileSystemStorage, name, counting)
    return calls


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language. Django's LocaleMiddleware
    activates a request's language in the thread and leaves it there, which
    is harmless in a server (every request sets its own) but would carry a
    test client's German request into the next test's direct calls."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> Iterator[processes.Service]:  # type: ignore[no-untyped-def]
    """A moto server (S3 API) with the test bucket, its request log in ``log_path``:
    the run's own when the app's files are on S3 (``IMAGE_SYNC_TEST_S3=1``), else
    one started for the tests that ask."""
    if s3.moto_server() is None:
        service_unavailable("moto_server is not installed (moto[server] is in the test extra)")
    url = s3.session_url() if s3.enabled() else f"http://127.0.0.1:{processes.free_port()}"
    server = s3.start_moto(url, tmp_path_factory.mktemp("moto") / "moto.log")
    server.url = url  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_url(moto: processes.Service) -> str:
    return str(moto.url)  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _s3_storage(request) -> None:  # type: ignore[no-untyped-def]
    """On an S3 run, the moto server behind the default storage runs for the whole session."""
    if s3.enabled():
        request.getfixturevalue("moto_url")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """Every test gets the same MEDIA_ROOT as the worker, emptied between tests
    (and the same bucket, emptied too, on an S3 run)."""
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True, exist_ok=True)
    forget_stored_files()
    yield
    forget_stored_files()
    for path in sorted(media.rglob("*"), reverse=True):
        if path.is_file():
            path.unlink()
        else:
            path.rmdir()


def clear_run_cache() -> None:
    """Delete this run's cache keys only: Redis db 0 is shared with other runs and the broker."""
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    services.forget_redis_keys(settings.REDIS_URL, f"{prefix}:*")


@pytest.fixture
def clear_cache() -> Iterator[None]:
    clear_run_cache()
    yield
    clear_run_cache()


class WorkerProcess:
    """A real ``celery worker`` subprocess consuming this run's queue over Redis."""

    #: Seconds a warm shutdown may take before the worker is killed.
    stop_timeout = 20

    def __init__(
        self,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        name: str | None = None,
        queue: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.log_path = log_path
        self.env = env or {}
        self.name = name or f"image-sync-test-{settings.RUN_ID}"
        self.queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "IMAGE_SYNC_TEST_WORKER": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            **self.env,
        }
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.celery_app",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                self.queue,
                "-n",
                f"{self.name}@%h",
                *self.extra_args,
            ],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.output()
            if " ready." in text:
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Celery worker did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # A pool process left behind (stalled on purpose, say) dies with its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()
        self.process = None


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    """Start one worker for the session, after the test database exists."""
    if not redis_reachable():
        service_unavailable(f"Redis is not reachable at {settings.REDIS_URL}")
    worker = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()
    if os.environ.get("IMAGE_SYNC_SHOW_WORKER_LOG"):
        print(worker.output())


def wait_for_status(pk: int, statuses: set[str], timeout: float = 60) -> object:
    """Poll the database until image ``pk`` reaches one of ``statuses``."""
    from django_image_sync.models import UploadedImage

    deadline = time.monotonic() + timeout
    image = None
    while time.monotonic() < deadline:
        image = UploadedImage.objects.filter(pk=pk).first()
        if image is not None and image.status in statuses:
            return image
        time.sleep(0.1)
    raise AssertionError(
        f"image {pk} did not reach {statuses} in {timeout} s; "
        f"status {getattr(image, 'status', None)!r}, error {getattr(image, 'error', None)!r}"
    )
